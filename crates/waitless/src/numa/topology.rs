//! The machine's NUMA topology, read from Linux sysfs, and the calling
//! thread's node.
//!
//! Linux describes nodes under `/sys/devices/system/node`:
//!
//! ```text
//! node/online          nodes that are online, cpulist format ("0-1")
//! node/nodeN/cpulist   the CPUs of node N, cpulist format ("0-3,8-11")
//! node/nodeN/distance  one row of the SLIT distance matrix ("10 21")
//! cpu/online           CPUs that are online (a sibling of node/)
//! ```
//!
//! The cpulist format is a comma-separated list of CPU numbers and inclusive
//! ranges `a-b`; an empty list is allowed (a memory-only node). A CPU that
//! the sibling `cpu/online` file does not list is offline and left out.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The default sysfs directory that [`Topology::current`] reads.
///
/// ```
/// use waitless::numa::{Topology, SYSFS_NODE_DIR};
/// assert_eq!(SYSFS_NODE_DIR, "/sys/devices/system/node");
/// assert!(Topology::current().num_nodes() >= 1);
/// ```
pub const SYSFS_NODE_DIR: &str = "/sys/devices/system/node";

/// One NUMA node.
///
/// ```
/// use waitless::numa::Topology;
/// let t = Topology::uniform(2, 2);
/// let n = &t.nodes()[1];
/// assert_eq!((n.id, n.cpus.clone(), n.distances.clone()), (1, vec![2, 3], vec![20, 10]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's number as the kernel names it (`nodeN`); numbers may have
    /// holes.
    pub id: usize,
    /// Its online CPUs, ascending. Empty for a memory-only node.
    pub cpus: Vec<usize>,
    /// Its row of the distance matrix, indexed like [`Topology::nodes`]
    /// (10 = local by the ACPI SLIT convention).
    pub distances: Vec<u32>,
}

/// A machine's NUMA nodes, their CPUs and distances.
///
/// ```
/// use waitless::numa::Topology;
/// let t = Topology::uniform(2, 4);
/// assert_eq!(t.num_nodes(), 2);
/// assert_eq!(t.node_of_cpu(5), Some(1));
/// assert_eq!(t.distance(0, 1), Some(20));
/// let here = Topology::current(); // never fails: one node if sysfs says nothing
/// assert!(here.num_nodes() >= 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    nodes: Vec<NodeInfo>,
}

/// Why a sysfs tree could not be read.
///
/// ```
/// use waitless::numa::Topology;
/// let dir = std::env::temp_dir().join(format!("waitless-doc-topo-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("node0")).unwrap();
/// std::fs::write(dir.join("online"), "0").unwrap();
/// std::fs::write(dir.join("node0/cpulist"), "3-1").unwrap();
/// std::fs::write(dir.join("node0/distance"), "10").unwrap(); // reversed: malformed
/// let err = Topology::from_sysfs(&dir).unwrap_err();
/// assert!(err.path().ends_with("cpulist"));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct TopologyError {
    path: PathBuf,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Io(io::Error),
    Malformed { content: String, reason: String },
}

impl TopologyError {
    /// The file that could not be read or parsed.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let dir = std::env::temp_dir().join(format!("waitless-doc-path-{}", std::process::id()));
    /// std::fs::create_dir_all(dir.join("node0")).unwrap();
    /// std::fs::write(dir.join("online"), "0").unwrap();
    /// std::fs::write(dir.join("node0/cpulist"), "x").unwrap();
    /// std::fs::write(dir.join("node0/distance"), "10").unwrap();
    /// let err = Topology::from_sysfs(&dir).unwrap_err();
    /// assert_eq!(err.path(), dir.join("node0/cpulist"));
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn malformed(path: &Path, content: &str, reason: impl Into<String>) -> Self {
        TopologyError {
            path: path.to_path_buf(),
            kind: ErrorKind::Malformed {
                content: content.trim_end().to_string(),
                reason: reason.into(),
            },
        }
    }
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "cannot read {}: {e}", self.path.display()),
            ErrorKind::Malformed { content, reason } => write!(
                f,
                "malformed NUMA topology file {}: {reason} (content: {content:?})",
                self.path.display()
            ),
        }
    }
}

impl std::error::Error for TopologyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Malformed { .. } => None,
        }
    }
}

/// Parses the kernel's cpulist format ("0-3,8,10-11"; empty allowed) into
/// an ascending list without duplicates.
///
/// ```
/// use waitless::numa::parse_cpulist;
/// assert_eq!(parse_cpulist("0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
/// assert_eq!(parse_cpulist("").unwrap(), Vec::<usize>::new());
/// assert!(parse_cpulist("3-1").is_err());
/// ```
pub fn parse_cpulist(s: &str) -> Result<Vec<usize>, String> {
    /// Larger than any real CPU count; guards against "0-4000000000".
    const MAX_CPU: usize = 1 << 20;
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let part = part.trim();
        let num = |x: &str| -> Result<usize, String> {
            let n: usize = x
                .trim()
                .parse()
                .map_err(|_| format!("{x:?} is not a CPU number"))?;
            if n >= MAX_CPU {
                return Err(format!("CPU number {n} is implausibly large"));
            }
            Ok(n)
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {a}-{b} is reversed"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn read(path: &Path) -> Result<String, TopologyError> {
    fs::read_to_string(path).map_err(|e| TopologyError {
        path: path.to_path_buf(),
        kind: ErrorKind::Io(e),
    })
}

fn read_cpulist(path: &Path) -> Result<Vec<usize>, TopologyError> {
    let s = read(path)?;
    parse_cpulist(&s).map_err(|r| TopologyError::malformed(path, &s, r))
}

impl Topology {
    /// The running machine's topology from [`SYSFS_NODE_DIR`]. Never fails:
    /// if the directory is missing or unreadable, the machine is one node
    /// holding every CPU the process may use.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let t = Topology::current(); // never fails: one node without NUMA information
    /// assert!(t.num_nodes() >= 1 && t.num_cpus() >= 1);
    /// ```
    #[must_use]
    pub fn current() -> Topology {
        match Topology::from_sysfs(Path::new(SYSFS_NODE_DIR)) {
            Ok(t) => t,
            Err(_) => Topology::single(available_cpus()),
        }
    }

    /// Reads a sysfs node directory (`root` plays `/sys/devices/system/node`;
    /// a sibling `root/../cpu/online`, if present, filters offline CPUs).
    ///
    /// A missing `root`, or one without `nodeN` directories, is one node
    /// holding the online CPUs (or `available_parallelism` of them). A file
    /// that exists but cannot be parsed is an error naming the file.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let dir = std::env::temp_dir().join(format!("waitless-doc-sysfs-{}", std::process::id()));
    /// for (n, cpus) in [(0, "0-1"), (1, "2-3")] {
    ///     std::fs::create_dir_all(dir.join(format!("node{n}"))).unwrap();
    ///     std::fs::write(dir.join(format!("node{n}/cpulist")), cpus).unwrap();
    ///     std::fs::write(dir.join(format!("node{n}/distance")), if n == 0 { "10 21" } else { "21 10" }).unwrap();
    /// }
    /// std::fs::write(dir.join("online"), "0-1").unwrap();
    /// let t = Topology::from_sysfs(&dir).unwrap();
    /// assert_eq!((t.num_nodes(), t.node_of_cpu(3), t.distance(0, 1)), (2, Some(1), Some(21)));
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn from_sysfs(root: &Path) -> Result<Topology, TopologyError> {
        let online_cpus = {
            let p = root
                .parent()
                .map(|p| p.join("cpu").join("online"))
                .filter(|p| p.exists());
            match p {
                Some(p) => Some(read_cpulist(&p)?),
                None => None,
            }
        };
        let ids = node_ids(root)?;
        if ids.is_empty() {
            return Ok(match online_cpus {
                Some(cpus) if !cpus.is_empty() => Topology::from_nodes(vec![NodeInfo {
                    id: 0,
                    cpus,
                    distances: vec![10],
                }]),
                _ => Topology::single(available_cpus()),
            });
        }
        let mut nodes = Vec::with_capacity(ids.len());
        for &id in &ids {
            let dir = root.join(format!("node{id}"));
            let mut cpus = read_cpulist(&dir.join("cpulist"))?;
            if let Some(online) = &online_cpus {
                cpus.retain(|c| online.binary_search(c).is_ok());
            }
            let dpath = dir.join("distance");
            let distances = if dpath.exists() {
                let s = read(&dpath)?;
                let row: Result<Vec<u32>, _> = s.split_whitespace().map(str::parse).collect();
                let row = row.map_err(|_| {
                    TopologyError::malformed(
                        &dpath,
                        &s,
                        "distances must be whitespace-separated integers",
                    )
                })?;
                if row.len() != ids.len() {
                    return Err(TopologyError::malformed(
                        &dpath,
                        &s,
                        format!("{} distances for {} nodes", row.len(), ids.len()),
                    ));
                }
                row
            } else {
                default_row(nodes.len(), ids.len())
            };
            nodes.push(NodeInfo {
                id,
                cpus,
                distances,
            });
        }
        // A CPU listed by two nodes is a broken tree.
        let mut all: Vec<usize> = nodes.iter().flat_map(|n| n.cpus.iter().copied()).collect();
        let total = all.len();
        all.sort_unstable();
        all.dedup();
        if all.len() != total {
            let p = root.join("node*/cpulist");
            return Err(TopologyError::malformed(
                &p,
                "",
                "a CPU belongs to two nodes",
            ));
        }
        Ok(Topology { nodes })
    }

    /// One node with CPUs `0..cpus` (at least one).
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let t = Topology::single(4);
    /// assert_eq!((t.num_nodes(), t.num_cpus()), (1, 4));
    /// ```
    #[must_use]
    pub fn single(cpus: usize) -> Topology {
        Topology::from_nodes(vec![NodeInfo {
            id: 0,
            cpus: (0..cpus.max(1)).collect(),
            distances: vec![10],
        }])
    }

    /// A simulated machine: `nodes` nodes (at least one) of
    /// `cpus_per_node` CPUs numbered node by node, distance 10 locally and
    /// 20 across.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let t = Topology::uniform(4, 2);
    /// assert_eq!((t.num_nodes(), t.num_cpus(), t.node_of_cpu(7)), (4, 8, Some(3)));
    /// ```
    #[must_use]
    pub fn uniform(nodes: usize, cpus_per_node: usize) -> Topology {
        let n = nodes.max(1);
        Topology::from_nodes(
            (0..n)
                .map(|id| NodeInfo {
                    id,
                    cpus: (id * cpus_per_node..(id + 1) * cpus_per_node).collect(),
                    distances: default_row(id, n),
                })
                .collect(),
        )
    }

    fn from_nodes(nodes: Vec<NodeInfo>) -> Topology {
        Topology { nodes }
    }

    /// The nodes, ascending by id.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let t = Topology::uniform(2, 3);
    /// assert_eq!(t.nodes()[0].cpus, vec![0, 1, 2]);
    /// ```
    #[must_use]
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many nodes (at least one).
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// assert_eq!(Topology::uniform(8, 1).num_nodes(), 8);
    /// ```
    #[must_use]
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// How many online CPUs in all.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// assert_eq!(Topology::uniform(2, 5).num_cpus(), 10);
    /// ```
    #[must_use]
    pub fn num_cpus(&self) -> usize {
        self.nodes.iter().map(|n| n.cpus.len()).sum()
    }

    /// The index (into [`nodes`](Self::nodes)) of the node holding `cpu`.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let t = Topology::uniform(2, 2);
    /// assert_eq!((t.node_of_cpu(2), t.node_of_cpu(4)), (Some(1), None));
    /// ```
    #[must_use]
    pub fn node_of_cpu(&self, cpu: usize) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.cpus.binary_search(&cpu).is_ok())
    }

    /// The distance between the nodes at indices `a` and `b`.
    ///
    /// ```
    /// use waitless::numa::Topology;
    /// let t = Topology::uniform(2, 1);
    /// assert_eq!((t.distance(0, 0), t.distance(0, 1), t.distance(0, 2)), (Some(10), Some(20), None));
    /// ```
    #[must_use]
    pub fn distance(&self, a: usize, b: usize) -> Option<u32> {
        self.nodes.get(a)?.distances.get(b).copied()
    }
}

fn default_row(me: usize, n: usize) -> Vec<u32> {
    (0..n).map(|j| if j == me { 10 } else { 20 }).collect()
}

/// The node ids under `root`: from `root/online` if present, else from the
/// `nodeN` directory names. Empty when `root` does not exist.
fn node_ids(root: &Path) -> Result<Vec<usize>, TopologyError> {
    let online = root.join("online");
    if online.exists() {
        let ids = read_cpulist(&online)?;
        for &id in &ids {
            let d = root.join(format!("node{id}"));
            if !d.is_dir() {
                return Err(TopologyError::malformed(
                    &online,
                    &read(&online)?,
                    format!("node {id} is online but {} is missing", d.display()),
                ));
            }
        }
        return Ok(ids);
    }
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(TopologyError {
                path: root.to_path_buf(),
                kind: ErrorKind::Io(e),
            })
        }
    };
    let mut ids: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let id = name.to_str()?.strip_prefix("node")?.parse().ok()?;
            e.path().is_dir().then_some(id)
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ------------------------------------------------------------ current node

/// Per-thread node state: the override, and a cached OS answer for
/// [`node_hint`].
struct NodeState {
    over: core::cell::Cell<Option<usize>>,
    cached: core::cell::Cell<usize>,
    /// Calls of `node_hint` left before the cached node is refreshed.
    left: core::cell::Cell<u32>,
}

/// How many `node_hint` calls reuse one `sched_getcpu` answer.
const HINT_REFRESH: u32 = 64;

crate::sync::thread_local! {
    static NODE: NodeState = NodeState {
        over: core::cell::Cell::new(None),
        cached: core::cell::Cell::new(0),
        left: core::cell::Cell::new(0),
    };
}

/// Makes [`current_node`] return `node` on the calling thread (or, with
/// `None`, the real node again); returns the previous override. Tests and
/// benchmarks use it to run threads "on" the nodes of a simulated topology.
///
/// ```
/// use waitless::numa::{current_node, set_node_override};
/// let before = set_node_override(Some(3));
/// assert_eq!(current_node(), 3);
/// set_node_override(before);
/// ```
pub fn set_node_override(node: Option<usize>) -> Option<usize> {
    NODE.with(|s| s.over.replace(node))
}

/// The NUMA node the calling thread runs on: the override set by
/// [`set_node_override`] if any, else the node of the CPU `sched_getcpu`
/// reports (0 where that is unavailable, e.g. outside Linux or under Miri).
/// The answer may be stale as soon as it returns: the thread can migrate.
///
/// ```
/// use waitless::numa::{current_node, set_node_override};
/// let prev = set_node_override(Some(3));
/// assert_eq!(current_node(), 3);
/// set_node_override(prev);
/// ```
#[must_use]
pub fn current_node() -> usize {
    NODE.with(|s| s.over.get()).unwrap_or_else(os_node)
}

/// [`current_node`] for hot paths: the override if any, else an OS answer
/// reused for [`HINT_REFRESH`] calls. A stale node costs locality, never
/// correctness, in every structure of this module.
#[inline]
pub(crate) fn node_hint() -> usize {
    NODE.with(|s| {
        if let Some(n) = s.over.get() {
            return n;
        }
        match s.left.get() {
            0 => {
                let n = os_node();
                s.cached.set(n);
                s.left.set(HINT_REFRESH - 1);
                n
            }
            left => {
                s.left.set(left - 1);
                s.cached.get()
            }
        }
    })
}

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
fn os_node() -> usize {
    use std::sync::OnceLock;
    static CPU_TO_NODE: OnceLock<Vec<u16>> = OnceLock::new();
    // SAFETY: `sched_getcpu` has no preconditions; it returns -1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        return 0;
    }
    let table = CPU_TO_NODE.get_or_init(|| {
        let t = Topology::current();
        let max = t.nodes().iter().flat_map(|n| n.cpus.iter()).max().copied();
        let mut v = vec![0u16; max.map_or(0, |m| m + 1)];
        for n in t.nodes() {
            for &c in &n.cpus {
                v[c] = n.id.min(u16::MAX as usize) as u16;
            }
        }
        v
    });
    table.get(cpu as usize).map_or(0, |&n| n as usize)
}

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
fn os_node() -> usize {
    0
}
