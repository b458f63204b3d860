//! Recording concurrent histories: [`Recorder`], [`ThreadLog`], [`History`].

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One operation of a history: what was asked, what came back, and when.
///
/// Times are nanoseconds since the [`Recorder`] was created, all read from
/// one monotonic clock ([`Instant`]), so times from different threads are
/// comparable. `output` and `ret` are `None` for a *pending* operation, one
/// whose return was never recorded (its thread panicked, or the history was
/// cut short): the checker may linearize it anywhere after its call, or not
/// at all.
#[derive(Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The thread that ran the operation (0, 1, … in the order threads
    /// called [`Recorder::thread`]; any label for hand-built histories).
    pub thread: usize,
    /// The operation and its arguments.
    pub input: I,
    /// The answer, or `None` while pending.
    pub output: Option<O>,
    /// When the operation was invoked.
    pub call: u64,
    /// When it returned, or `None` while pending.
    pub ret: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// A completed operation: `input` invoked at `call`, answered `output`
    /// at `ret`.
    ///
    /// # Panics
    /// If `ret < call`.
    #[must_use]
    pub fn new(thread: usize, input: I, output: O, call: u64, ret: u64) -> Self {
        assert!(
            call <= ret,
            "Operation::new: return time {ret} is before call time {call}"
        );
        Operation {
            thread,
            input,
            output: Some(output),
            call,
            ret: Some(ret),
        }
    }

    /// A pending operation: invoked at `call`, never returned.
    #[must_use]
    pub fn pending(thread: usize, input: I, call: u64) -> Self {
        Operation {
            thread,
            input,
            output: None,
            call,
            ret: None,
        }
    }

    /// Whether the return was never recorded.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        self.ret.is_none()
    }
}

impl<I: fmt::Debug, O: fmt::Debug> fmt::Debug for Operation<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[t{}] {:?} -> ", self.thread, self.input)?;
        match (&self.output, self.ret) {
            (Some(o), Some(r)) => write!(f, "{o:?}  @{}..{}", self.call, r),
            _ => write!(f, "(pending)  @{}..", self.call),
        }
    }
}

/// A finished history: every operation recorded by every thread.
///
/// Built by [`Recorder::into_history`], or by hand with [`History::from_ops`]
/// / [`History::push`] for tests.
#[derive(Clone)]
pub struct History<I, O> {
    ops: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History { ops: Vec::new() }
    }
}

impl<I, O> History<I, O> {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A history made of these operations (any order).
    ///
    /// # Panics
    /// If an operation returns before it is called, or has an output but no
    /// return time (or the reverse).
    #[must_use]
    pub fn from_ops(ops: Vec<Operation<I, O>>) -> Self {
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(
                op.output.is_some(),
                op.ret.is_some(),
                "History::from_ops: operation {i} must have both an output and a return time, or neither"
            );
            if let Some(r) = op.ret {
                assert!(
                    op.call <= r,
                    "History::from_ops: operation {i} returns at {r}, before its call at {}",
                    op.call
                );
            }
        }
        History { ops }
    }

    /// Adds a completed operation (see [`Operation::new`]).
    pub fn push(&mut self, thread: usize, input: I, output: O, call: u64, ret: u64) -> &mut Self {
        self.ops
            .push(Operation::new(thread, input, output, call, ret));
        self
    }

    /// Adds a pending operation (see [`Operation::pending`]).
    pub fn push_pending(&mut self, thread: usize, input: I, call: u64) -> &mut Self {
        self.ops.push(Operation::pending(thread, input, call));
        self
    }

    /// The operations, grouped by thread in recording order.
    #[must_use]
    pub fn ops(&self) -> &[Operation<I, O>] {
        &self.ops
    }

    /// Number of operations.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of pending operations.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.ops.iter().filter(|o| o.is_pending()).count()
    }

    /// Gives the operations back.
    #[must_use]
    pub fn into_ops(self) -> Vec<Operation<I, O>> {
        self.ops
    }
}

impl<I: fmt::Debug, O: fmt::Debug> fmt::Debug for History<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.ops).finish()
    }
}

/// Collects a concurrent history from many threads.
///
/// Each thread takes its own [`ThreadLog`] with [`Recorder::thread`] and
/// records into a private buffer; the only shared writes are one counter
/// increment when the log is created and one short lock when it is dropped
/// (to hand its buffer over). Recording an operation touches no shared
/// memory except the clock read. After all threads are joined,
/// [`Recorder::into_history`] merges the buffers.
///
/// ```
/// use waitless_check::{Recorder, RegisterOp, RegisterRet, RegisterModel, assert_linearizable};
/// use std::sync::Mutex;
///
/// let reg = Mutex::new(0u64);
/// let rec: Recorder<RegisterOp<u64>, RegisterRet<u64>> = Recorder::new();
/// std::thread::scope(|s| {
///     for t in 0..2u64 {
///         let (rec, reg) = (&rec, &reg);
///         s.spawn(move || {
///             let mut log = rec.thread();
///             for i in 0..100 {
///                 log.op(RegisterOp::Write(t * 1000 + i), || {
///                     *reg.lock().unwrap() = t * 1000 + i;
///                     RegisterRet::Written
///                 });
///                 log.op(RegisterOp::Read, || RegisterRet::Read(*reg.lock().unwrap()));
///             }
///         });
///     }
/// });
/// let history = rec.into_history();
/// assert_eq!(history.len(), 400);
/// assert_linearizable(&RegisterModel::new(0), &history);
/// ```
pub struct Recorder<I, O> {
    start: Instant,
    next_thread: AtomicU32,
    logs: Mutex<Vec<Vec<Operation<I, O>>>>,
}

impl<I, O> Default for Recorder<I, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I, O> fmt::Debug for Recorder<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("threads", &self.next_thread.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<I, O> Recorder<I, O> {
    /// A recorder whose clock starts now.
    #[must_use]
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            next_thread: AtomicU32::new(0),
            logs: Mutex::new(Vec::new()),
        }
    }

    /// A fresh per-thread log. Use one per thread (several per thread are
    /// allowed; each gets its own thread label).
    #[must_use]
    pub fn thread(&self) -> ThreadLog<'_, I, O> {
        // Relaxed: the counter only hands out distinct labels; no data is
        // published through it.
        let thread = self.next_thread.fetch_add(1, Ordering::Relaxed);
        ThreadLog {
            rec: self,
            thread,
            ops: Vec::with_capacity(256),
        }
    }

    /// Nanoseconds since the recorder was created.
    #[inline]
    fn now(&self) -> u64 {
        // u64 nanoseconds cover 584 years.
        self.start.elapsed().as_nanos() as u64
    }

    /// Merges every thread's buffer into one history. All [`ThreadLog`]s
    /// borrow the recorder, so they are all dropped (flushed) by now.
    #[must_use]
    pub fn into_history(self) -> History<I, O> {
        let logs = self
            .logs
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut logs = logs;
        // Deterministic order: by thread label.
        logs.sort_by_key(|l| l.first().map_or(usize::MAX, |o| o.thread));
        History {
            ops: logs.into_iter().flatten().collect(),
        }
    }
}

/// Identifies a call recorded by a [`ThreadLog`]; give it back to
/// [`ThreadLog::ret`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId {
    thread: u32,
    index: u32,
}

/// One thread's buffer of a [`Recorder`]. Recording pushes to a private
/// `Vec`; dropping the log hands the buffer to the recorder (one lock per
/// thread, not per operation).
pub struct ThreadLog<'r, I, O> {
    rec: &'r Recorder<I, O>,
    thread: u32,
    ops: Vec<Operation<I, O>>,
}

impl<I, O> fmt::Debug for ThreadLog<'_, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadLog")
            .field("thread", &self.thread)
            .field("ops", &self.ops.len())
            .finish()
    }
}

impl<I, O> ThreadLog<'_, I, O> {
    /// Records the invocation of `input` (timestamp taken now, before the
    /// operation runs). An operation whose [`ret`](Self::ret) is never
    /// recorded stays pending.
    #[inline]
    pub fn call(&mut self, input: I) -> OpId {
        let index = u32::try_from(self.ops.len()).expect("ThreadLog: more than 2^32 operations");
        let call = self.rec.now();
        self.ops.push(Operation {
            thread: self.thread as usize,
            input,
            output: None,
            call,
            ret: None,
        });
        OpId {
            thread: self.thread,
            index,
        }
    }

    /// Records the answer of the call `id` (timestamp taken now, after the
    /// operation finished).
    ///
    /// # Panics
    /// If `id` came from another log, or was already answered.
    #[inline]
    pub fn ret(&mut self, id: OpId, output: O) {
        let ret = self.rec.now();
        assert_eq!(
            id.thread, self.thread,
            "ThreadLog::ret: the OpId belongs to thread log {}, not {}",
            id.thread, self.thread
        );
        let op = &mut self.ops[id.index as usize];
        assert!(
            op.ret.is_none(),
            "ThreadLog::ret: operation {:?} already has a return",
            id
        );
        op.output = Some(output);
        op.ret = Some(ret);
    }

    /// Records `input`, runs `f`, records its answer and returns a clone of
    /// it. If `f` panics the operation stays pending.
    #[inline]
    pub fn op(&mut self, input: I, f: impl FnOnce() -> O) -> O
    where
        O: Clone,
    {
        let id = self.call(input);
        let out = f();
        self.ret(id, out.clone());
        out
    }

    /// Number of operations recorded so far by this log.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether this log recorded nothing yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl<I, O> Drop for ThreadLog<'_, I, O> {
    fn drop(&mut self) {
        let ops = std::mem::take(&mut self.ops);
        if ops.is_empty() {
            return;
        }
        // A panicking peer poisons nothing we care about: the buffers are
        // plain data, so take them anyway.
        let mut logs = self
            .rec
            .logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        logs.push(ops);
    }
}
