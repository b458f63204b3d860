//! Channel workloads (issue 6): SPSC throughput, MPMC 2P2C/4P4C throughput
//! and blocking round-trip latency, against rtrb, std `sync_channel`,
//! crossbeam-channel, flume and a `Mutex<VecDeque>` baseline.
//!
//! Roles are fixed per thread index (even: producer, odd: consumer), so each
//! workload declares its thread count in [`Entry::fixed_threads`]. One
//! counted operation is one message *received* (producers' calls count 0),
//! so `ops_per_sec` is messages per second; in the round-trip workload one
//! operation is one completed ping→pong, and its latency percentiles are
//! round-trip times.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use waitless::channel::{self as wl, OptimizedChannel, SeqCstAll};

use super::{Entry, Role};
use crate::measure::{run_workload, RunConfig, RunResult};

/// Capacity of every MPMC channel measured.
pub const MPMC_CAPACITY: usize = 1024;
/// Capacity of every SPSC ring measured.
pub const SPSC_CAPACITY: usize = 1024;
/// Messages moved per call in the batch variant.
pub const BATCH: usize = 32;

const SPSC: &str = "channel/spsc";
const MPMC_2P2C: &str = "channel/mpmc-2p2c";
const MPMC_4P4C: &str = "channel/mpmc-4p4c";
const ROUNDTRIP: &str = "channel/blocking-roundtrip";

/// Runs `threads` threads; even indices take a producer from `producers`,
/// odd ones a consumer from `consumers`. `push` returns nothing counted;
/// `pop` returns the number of messages received.
fn roles<P: Send, C: Send>(
    cfg: &RunConfig,
    threads: usize,
    producers: Vec<P>,
    consumers: Vec<C>,
    push: impl Fn(&mut P, u64) + Sync,
    pop: impl Fn(&mut C) -> u64 + Sync,
) -> RunResult {
    assert_eq!(
        threads,
        producers.len() + consumers.len(),
        "channel workloads run at their fixed thread counts"
    );
    enum State<P, C> {
        Producer(P, u64),
        Consumer(C),
    }
    let producers = Mutex::new(producers.into_iter().map(Some).collect::<Vec<_>>());
    let consumers = Mutex::new(consumers.into_iter().map(Some).collect::<Vec<_>>());
    run_workload(
        cfg,
        threads,
        |t| {
            if t % 2 == 0 {
                let p = producers.lock().unwrap()[t / 2]
                    .take()
                    .expect("one per thread");
                State::Producer(p, 0)
            } else {
                let c = consumers.lock().unwrap()[t / 2]
                    .take()
                    .expect("one per thread");
                State::Consumer(c)
            }
        },
        |s| match s {
            State::Producer(p, n) => {
                *n += 1;
                push(p, *n);
                0
            }
            State::Consumer(c) => pop(c),
        },
    )
}

fn half(threads: usize) -> usize {
    assert!(
        threads >= 2 && threads % 2 == 0,
        "needs an even thread count, got {threads}"
    );
    threads / 2
}

// ---- SPSC and MPMC contenders (non-blocking calls) ----

fn waitless_spsc(cfg: &RunConfig, threads: usize) -> RunResult {
    let (p, c) = wl::spsc::bounded::<u64>(SPSC_CAPACITY);
    roles(
        cfg,
        threads,
        vec![p],
        vec![c],
        |p, v| {
            let _ = p.push(v);
        },
        |c| u64::from(c.pop().is_some()),
    )
}

fn waitless_spsc_batch(cfg: &RunConfig, threads: usize) -> RunResult {
    let (p, c) = wl::spsc::bounded::<u64>(SPSC_CAPACITY);
    let buf = Vec::with_capacity(BATCH);
    roles(
        cfg,
        threads,
        vec![p],
        vec![(c, buf)],
        |p, v| {
            let mut it = v * BATCH as u64..(v + 1) * BATCH as u64;
            p.push_iter(&mut it);
        },
        |(c, buf)| {
            buf.clear();
            c.pop_batch(buf, BATCH) as u64
        },
    )
}

fn rtrb_spsc(cfg: &RunConfig, threads: usize) -> RunResult {
    let (p, c) = rtrb::RingBuffer::<u64>::new(SPSC_CAPACITY);
    roles(
        cfg,
        threads,
        vec![p],
        vec![c],
        |p, v| {
            let _ = p.push(v);
        },
        |c| u64::from(c.pop().is_ok()),
    )
}

fn std_sync_channel(cfg: &RunConfig, threads: usize) -> RunResult {
    let n = half(threads);
    assert_eq!(n, 1, "std::sync::mpsc has a single receiver");
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(SPSC_CAPACITY);
    roles(
        cfg,
        threads,
        vec![tx],
        vec![rx],
        |p, v| {
            let _ = p.try_send(v);
        },
        |c| u64::from(c.try_recv().is_ok()),
    )
}

fn optimized<O: wl::OrderingStrategy>(cfg: &RunConfig, threads: usize) -> RunResult {
    let n = half(threads);
    let ch: OptimizedChannel<u64, O> = OptimizedChannel::with_strategy(MPMC_CAPACITY);
    let r = &ch;
    roles(
        cfg,
        threads,
        vec![r; n],
        vec![r; n],
        |p, v| {
            let _ = p.send(v);
        },
        |c| u64::from(c.recv().is_some()),
    )
}

fn waitless_blocking_handles(cfg: &RunConfig, threads: usize) -> RunResult {
    let n = half(threads);
    let (tx, rx) = wl::bounded::<u64>(MPMC_CAPACITY);
    roles(
        cfg,
        threads,
        vec![tx; n],
        vec![rx; n],
        |p, v| {
            let _ = p.try_send(v);
        },
        |c| u64::from(c.try_recv().is_ok()),
    )
}

fn crossbeam(cfg: &RunConfig, threads: usize) -> RunResult {
    let n = half(threads);
    let (tx, rx) = crossbeam_channel::bounded::<u64>(MPMC_CAPACITY);
    roles(
        cfg,
        threads,
        vec![tx; n],
        vec![rx; n],
        |p, v| {
            let _ = p.try_send(v);
        },
        |c| u64::from(c.try_recv().is_ok()),
    )
}

fn flume_bounded(cfg: &RunConfig, threads: usize) -> RunResult {
    let n = half(threads);
    let (tx, rx) = flume::bounded::<u64>(MPMC_CAPACITY);
    roles(
        cfg,
        threads,
        vec![tx; n],
        vec![rx; n],
        |p, v| {
            let _ = p.try_send(v);
        },
        |c| u64::from(c.try_recv().is_ok()),
    )
}

fn mutex_deque(cfg: &RunConfig, threads: usize) -> RunResult {
    let n = half(threads);
    let q = Mutex::new(VecDeque::<u64>::with_capacity(MPMC_CAPACITY));
    let r = &q;
    roles(
        cfg,
        threads,
        vec![r; n],
        vec![r; n],
        |p, v| {
            let mut q = p.lock().unwrap();
            if q.len() < MPMC_CAPACITY {
                q.push_back(v);
            }
        },
        |c| u64::from(c.lock().unwrap().pop_front().is_some()),
    )
}

// ---- blocking round trip ----

/// A blocking channel flavour for the round-trip workload.
trait Blocking {
    type Tx: Send;
    type Rx: Send;
    fn pair() -> (Self::Tx, Self::Rx);
    /// Sends, waiting at most `t`; `false` on timeout.
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool;
    /// Receives, waiting at most `t`.
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64>;
}

struct WaitlessB;
impl Blocking for WaitlessB {
    type Tx = wl::Sender<u64>;
    type Rx = wl::Receiver<u64>;
    fn pair() -> (Self::Tx, Self::Rx) {
        wl::bounded(1)
    }
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool {
        tx.send_timeout(v, t).is_ok()
    }
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64> {
        rx.recv_timeout(t).ok()
    }
}

struct CrossbeamB;
impl Blocking for CrossbeamB {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn pair() -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(1)
    }
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool {
        tx.send_timeout(v, t).is_ok()
    }
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64> {
        rx.recv_timeout(t).ok()
    }
}

struct FlumeB;
impl Blocking for FlumeB {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn pair() -> (Self::Tx, Self::Rx) {
        flume::bounded(1)
    }
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool {
        tx.send_timeout(v, t).is_ok()
    }
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64> {
        rx.recv_timeout(t).ok()
    }
}

struct StdB;
impl Blocking for StdB {
    type Tx = std::sync::mpsc::SyncSender<u64>;
    type Rx = std::sync::mpsc::Receiver<u64>;
    fn pair() -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(1)
    }
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool {
        // SyncSender has no send_timeout: the pong channel always has room
        // in this workload, so try_send with a short retry suffices.
        let deadline = Instant::now() + t;
        let mut v = v;
        loop {
            match tx.try_send(v) {
                Ok(()) => return true,
                Err(std::sync::mpsc::TrySendError::Full(back)) if Instant::now() < deadline => {
                    v = back;
                    std::thread::yield_now();
                }
                Err(_) => return false,
            }
        }
    }
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64> {
        rx.recv_timeout(t).ok()
    }
}

const RT_TIMEOUT: Duration = Duration::from_millis(5);

/// Thread 0 sends a numbered ping and waits for the matching pong; thread 1
/// echoes. Timeouts only let both threads notice the end of the run.
fn roundtrip<B: Blocking>(cfg: &RunConfig, threads: usize) -> RunResult {
    assert_eq!(threads, 2, "the round trip runs on exactly two threads");
    enum State<B: Blocking> {
        Pinger(B::Tx, B::Rx, u64),
        Echoer(B::Rx, B::Tx),
    }
    let (ping_tx, ping_rx) = B::pair();
    let (pong_tx, pong_rx) = B::pair();
    let pinger = Mutex::new(Some((ping_tx, pong_rx)));
    let echoer = Mutex::new(Some((ping_rx, pong_tx)));
    run_workload(
        cfg,
        threads,
        |t| {
            if t == 0 {
                let (tx, rx) = pinger.lock().unwrap().take().expect("one pinger");
                State::<B>::Pinger(tx, rx, 0)
            } else {
                let (rx, tx) = echoer.lock().unwrap().take().expect("one echoer");
                State::<B>::Echoer(rx, tx)
            }
        },
        |s| match s {
            State::Pinger(tx, rx, seq) => {
                *seq += 1;
                if !B::send(tx, *seq, RT_TIMEOUT) {
                    return 0;
                }
                loop {
                    match B::recv(rx, RT_TIMEOUT) {
                        Some(v) if v == *seq => return 1,
                        Some(_) => continue, // a late pong of a timed-out ping
                        None => return 0,
                    }
                }
            }
            State::Echoer(rx, tx) => {
                if let Some(v) = B::recv(rx, RT_TIMEOUT) {
                    B::send(tx, v, RT_TIMEOUT);
                }
                0
            }
        },
    )
}

fn mpmc_entries(workload: &'static str, threads: &'static [usize]) -> Vec<Entry> {
    let e = |contender, role, run: fn(&RunConfig, usize) -> RunResult| Entry {
        group: "channel",
        workload,
        unit: "messages",
        contender,
        role,
        fixed_threads: Some(threads),
        run,
    };
    vec![
        e(
            "waitless OptimizedChannel",
            Role::Waitless,
            optimized::<wl::Optimized>,
        ),
        e(
            "waitless OptimizedChannel<SeqCstAll>",
            Role::Waitless,
            optimized::<SeqCstAll>,
        ),
        e(
            "waitless bounded (try_*)",
            Role::Waitless,
            waitless_blocking_handles,
        ),
        e("Mutex<VecDeque>", Role::MutexBaseline, mutex_deque),
        e("crossbeam-channel", Role::Peer, crossbeam),
        e("flume", Role::Peer, flume_bounded),
    ]
}

/// Every channel workload entry.
pub fn entries() -> Vec<Entry> {
    let spsc = |contender, role, run: fn(&RunConfig, usize) -> RunResult| Entry {
        group: "channel",
        workload: SPSC,
        unit: "messages",
        contender,
        role,
        fixed_threads: Some(&[2]),
        run,
    };
    let rt = |contender, role, run: fn(&RunConfig, usize) -> RunResult| Entry {
        group: "channel",
        workload: ROUNDTRIP,
        unit: "round trips",
        contender,
        role,
        fixed_threads: Some(&[2]),
        run,
    };
    let mut v = vec![
        spsc("waitless spsc", Role::Waitless, waitless_spsc),
        spsc(
            "waitless spsc (batch 32)",
            Role::Waitless,
            waitless_spsc_batch,
        ),
        spsc(
            "waitless OptimizedChannel 1P1C",
            Role::Waitless,
            optimized::<wl::Optimized>,
        ),
        spsc("Mutex<VecDeque>", Role::MutexBaseline, mutex_deque),
        spsc("rtrb", Role::Peer, rtrb_spsc),
        spsc("std sync_channel", Role::Peer, std_sync_channel),
        spsc("crossbeam-channel", Role::Peer, crossbeam),
    ];
    v.extend(mpmc_entries(MPMC_2P2C, &[4]));
    v.extend(mpmc_entries(MPMC_4P4C, &[8]));
    v.extend([
        rt("waitless bounded", Role::Waitless, roundtrip::<WaitlessB>),
        rt("crossbeam-channel", Role::Peer, roundtrip::<CrossbeamB>),
        rt("flume", Role::Peer, roundtrip::<FlumeB>),
        rt("std sync_channel", Role::Peer, roundtrip::<StdB>),
    ]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_runs_at_its_fixed_thread_count() {
        let cfg = RunConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(5),
        };
        for e in entries() {
            let t = e
                .fixed_threads
                .expect("channel workloads fix their threads")[0];
            let r = (e.run)(&cfg, t);
            assert_eq!(r.threads, t, "{e:?}");
        }
    }
}
