//! `Topology::from_sysfs` on fake sysfs trees built in temporary
//! directories: 1, 2, 4 and 8 nodes, uneven CPU counts, holes in the CPU
//! and node numbering, offline CPUs, missing information, malformed files.
#![cfg(not(loom))]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use waitless::numa::Topology;

/// A temporary directory removed on drop.
struct TempTree(PathBuf);

impl TempTree {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "waitless-numa-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempTree(p)
    }

    /// `system/node`, the directory `from_sysfs` reads.
    fn node_dir(&self) -> PathBuf {
        self.0.join("system").join("node")
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.0.join("system").join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// A node tree: `nodes[i] = (id, cpulist)`; distances 10 local, 21
    /// remote, with `online` listing the ids.
    fn nodes(&self, nodes: &[(usize, &str)]) {
        let ids: Vec<String> = nodes.iter().map(|(id, _)| id.to_string()).collect();
        self.write("node/online", &format!("{}\n", ids.join(",")));
        self.write("node/possible", &format!("{}\n", ids.join(",")));
        for (i, (id, cpus)) in nodes.iter().enumerate() {
            self.write(&format!("node/node{id}/cpulist"), &format!("{cpus}\n"));
            let row: Vec<String> = (0..nodes.len())
                .map(|j| if i == j { "10" } else { "21" }.to_string())
                .collect();
            self.write(
                &format!("node/node{id}/distance"),
                &format!("{}\n", row.join(" ")),
            );
        }
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn load(t: &TempTree) -> Topology {
    Topology::from_sysfs(&t.node_dir()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn one_node() {
    let t = TempTree::new("one");
    t.nodes(&[(0, "0-7")]);
    let topo = load(&t);
    assert_eq!(topo.num_nodes(), 1);
    assert_eq!(topo.nodes()[0].cpus, (0..8).collect::<Vec<_>>());
    assert_eq!(topo.distance(0, 0), Some(10));
}

#[test]
fn two_nodes_interleaved_cpus() {
    let t = TempTree::new("two");
    // Intel-style numbering: hyperthread siblings in the upper half.
    t.nodes(&[(0, "0-15,32-47"), (1, "16-31,48-63")]);
    let topo = load(&t);
    assert_eq!(topo.num_nodes(), 2);
    assert_eq!(topo.num_cpus(), 64);
    assert_eq!(topo.node_of_cpu(40), Some(0));
    assert_eq!(topo.node_of_cpu(20), Some(1));
    assert_eq!(topo.distance(0, 1), Some(21));
    assert_eq!(topo.distance(1, 1), Some(10));
}

#[test]
fn four_nodes_uneven_with_holes() {
    let t = TempTree::new("four");
    t.nodes(&[(0, "0-5"), (1, "6,8,10"), (2, "12-13"), (3, "20-27,30")]);
    let topo = load(&t);
    assert_eq!(topo.num_nodes(), 4);
    let counts: Vec<usize> = topo.nodes().iter().map(|n| n.cpus.len()).collect();
    assert_eq!(counts, vec![6, 3, 2, 9]);
    assert_eq!(topo.node_of_cpu(7), None, "CPU 7 is a hole");
    assert_eq!(topo.node_of_cpu(30), Some(3));
}

#[test]
fn eight_nodes_with_a_memory_only_node_and_a_node_id_hole() {
    let t = TempTree::new("eight");
    let mut nodes: Vec<(usize, String)> = (0..7)
        .map(|i| (i, format!("{}-{}", i * 4, i * 4 + 3)))
        .collect();
    nodes[3].1 = String::new(); // memory-only node (e.g. CXL)
    nodes.push((9, "28-31".to_string())); // node ids 0..6 and 9
    let refs: Vec<(usize, &str)> = nodes.iter().map(|(i, c)| (*i, c.as_str())).collect();
    t.nodes(&refs);
    let topo = load(&t);
    assert_eq!(topo.num_nodes(), 8);
    assert!(topo.nodes()[3].cpus.is_empty());
    assert_eq!(topo.nodes()[7].id, 9);
    assert_eq!(topo.node_of_cpu(29), Some(7), "index, not id");
    assert_eq!(topo.num_cpus(), 28);
    for a in 0..8 {
        for b in 0..8 {
            assert_eq!(topo.distance(a, b), Some(if a == b { 10 } else { 21 }));
        }
    }
}

#[test]
fn offline_cpus_are_left_out() {
    let t = TempTree::new("offline");
    t.nodes(&[(0, "0-3"), (1, "4-7")]);
    t.write("cpu/online", "0-2,4,6-7\n");
    let topo = load(&t);
    assert_eq!(topo.nodes()[0].cpus, vec![0, 1, 2]);
    assert_eq!(topo.nodes()[1].cpus, vec![4, 6, 7]);
    assert_eq!(topo.node_of_cpu(5), None);
}

#[test]
fn nodes_found_by_directory_when_online_is_missing() {
    let t = TempTree::new("noonline");
    t.nodes(&[(0, "0-1"), (1, "2-3")]);
    fs::remove_file(t.node_dir().join("online")).unwrap();
    fs::remove_file(t.node_dir().join("node1/distance")).unwrap();
    let topo = load(&t);
    assert_eq!(topo.num_nodes(), 2);
    assert_eq!(topo.distance(1, 0), Some(20), "default distances");
}

#[test]
fn missing_tree_is_one_node() {
    let t = TempTree::new("missing");
    let topo = Topology::from_sysfs(&t.node_dir()).unwrap();
    assert_eq!(topo.num_nodes(), 1);
    assert!(topo.num_cpus() >= 1);
    // With only cpu/online known, its CPUs form the single node.
    t.write("cpu/online", "0-5\n");
    let topo = Topology::from_sysfs(&t.node_dir()).unwrap();
    assert_eq!(topo.nodes()[0].cpus, (0..6).collect::<Vec<_>>());
}

#[test]
fn current_never_fails() {
    let topo = Topology::current();
    assert!(topo.num_nodes() >= 1);
    assert!(topo.num_cpus() >= 1, "the test runs on some CPU: {topo:?}");
    // Without an override, the calling thread's node is one of the
    // machine's nodes.
    let here = waitless::numa::current_node();
    assert!(
        topo.nodes().iter().any(|n| n.id == here),
        "node {here} is not in {topo:?}"
    );
}

fn err(t: &TempTree) -> String {
    match Topology::from_sysfs(&t.node_dir()) {
        Ok(topo) => panic!("expected an error, got {topo:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_cpulist_is_a_clear_error() {
    let t = TempTree::new("badcpus");
    t.nodes(&[(0, "0-3"), (1, "7-4")]);
    let e = err(&t);
    assert!(e.contains("node1") && e.contains("cpulist"), "{e}");
    assert!(e.contains("reversed"), "{e}");
}

#[test]
fn malformed_distance_is_a_clear_error() {
    let t = TempTree::new("baddist");
    t.nodes(&[(0, "0-3"), (1, "4-7")]);
    t.write("node/node0/distance", "10 twenty\n");
    let e = err(&t);
    assert!(e.contains("node0") && e.contains("distance"), "{e}");
    t.write("node/node0/distance", "10 21 21\n");
    let e = err(&t);
    assert!(e.contains("3 distances for 2 nodes"), "{e}");
}

#[test]
fn garbage_online_and_missing_node_dir_are_errors() {
    let t = TempTree::new("badonline");
    t.nodes(&[(0, "0-3")]);
    t.write("node/online", "zero\n");
    assert!(err(&t).contains("online"));
    t.write("node/online", "0-1\n");
    assert!(
        err(&t).contains("node1"),
        "online names a node with no directory"
    );
}

#[test]
fn cpu_in_two_nodes_is_an_error() {
    let t = TempTree::new("dup");
    t.nodes(&[(0, "0-3"), (1, "3-5")]);
    assert!(err(&t).contains("two nodes"));
}

#[test]
fn unreadable_cpulist_is_an_io_error() {
    let t = TempTree::new("io");
    t.nodes(&[(0, "0-3")]);
    // A directory where a file should be: reading it fails.
    let p: &Path = &t.node_dir().join("node0/cpulist");
    fs::remove_file(p).unwrap();
    fs::create_dir(p).unwrap();
    let e = Topology::from_sysfs(&t.node_dir()).unwrap_err();
    assert!(e.to_string().starts_with("cannot read"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(e.path(), p);
}
