//! Channel workloads (issues 6, 13): SPSC throughput (single and batched),
//! MPMC 1P1C/2P2C/4P4C/8P8C throughput and blocking round-trip latency,
//! against rtrb, std `sync_channel`, crossbeam-channel, flume, kanal and a
//! `Mutex<VecDeque>` baseline.
//!
//! Roles are fixed per thread index (even: producer, odd: consumer), so each
//! workload declares its thread count ([`Workload::at`]). One
//! counted operation is one message *received* (producers' calls count 0),
//! so `ops_per_sec` is messages per second; in the round-trip workload one
//! operation is one completed ping→pong, and its latency percentiles are
//! round-trip times.
//!
//! Every contender runs under the same harness. In oversubscribed runs
//! (more threads than CPUs) a failed non-blocking call is followed by the
//! same backoff (`after_failed_call`); the round trip's two threads are
//! pinned to different CPUs (`place`). Without them those runs were a
//! scheduling lottery (docs/channel.md §8.3).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use waitless::channel::{self as wl, OptimizedChannel, SeqCstAll};

use super::{Contender, Entry, Role, Workload, NOISY_MIN_WINDOW};
use crate::measure::{run_workload, RunConfig, RunResult};

/// Capacity of every MPMC channel measured.
pub const MPMC_CAPACITY: usize = 1024;
/// Capacity of every SPSC ring measured.
pub const SPSC_CAPACITY: usize = 1024;
/// Messages moved per call in the batch variant.
pub const BATCH: usize = 32;

// Every channel workload is two threads on a shared line or oversubscribed:
// all are measured over at least NOISY_MIN_WINDOW in a budgeted run.
const SPSC: Workload = Workload::new("channel", "channel/spsc", "messages")
    .at(&[2])
    .min_window(NOISY_MIN_WINDOW);
const SPSC_BATCH: Workload = Workload::new("channel", "channel/spsc-batch32", "messages")
    .at(&[2])
    .min_window(NOISY_MIN_WINDOW);
const MPMC_1P1C: Workload = Workload::new("channel", "channel/mpmc-1p1c", "messages")
    .at(&[2])
    .min_window(NOISY_MIN_WINDOW);
const MPMC_2P2C: Workload = Workload::new("channel", "channel/mpmc-2p2c", "messages")
    .at(&[4])
    .min_window(NOISY_MIN_WINDOW);
const MPMC_4P4C: Workload = Workload::new("channel", "channel/mpmc-4p4c", "messages")
    .at(&[8])
    .min_window(NOISY_MIN_WINDOW);
const MPMC_8P8C: Workload = Workload::new("channel", "channel/mpmc-8p8c", "messages")
    .at(&[16])
    .min_window(NOISY_MIN_WINDOW);
const ROUNDTRIP: Workload = Workload::new("channel", "channel/blocking-roundtrip", "round trips")
    .at(&[2])
    .min_window(NOISY_MIN_WINDOW);

/// Consecutive failed calls (full on send, empty on receive) over which a
/// thread of an oversubscribed run doubles its spin before it yields.
pub const SPIN_STEPS: u32 = 6;

/// What every thread of every throughput contender does after a failed
/// non-blocking call in a run with more threads than CPUs: the retry loop a
/// user writes around `try_*` (crossbeam's `Backoff::snooze` shape). The
/// `k`-th failure in a row spins `2^k` spin-loop hints; past [`SPIN_STEPS`]
/// failures it yields, so a thread whose peers are all descheduled hands
/// its CPU to one of them instead of spinning through its time slice (two
/// producers and no consumer on the two CPUs fail every call until the
/// scheduler steps in). A success resets the count. Runs where every thread
/// has a CPU retry at once, as before (`roles`).
#[inline]
fn after_failed_call(fails: &mut u32) {
    if *fails < SPIN_STEPS {
        for _ in 0..1u32 << *fails {
            std::hint::spin_loop();
        }
        *fails += 1;
    } else {
        std::thread::yield_now();
    }
}

/// Pins the calling thread, workload thread `t` of `threads`, to the `t`-th
/// CPU it may run on, when there are at least as many such CPUs as threads;
/// best effort: on failure or where affinity is not supported it stays
/// where the scheduler puts it. Used by the round trip, for every contender:
/// the scheduler otherwise sometimes wakes the echoer on the pinger's CPU
/// (wake-affine), and the run becomes a context-switch benchmark (0.3M
/// instead of ~2M round trips/s in the wave-4 quiet run, for waitless and
/// crossbeam alike).
fn place(t: usize, threads: usize) {
    #[cfg(target_os = "linux")]
    {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `cpu_set_t` is plain data; all zeroes is the empty set.
        let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; `allowed` is valid for `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `c < CPU_SETSIZE`, inside the set.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &allowed) })
            .collect();
        if cpus.len() < threads.max(2) {
            return;
        }
        // SAFETY: as above.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: the CPU number came from the set, so it is < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpus[t % cpus.len()], &mut one) };
        // SAFETY: pid 0 is the calling thread; `one` is valid for `size` bytes.
        unsafe { libc::sched_setaffinity(0, size, &one) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (t, threads);
}

/// Runs `threads` threads; even indices take a producer from `producers`,
/// odd ones a consumer from `consumers`. `push` returns whether the message
/// went in (not counted); `pop` returns the number of messages received.
/// In an oversubscribed run a failed call is followed by
/// `after_failed_call`'s wait, for every contender.
fn roles<P: Send, C: Send>(
    cfg: &RunConfig,
    threads: usize,
    producers: Vec<P>,
    consumers: Vec<C>,
    push: impl Fn(&mut P, u64) -> bool + Sync,
    pop: impl Fn(&mut C) -> u64 + Sync,
) -> RunResult {
    assert_eq!(
        threads,
        producers.len() + consumers.len(),
        "channel workloads run at their fixed thread counts"
    );
    enum State<P, C> {
        Producer(P, u64, u32),
        Consumer(C, u32),
    }
    let producers = Mutex::new(producers.into_iter().map(Some).collect::<Vec<_>>());
    let consumers = Mutex::new(consumers.into_iter().map(Some).collect::<Vec<_>>());
    let oversubscribed = threads > std::thread::available_parallelism().map_or(1, |n| n.get());
    run_workload(
        cfg,
        threads,
        |t| {
            if t % 2 == 0 {
                let p = producers.lock().unwrap()[t / 2]
                    .take()
                    .expect("one per thread");
                State::Producer(p, 0, 0)
            } else {
                let c = consumers.lock().unwrap()[t / 2]
                    .take()
                    .expect("one per thread");
                State::Consumer(c, 0)
            }
        },
        |s| match s {
            State::Producer(p, n, fails) => {
                *n += 1;
                if push(p, *n) {
                    *fails = 0;
                } else if oversubscribed {
                    after_failed_call(fails);
                }
                0
            }
            State::Consumer(c, fails) => {
                let got = pop(c);
                if got > 0 {
                    *fails = 0;
                } else if oversubscribed {
                    after_failed_call(fails);
                }
                got
            }
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

/// A channel of `u64` as the throughput workloads drive it: non-blocking
/// calls from fixed producer and consumer threads.
pub trait BenchChannel: Contender + Sized {
    /// A producer's endpoint.
    type Tx: Send;
    /// A consumer's endpoint.
    type Rx: Send;
    /// `n` producer and `n` consumer endpoints of one fresh channel.
    ///
    /// # Panics
    /// When the contender cannot have `n` of each (an SPSC ring, `n > 1`).
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>);
    /// Sends message number `seq` without blocking (dropped when full);
    /// `true` if it went in.
    fn send(tx: &mut Self::Tx, seq: u64) -> bool;
    /// Receives without blocking; returns how many messages arrived.
    fn recv(rx: &mut Self::Rx) -> u64;
}

fn one(n: usize, what: &str) {
    assert_eq!(n, 1, "{what} has a single producer and a single consumer");
}

/// `waitless::channel::spsc`, one message per call.
pub struct WaitlessSpsc;

impl Contender for WaitlessSpsc {
    const NAME: &'static str = "waitless spsc";
    const ROLE: Role = Role::Waitless;
}

impl BenchChannel for WaitlessSpsc {
    type Tx = wl::spsc::Producer<u64>;
    type Rx = wl::spsc::Consumer<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        one(n, "waitless spsc");
        let (p, c) = wl::spsc::bounded(SPSC_CAPACITY);
        (vec![p], vec![c])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.push(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.pop().is_some())
    }
}

/// `waitless::channel::spsc`, [`BATCH`] messages per call through its
/// chunk API, used exactly as [`RtrbBatch`] uses rtrb's: a producer chunk
/// of up to [`BATCH`] slots filled from a counter, a consumer chunk of up
/// to [`BATCH`] values, each value read (summed into a `black_box`).
pub struct WaitlessSpscBatch;

impl Contender for WaitlessSpscBatch {
    const NAME: &'static str = "waitless spsc (batch 32)";
    const ROLE: Role = Role::Waitless;
}

impl BenchChannel for WaitlessSpscBatch {
    type Tx = (wl::spsc::Producer<u64>, u64);
    type Rx = wl::spsc::Consumer<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        one(n, "waitless spsc");
        let (p, c) = wl::spsc::bounded(SPSC_CAPACITY);
        (vec![(p, 0)], vec![c])
    }
    fn send((p, seq): &mut Self::Tx, _v: u64) -> bool {
        let first = *seq;
        let n = p.write_chunk(BATCH).fill_from_iter(&mut (first..)) as u64;
        *seq += n;
        n > 0
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        let chunk = c.read_chunk(BATCH);
        let n = chunk.len() as u64;
        std::hint::black_box(chunk.fold(0u64, u64::wrapping_add));
        n
    }
}

/// `rtrb::RingBuffer`.
pub struct Rtrb;

impl Contender for Rtrb {
    const NAME: &'static str = "rtrb";
    const ROLE: Role = Role::Peer;
}

impl BenchChannel for Rtrb {
    type Tx = rtrb::Producer<u64>;
    type Rx = rtrb::Consumer<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        one(n, "rtrb");
        let (p, c) = rtrb::RingBuffer::new(SPSC_CAPACITY);
        (vec![p], vec![c])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.push(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.pop().is_ok())
    }
}

/// `std::sync::mpsc::sync_channel` (a single receiver).
pub struct StdSync;

impl Contender for StdSync {
    const NAME: &'static str = "std sync_channel";
    const ROLE: Role = Role::Peer;
}

impl BenchChannel for StdSync {
    type Tx = std::sync::mpsc::SyncSender<u64>;
    type Rx = std::sync::mpsc::Receiver<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        one(n, "std::sync::mpsc");
        let (tx, rx) = std::sync::mpsc::sync_channel(SPSC_CAPACITY);
        (vec![tx], vec![rx])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.try_send(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.try_recv().is_ok())
    }
}

/// `waitless::channel::OptimizedChannel` with ordering strategy `O`.
pub struct Optimized<O>(std::marker::PhantomData<O>);

impl Contender for Optimized<wl::Optimized> {
    const NAME: &'static str = "waitless OptimizedChannel";
    const ROLE: Role = Role::Waitless;
}

impl Contender for Optimized<SeqCstAll> {
    const NAME: &'static str = "waitless OptimizedChannel<SeqCstAll>";
    const ROLE: Role = Role::Waitless;
}

impl<O: wl::OrderingStrategy + 'static> BenchChannel for Optimized<O>
where
    Self: Contender,
    OptimizedChannel<u64, O>: Send + Sync,
{
    type Tx = Arc<OptimizedChannel<u64, O>>;
    type Rx = Arc<OptimizedChannel<u64, O>>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let ch = Arc::new(OptimizedChannel::with_strategy(MPMC_CAPACITY));
        (vec![ch.clone(); n], vec![ch; n])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.send(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.recv().is_some())
    }
}

/// `waitless::channel::bounded` handles, through `try_send` / `try_recv`.
pub struct WaitlessHandles;

impl Contender for WaitlessHandles {
    const NAME: &'static str = "waitless bounded (try_*)";
    const ROLE: Role = Role::Waitless;
}

impl BenchChannel for WaitlessHandles {
    type Tx = wl::Sender<u64>;
    type Rx = wl::Receiver<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = wl::bounded(MPMC_CAPACITY);
        (vec![tx; n], vec![rx; n])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.try_send(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.try_recv().is_ok())
    }
}

/// `crossbeam_channel::bounded`.
pub struct Crossbeam;

impl Contender for Crossbeam {
    const NAME: &'static str = "crossbeam-channel";
    const ROLE: Role = Role::Peer;
}

impl BenchChannel for Crossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = crossbeam_channel::bounded(MPMC_CAPACITY);
        (vec![tx; n], vec![rx; n])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.try_send(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.try_recv().is_ok())
    }
}

/// `flume::bounded`.
pub struct Flume;

impl Contender for Flume {
    const NAME: &'static str = "flume";
    const ROLE: Role = Role::Peer;
}

impl BenchChannel for Flume {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = flume::bounded(MPMC_CAPACITY);
        (vec![tx; n], vec![rx; n])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.try_send(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.try_recv().is_ok())
    }
}

/// `kanal::bounded` (sync API).
pub struct Kanal;

impl Contender for Kanal {
    const NAME: &'static str = "kanal";
    const ROLE: Role = Role::Peer;
}

impl BenchChannel for Kanal {
    type Tx = kanal::Sender<u64>;
    type Rx = kanal::Receiver<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = kanal::bounded(MPMC_CAPACITY);
        (vec![tx; n], vec![rx; n])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        p.try_send(v).is_ok()
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(matches!(c.try_recv(), Ok(Some(_))))
    }
}

/// `rtrb`, [`BATCH`] messages per call through its chunk API; each value
/// read (summed into a `black_box`, as [`WaitlessSpscBatch`] does: without
/// it the compiler drops the reads of a counted-only chunk, and the
/// consumer never touches the message lines).
pub struct RtrbBatch;

impl Contender for RtrbBatch {
    const NAME: &'static str = "rtrb (batch 32)";
    const ROLE: Role = Role::Peer;
}

impl BenchChannel for RtrbBatch {
    type Tx = (rtrb::Producer<u64>, u64);
    type Rx = rtrb::Consumer<u64>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        one(n, "rtrb");
        let (p, c) = rtrb::RingBuffer::new(SPSC_CAPACITY);
        (vec![(p, 0)], vec![c])
    }
    fn send((p, seq): &mut Self::Tx, _v: u64) -> bool {
        let n = p.slots().min(BATCH);
        if n > 0 {
            if let Ok(chunk) = p.write_chunk_uninit(n) {
                let first = *seq;
                *seq += n as u64;
                chunk.fill_from_iter(first..);
                return true;
            }
        }
        false
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        let n = c.slots().min(BATCH);
        match c.read_chunk(n) {
            Ok(chunk) if n > 0 => {
                std::hint::black_box(chunk.into_iter().fold(0u64, u64::wrapping_add));
                n as u64
            }
            _ => 0,
        }
    }
}

/// `Mutex<VecDeque>` with the MPMC capacity.
pub struct MutexDeque;

impl Contender for MutexDeque {
    const NAME: &'static str = "Mutex<VecDeque>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchChannel for MutexDeque {
    type Tx = Arc<Mutex<VecDeque<u64>>>;
    type Rx = Arc<Mutex<VecDeque<u64>>>;
    fn endpoints(n: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = Arc::new(Mutex::new(VecDeque::with_capacity(MPMC_CAPACITY)));
        (vec![q.clone(); n], vec![q; n])
    }
    fn send(p: &mut Self::Tx, v: u64) -> bool {
        let mut q = p.lock().unwrap();
        let room = q.len() < MPMC_CAPACITY;
        if room {
            q.push_back(v);
        }
        room
    }
    fn recv(c: &mut Self::Rx) -> u64 {
        u64::from(c.lock().unwrap().pop_front().is_some())
    }
}

fn throughput<C: BenchChannel>(cfg: &RunConfig, threads: usize) -> RunResult {
    let (producers, consumers) = C::endpoints(half(threads));
    roles(cfg, threads, producers, consumers, C::send, C::recv)
}

// ---- blocking round trip ----

/// A blocking channel flavour for the round-trip workload.
pub trait Blocking: Contender {
    /// Sending endpoint.
    type Tx: Send;
    /// Receiving endpoint.
    type Rx: Send;
    /// A channel of capacity one.
    fn pair() -> (Self::Tx, Self::Rx);
    /// Sends, waiting at most `t`; `false` on timeout.
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool;
    /// Receives, waiting at most `t`.
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64>;
}

/// Blocking `waitless bounded`.
pub struct WaitlessB;

impl Contender for WaitlessB {
    const NAME: &'static str = "waitless bounded";
    const ROLE: Role = Role::Waitless;
}

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

/// Blocking `crossbeam-channel`.
pub struct CrossbeamB;

impl Contender for CrossbeamB {
    const NAME: &'static str = "crossbeam-channel";
    const ROLE: Role = Role::Peer;
}

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

/// Blocking `flume`.
pub struct FlumeB;

impl Contender for FlumeB {
    const NAME: &'static str = "flume";
    const ROLE: Role = Role::Peer;
}

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

/// Blocking `kanal`.
pub struct KanalB;

impl Contender for KanalB {
    const NAME: &'static str = "kanal";
    const ROLE: Role = Role::Peer;
}

impl Blocking for KanalB {
    type Tx = kanal::Sender<u64>;
    type Rx = kanal::Receiver<u64>;
    fn pair() -> (Self::Tx, Self::Rx) {
        kanal::bounded(1)
    }
    fn send(tx: &Self::Tx, v: u64, t: Duration) -> bool {
        tx.send_timeout(v, t).is_ok()
    }
    fn recv(rx: &Self::Rx, t: Duration) -> Option<u64> {
        rx.recv_timeout(t).ok()
    }
}

/// Blocking `std sync_channel`.
pub struct StdB;

impl Contender for StdB {
    const NAME: &'static str = "std sync_channel";
    const ROLE: Role = Role::Peer;
}

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
            place(t, threads);
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

/// The table of implementations of the MPMC workloads.
macro_rules! mpmc {
    ($workload:expr) => {
        table!(
            $workload,
            throughput,
            [
                Optimized<wl::Optimized>,
                Crossbeam,
                WaitlessHandles,
                Optimized<SeqCstAll>,
                MutexDeque,
                Flume,
                Kanal,
            ]
        )
    };
}

/// Every channel workload entry. Within a workload the goal pairs sit next
/// to each other (waitless spsc beside rtrb, each waitless MPMC channel
/// beside crossbeam-channel): a round runs the contenders in this order and
/// the next in reverse (`report::run_plan`), so the runs the paired
/// estimate compares are adjacent in time.
pub fn entries() -> Vec<Entry> {
    [
        table!(
            SPSC,
            throughput,
            [
                WaitlessSpsc,
                Rtrb,
                MutexDeque,
                WaitlessSpscBatch,
                Optimized<wl::Optimized>,
                StdSync,
                Crossbeam,
            ]
        ),
        table!(SPSC_BATCH, throughput, [WaitlessSpscBatch, RtrbBatch]),
        mpmc!(MPMC_1P1C),
        mpmc!(MPMC_2P2C),
        mpmc!(MPMC_4P4C),
        mpmc!(MPMC_8P8C),
        table!(
            ROUNDTRIP,
            roundtrip,
            [WaitlessB, CrossbeamB, FlumeB, KanalB, StdB]
        ),
    ]
    .concat()
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
