//! Blocking handles over [`OptimizedChannel`]: [`bounded`], [`Sender`],
//! [`Receiver`].
//!
//! # Parking protocol (no lost wake-ups)
//!
//! Each side has a [`Waiters`] set: a count of registered waiters (`state`),
//! a mutex guarding a notification sequence number, and a condition
//! variable. The core runs with the crate-private `Blocking` ordering
//! strategy, whose claiming CAS is `SeqCst`. A thread that cannot proceed
//! first spins a bounded number of spin-loop hints, after each one looking
//! at one cheap hint (is the slot it waits for still unchanged?) and
//! retrying as soon as it changed, then yields a few times, and reads the
//! clock (for a deadline) only then, before it parks. While the spin hints
//! last, its core attempts are `OptimizedChannel::{send,recv}_spinning`,
//! whose `Full`/`None` is only a hint (no fence, no read of the other
//! side's index, so a waiting receiver never pulls the producers' `tail`
//! line away from the next sender); every answer the caller acts on
//! (`Disconnected`, a timeout, the re-check before parking) comes from an
//! exact attempt:
//!
//! ```text
//! waiter (e.g. a receiver)                 notifier (a sender)
//! state.fetch_add(1, SeqCst)      (R)      claim CAS on tail, SeqCst     (C)
//! ticket = *lock()                         write value, store stamp
//! re-check, no lock held: core recv,       if state.load(SeqCst) != 0 {  (L)
//!   which answers None only after            lock(); seq += 1; unlock();
//!   fence(SeqCst) (F) and a load of tail      notify_one
//! lock(); if seq == ticket: condvar.wait   }
//! state.fetch_sub(1, SeqCst)
//! ```
//!
//! `R`, `F`, `C` and `L` are all in the single total order S. If `C`
//! precedes `F` in S, the waiter's `tail` load (after `F`) reads `C` or a
//! later value, so the re-check does not answer `None` (it takes a value or
//! waits for the stamp). Otherwise `R <S F <S C <S L` (`R` sb `F`, `C` sb
//! `L`), and every modification of `state` is a `SeqCst` RMW, so `L` reads
//! a value that includes `R` (only the waiter itself removes it, after its
//! wait): the notifier takes the lock and bumps the sequence. If its bump
//! comes before the waiter read its ticket, the notifier's claim happens
//! before the re-check (through the mutex), which then sees it; if after,
//! the waiter either finds `seq != ticket` under the lock and does not wait,
//! or is already waiting (`wait` released the lock the notifier then took)
//! and the `notify_one` that follows the unlock wakes a waiter. The re-check runs
//! without the mutex, so notifiers never wait for a core operation.
//! Disconnection follows the same shape: set the closed flag, then lock,
//! bump and `notify_all`.
//!
//! Every woken waiter retries its operation before it may leave (even on
//! timeout), so a `notify_one` is never swallowed by a thread that exits
//! without looking.
//!
//! # Dropping the last receiver
//!
//! The values still queued are dropped at once (as crossbeam-channel and
//! std do), so e.g. a request carrying a reply sender lets its requester
//! see `Disconnected` instead of waiting. The last receiver closes the core,
//! sets the `GONE` bit in the receive side's `state` (a `SeqCst` RMW, `W`),
//! and drains the core (each `None` answer comes after a `fence(SeqCst)`,
//! `F`, then a load of `tail`). A send that passed the closed check just
//! before the close still claims a position (`C`, `SeqCst`) and then loads
//! `state` (`L`, `SeqCst`, the same load that decides the wake-up). If `L`
//! precedes `W` in S, then `C <S L <S W <S F`, so the drain's `tail` load
//! sees `C` and the drain waits for that value and drops it; otherwise `L`
//! reads `GONE` and the sender drains the core itself. Either way the value
//! is dropped promptly, exactly once (each value is received once), never
//! left queued for nobody.

use core::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

use super::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use super::mpmc::OptimizedChannel;
use super::ordering::Blocking;
use super::ChannelError;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::CachePadded;

/// In a side's `state`: every handle of that side is gone (used on the
/// receive side: senders then drain what they send).
const GONE: usize = 1 << (usize::BITS - 1);

/// Threads parked on one side of the channel.
struct Waiters {
    /// `GONE` | the number of registered waiters. Every modification is a
    /// `SeqCst` RMW (module docs).
    state: AtomicUsize,
    /// Notification sequence number: bumped under the lock by every notify.
    lock: Mutex<u64>,
    cv: Condvar,
}

impl Waiters {
    fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            lock: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // No user code runs under this lock, so it cannot be poisoned by a
        // panic we care about; recover the guard either way.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state a notifier looks at after its successful operation.
    #[inline]
    fn state(&self) -> usize {
        // loom models SeqCst loads, stores and RMWs as Acquire/Release (a
        // documented limitation: it has no single total order for them), so
        // it cannot follow the argument in the module docs, which needs the
        // claim CAS and this load in S. Under loom a SeqCst fence between
        // the two stands in: with it the same two cases hold by the
        // fence-fence rule (the notifier's fence before or after the
        // waiter's), and that is what the loom models check.
        #[cfg(loom)]
        crate::sync::atomic::fence(Ordering::SeqCst);
        // SeqCst: in S after the caller's SeqCst claim (module docs).
        self.state.load(Ordering::SeqCst)
    }

    /// Wakes one waiter (the caller saw a registered one).
    ///
    /// The sequence number is bumped under the lock and the condition
    /// variable notified after it is released, so the woken thread does not
    /// run into a held mutex (a second sleep and wake-up). A waiter that
    /// read its ticket before the bump either sees the new number under the
    /// lock and does not sleep, or is already inside `wait` (which released
    /// the lock we then took) and receives the notification.
    #[cold]
    fn wake_one(&self) {
        {
            let mut seq = self.lock();
            *seq = seq.wrapping_add(1);
        }
        self.cv.notify_one();
    }

    /// Wakes every waiter (disconnection, batch receive); as `wake_one`.
    fn wake_all(&self) {
        {
            let mut seq = self.lock();
            *seq = seq.wrapping_add(1);
        }
        self.cv.notify_all();
    }

    /// Registers the caller and returns its ticket (the notification
    /// sequence number now). The caller re-checks, then calls [`park`](Self::park).
    fn register(&self) -> u64 {
        // SeqCst: must precede the fence of the re-check in S (module docs).
        self.state.fetch_add(1, Ordering::SeqCst);
        *self.lock()
    }

    fn unregister(&self) {
        // SeqCst: every modification of `state` is a SeqCst RMW, so a
        // notifier's SeqCst load reads the latest one (module docs).
        self.state.fetch_sub(1, Ordering::SeqCst);
    }

    /// Sleeps unless a notification came since `ticket` was taken, until
    /// notified, a spurious wake-up, or `deadline`; then unregisters.
    fn park(&self, ticket: u64, deadline: Option<Instant>) {
        let guard = self.lock();
        if *guard == ticket {
            let guard = match deadline {
                None => self.cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        guard
                    } else {
                        match self.cv.wait_timeout(guard, left) {
                            Ok((g, _)) => g,
                            Err(e) => e.into_inner().0,
                        }
                    }
                }
            };
            drop(guard);
        } else {
            drop(guard);
        }
        self.unregister();
    }
}

/// Spin-loop hints a blocked operation spends before it parks, checking
/// after each one a hint of one or two plain loads
/// (`OptimizedChannel::{send,recv}_may_succeed`), so it reacts to its peer
/// within one hint instead of within an exponentially growing spin.
const SPIN_HINTS: u32 = 128;

/// Yields (each followed by a retry) after the spin, before parking.
const SPIN_YIELDS: u32 = 4;

/// The spin-then-park budget of one blocked operation.
struct Spin {
    hints: u32,
    yields: u32,
}

impl Spin {
    fn new() -> Self {
        Self {
            hints: 0,
            yields: 0,
        }
    }

    /// `true` while the spin hints last: the caller's core attempts may
    /// then answer `Full`/`Empty` as hints (`OptimizedChannel::
    /// {send,recv}_spinning`), which skip the fence and the read of the
    /// other side's index. Once the hints are spent (the yields, the
    /// deadline check and the park), every attempt is exact. Under loom
    /// never: every attempt is exact, as the models expect.
    #[inline]
    fn spinning(&self) -> bool {
        !cfg!(loom) && self.hints < SPIN_HINTS
    }

    /// Waits a little for `ready` (spin hints, then a yield); `true` when
    /// the caller should retry its operation, `false` once the budget is
    /// spent and it should park. Under loom it never spins: every wait
    /// parks, so the models explore the parking protocol.
    #[inline]
    fn wait(&mut self, ready: impl Fn() -> bool) -> bool {
        if cfg!(loom) {
            return false;
        }
        while self.hints < SPIN_HINTS {
            self.hints += 1;
            crate::sync::spin_loop();
            if ready() {
                return true;
            }
        }
        if self.yields < SPIN_YIELDS {
            self.yields += 1;
            crate::sync::thread::yield_now();
            return true;
        }
        false
    }
}

struct Shared<T> {
    chan: OptimizedChannel<T, Blocking>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Parked senders; its own cache lines (receivers read `state` after
    /// every successful operation, senders write it when they park).
    send_waiters: CachePadded<Waiters>,
    /// Parked receivers, and the `GONE` bit once every receiver is gone.
    recv_waiters: CachePadded<Waiters>,
}

impl<T> Shared<T> {
    /// After a successful core send: wake a parked receiver if there is one,
    /// or drop what is queued if every receiver is gone.
    #[inline]
    fn after_send(&self) {
        let state = self.recv_waiters.state();
        if state != 0 {
            self.after_send_slow(state);
        }
    }

    #[cold]
    fn after_send_slow(&self, state: usize) {
        if state & GONE != 0 {
            self.discard_queued();
        } else {
            self.recv_waiters.wake_one();
        }
    }

    /// After a successful core recv: wake a parked sender if there is one.
    #[inline]
    fn after_recv(&self) {
        if self.send_waiters.state() != 0 {
            self.send_waiters.wake_one();
        }
    }

    /// Receives and drops everything queued (every receiver is gone).
    fn discard_queued(&self) {
        while let Some(v) = self.chan.recv() {
            drop(v);
        }
    }

    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.send_once(value, true)
    }

    /// One core send and its wake-up: exact (`try_send`, and a blocked
    /// sender once its spin budget is spent), or a spin-phase attempt whose
    /// `Full` is only a hint (`OptimizedChannel::send_spinning`).
    #[inline]
    fn send_once(&self, value: T, exact: bool) -> Result<(), TrySendError<T>> {
        let sent = if exact {
            self.chan.send(value)
        } else {
            self.chan.send_spinning(value)
        };
        match sent {
            Ok(()) => {
                self.after_send();
                Ok(())
            }
            Err(ChannelError::Full(v)) => Err(TrySendError::Full(v)),
            Err(ChannelError::Disconnected(v)) => Err(TrySendError::Disconnected(v)),
        }
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        self.recv_once(true)
    }

    /// One core receive and its wake-up: exact (`try_recv`, a closed
    /// channel, and a blocked receiver once its spin budget is spent), or a
    /// spin-phase attempt whose `Empty` is only a hint
    /// (`OptimizedChannel::recv_spinning`).
    #[inline]
    fn recv_once(&self, exact: bool) -> Result<T, TryRecvError> {
        // Read the flag first: a receiver that sees it closed also sees every
        // send that happened before the close, so an empty answer after it
        // means drained (see `OptimizedChannel::close`). Once closed, every
        // attempt is exact, so `Disconnected` is never a hint.
        let closed = self.chan.is_closed();
        let got = if exact || closed {
            self.chan.recv()
        } else {
            self.chan.recv_spinning()
        };
        match got {
            Some(v) => {
                self.after_recv();
                Ok(v)
            }
            None if closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    fn send_until(
        &self,
        mut value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let mut spin = Spin::new();
        loop {
            // While spinning, a `Full` may be a hint (`send_once`); the
            // timeout and the park below come only after an exact attempt.
            match self.send_once(value, !spin.spinning()) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(v)) => {
                    return Err(SendTimeoutError::Disconnected(v))
                }
                Err(TrySendError::Full(v)) => value = v,
            }
            // Spin first; the clock is read only before parking.
            if spin.wait(|| self.chan.send_may_succeed()) {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendTimeoutError::Timeout(value));
            }
            let w = &self.send_waiters;
            let ticket = w.register();
            // The re-check, without the lock (module docs).
            match self.chan.send(value) {
                Ok(()) => {
                    w.unregister();
                    self.after_send();
                    return Ok(());
                }
                Err(ChannelError::Disconnected(v)) => {
                    w.unregister();
                    return Err(SendTimeoutError::Disconnected(v));
                }
                Err(ChannelError::Full(v)) => value = v,
            }
            w.park(ticket, deadline);
        }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut spin = Spin::new();
        loop {
            // While spinning, `Empty` may be a hint (`recv_once`); the
            // timeout and the park below come only after an exact attempt.
            match self.recv_once(!spin.spinning()) {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            // Spin first; the clock is read only before parking.
            if spin.wait(|| self.chan.recv_may_succeed()) {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let w = &self.recv_waiters;
            let ticket = w.register();
            // The re-check, without the lock (module docs).
            let closed = self.chan.is_closed();
            match self.chan.recv() {
                Some(v) => {
                    w.unregister();
                    self.after_recv();
                    return Ok(v);
                }
                None if closed => {
                    w.unregister();
                    return Err(RecvTimeoutError::Disconnected);
                }
                None => {}
            }
            w.park(ticket, deadline);
        }
    }
}

/// Creates a bounded blocking channel holding at most `capacity` values.
///
/// Both handles are `Clone`. The channel disconnects when every handle of
/// one side is dropped: with every receiver gone `send` fails and gives the
/// value back; with every sender gone `recv` drains what is left, then fails.
///
/// # Panics
/// If `capacity` is not a power of two (zero included).
///
/// # Examples
///
/// ```
/// use std::thread;
/// use waitless::channel;
///
/// let (tx, rx) = channel::bounded(4);
/// let producer = thread::spawn(move || {
///     for i in 0..10 {
///         tx.send(i).unwrap(); // parks while the channel is full
///     }
/// }); // `tx` dropped here: the channel disconnects once drained
/// let got: Vec<i32> = rx.iter().collect();
/// producer.join().unwrap();
/// assert_eq!(got, (0..10).collect::<Vec<_>>());
/// ```
#[must_use]
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        chan: OptimizedChannel::with_strategy(capacity),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
        send_waiters: CachePadded::new(Waiters::new()),
        recv_waiters: CachePadded::new(Waiters::new()),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending half of a [`bounded`] channel. `Clone` to get more senders.
///
/// ```
/// use waitless::channel::bounded;
///
/// let (tx, rx) = bounded(8);
/// let tx2 = tx.clone();
/// std::thread::spawn(move || tx2.send(1).unwrap()).join().unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.len(), 2);
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half of a [`bounded`] channel. `Clone` to get more receivers
/// (each value goes to exactly one of them).
///
/// ```
/// use waitless::channel::bounded;
///
/// let (tx, rx) = bounded(8);
/// let rx2 = rx.clone(); // MPMC: each value goes to one receiver
/// tx.send(1).unwrap();
/// assert_eq!(rx2.recv(), Ok(1));
/// assert!(rx.try_recv().is_err());
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Whether `other` shares this handle's channel (for `same_channel`).
    pub(super) fn shares_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Sends `value`, parking while the channel is full. Fails, giving the
    /// value back, once every receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = waitless::channel::bounded(1);
    /// tx.send(1).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.shared.send_until(value, None) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Disconnected(v) | SendTimeoutError::Timeout(v)) => {
                Err(SendError(v))
            }
        }
    }

    /// Sends without waiting.
    ///
    /// ```
    /// use waitless::channel::{bounded, TrySendError};
    ///
    /// let (tx, _rx) = bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.shared.try_send(value)
    }

    /// Sends, waiting at most `timeout` for room. A zero timeout tries once
    /// and returns at once; a timeout too large to represent waits forever.
    /// A blocked send spins briefly (microseconds) before it first reads
    /// the clock, so a very short timeout can be overrun by that much.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::{bounded, SendTimeoutError};
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.send_timeout(1, Duration::ZERO).unwrap(); // room: succeeds at once
    /// let err = tx.send_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert!(matches!(err, SendTimeoutError::Timeout(2)));
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        if timeout.is_zero() {
            // One try, no spin before the (already elapsed) deadline.
            return self.try_send(value).map_err(|e| match e {
                TrySendError::Full(v) => SendTimeoutError::Timeout(v),
                TrySendError::Disconnected(v) => SendTimeoutError::Disconnected(v),
            });
        }
        // checked_add: `Duration::MAX` must not panic; it means "no deadline".
        let deadline = Instant::now().checked_add(timeout);
        self.shared.send_until(value, deadline)
    }

    /// Sends, waiting until `deadline` at the latest (tries once even if it
    /// has passed).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use waitless::channel::bounded;
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.send(1).unwrap();
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert!(tx.send_deadline(2, deadline).unwrap_err().is_timeout());
    /// ```
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.shared.send_until(value, Some(deadline))
    }

    /// The number of values in the channel at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(tx.is_empty() && !tx.is_full() && tx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// assert!(tx.is_full());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.chan.len()
    }

    /// `true` if the channel was empty at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(tx.is_empty() && !tx.is_full() && tx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// assert!(tx.is_full());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shared.chan.is_empty()
    }

    /// `true` if the channel was full at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(tx.is_empty() && !tx.is_full() && tx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// assert!(tx.is_full());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.shared.chan.is_full()
    }

    /// The most values the channel holds.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(tx.is_empty() && !tx.is_full() && tx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// assert!(tx.is_full());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.chan.capacity()
    }

    /// `true` once every receiver is gone.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(tx.is_empty() && !tx.is_full() && tx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(tx.len(), 2);
    /// assert!(tx.is_full());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.shared.chan.is_closed()
    }
}

impl<T> Receiver<T> {
    /// Whether `other` shares this handle's channel (for `same_channel`).
    pub(super) fn shares_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Receives a value, parking while the channel is empty. Once every
    /// sender is gone, returns what is left, then `Err(RecvError)`.
    ///
    /// ```
    /// let (tx, rx) = waitless::channel::bounded(2);
    /// tx.send("a").unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok("a"));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.shared.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives without waiting.
    ///
    /// ```
    /// use waitless::channel::{bounded, TryRecvError};
    ///
    /// let (tx, rx) = bounded(2);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(7));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.shared.try_recv()
    }

    /// Receives, waiting at most `timeout`. A zero timeout tries once and
    /// returns at once; a timeout too large to represent waits forever. A
    /// blocked receive spins briefly (microseconds) before it first reads
    /// the clock, so a very short timeout can be overrun by that much.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::{bounded, RecvTimeoutError};
    ///
    /// let (tx, rx) = bounded::<u8>(2);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(7));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        if timeout.is_zero() {
            // One try, no spin before the (already elapsed) deadline.
            return self.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            });
        }
        // checked_add: `Duration::MAX` must not panic; it means "no deadline".
        let deadline = Instant::now().checked_add(timeout);
        self.shared.recv_until(deadline)
    }

    /// Receives, waiting until `deadline` at the latest (tries once even if
    /// it has passed).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use waitless::channel::{bounded, RecvTimeoutError};
    ///
    /// let (_tx, rx) = bounded::<u8>(2);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.shared.recv_until(Some(deadline))
    }

    /// Waits for one value, then takes up to `max - 1` more that are already
    /// there without waiting; appends them to `out` and returns how many.
    /// `Err` once every sender is gone and the channel is drained.
    ///
    /// ```
    /// let (tx, rx) = waitless::channel::bounded(8);
    /// for i in 0..5 { tx.send(i).unwrap(); }
    /// let mut out = Vec::new();
    /// assert_eq!(rx.recv_batch(&mut out, 3), Ok(3));
    /// assert_eq!(out, [0, 1, 2]);
    /// ```
    pub fn recv_batch(&self, out: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.recv()?);
        let mut n = 1;
        while n < max {
            match self.shared.chan.recv() {
                Some(v) => {
                    out.push(v);
                    n += 1;
                }
                None => break,
            }
        }
        if n > 1 && self.shared.send_waiters.state() != 0 {
            // Several slots were freed: wake every parked sender, not one
            // (one notification per freed slot would be owed otherwise).
            // The SeqCst claims and state load pair as in `after_recv`.
            self.shared.send_waiters.wake_all();
        }
        Ok(n)
    }

    /// A blocking iterator that ends once every sender is gone and the
    /// channel is drained.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(4);
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send(i).unwrap();
    ///     }
    /// });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]); // ends when senders are gone
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values available now, without waiting.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]); // never blocks
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// The number of values in the channel at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(rx.is_empty() && rx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// assert!(rx.is_full());
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.chan.len()
    }

    /// `true` if the channel was empty at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(rx.is_empty() && rx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// assert!(rx.is_full());
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shared.chan.is_empty()
    }

    /// `true` if the channel was full at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(rx.is_empty() && rx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// assert!(rx.is_full());
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.shared.chan.is_full()
    }

    /// The most values the channel holds.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(rx.is_empty() && rx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// assert!(rx.is_full());
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.chan.capacity()
    }

    /// `true` once every sender is gone (values may still be left to drain).
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(2);
    /// assert!(rx.is_empty() && rx.capacity() == 2);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// assert!(rx.is_full());
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// ```
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.shared.chan.is_closed()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        // Relaxed: a new handle derived from a live one; like `Arc::clone`.
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        // Relaxed: as in `Sender::clone`.
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // AcqRel: the last sender acquires every other sender's release of
        // its count (so all their sends happen-before the close below), and
        // releases its own sends.
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.chan.close();
            self.shared.recv_waiters.wake_all();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // AcqRel: as in `Sender::drop`.
        if self.shared.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.chan.close();
            // SeqCst RMW: `W` of "Dropping the last receiver" (module docs):
            // a send whose state load comes later in S drains the core itself.
            self.shared
                .recv_waiters
                .state
                .fetch_or(GONE, Ordering::SeqCst);
            self.shared.send_waiters.wake_all();
            // Drop what is queued now; the drain waits for sends that
            // claimed a position before the close.
            self.shared.discard_queued();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .field("disconnected", &self.is_disconnected())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .field("disconnected", &self.is_disconnected())
            .finish_non_exhaustive()
    }
}

// Unwind safety: a panic in user code between channel operations cannot
// leave the channel in a broken state (no operation runs user code between
// claiming a slot and publishing it, and every value moves in or out whole),
// so the handles are unwind-safe whenever the values they carry are.
impl<T: UnwindSafe> UnwindSafe for Sender<T> {}
impl<T: UnwindSafe> RefUnwindSafe for Sender<T> {}
impl<T: UnwindSafe> UnwindSafe for Receiver<T> {}
impl<T: UnwindSafe> RefUnwindSafe for Receiver<T> {}

/// Blocking iterator from [`Receiver::iter`].
///
/// ```
/// use waitless::channel::bounded;
///
/// let (tx, rx) = bounded(2);
/// tx.send(1).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None); // disconnected and drained
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator from [`Receiver::try_iter`].
///
/// ```
/// use waitless::channel::bounded;
///
/// let (tx, rx) = bounded(4);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]); // never blocks
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::channel::test_support::within;
    use std::thread;

    /// Seconds a parking test may take before it fails as hung.
    const HANG: u64 = 120;

    #[test]
    fn handles_are_send_sync_for_send_values() {
        fn send_sync<X: Send + Sync>() {}
        send_sync::<Sender<Vec<u8>>>();
        send_sync::<Receiver<Vec<u8>>>();
        send_sync::<OptimizedChannel<Vec<u8>>>();
        fn send<X: Send>() {}
        send::<crate::channel::spsc::Producer<Vec<u8>>>();
        send::<crate::channel::spsc::Consumer<Vec<u8>>>();
    }

    /// Static assertions: the handles are unwind-safe when `T` is, like
    /// crossbeam's, so they cross `catch_unwind` without `AssertUnwindSafe`.
    #[test]
    fn handles_are_unwind_safe() {
        fn unwind_safe<X: UnwindSafe + RefUnwindSafe>() {}
        unwind_safe::<Sender<Vec<u8>>>();
        unwind_safe::<Receiver<Vec<u8>>>();
        unwind_safe::<OptimizedChannel<Vec<u8>>>();
        unwind_safe::<crate::channel::spsc::Producer<Vec<u8>>>();
        unwind_safe::<crate::channel::spsc::Consumer<Vec<u8>>>();
        let (tx, rx) = bounded::<u32>(1);
        let r = std::panic::catch_unwind(|| {
            tx.send(1).unwrap();
            panic!("user code fails after a send");
        });
        assert!(r.is_err());
        assert_eq!(rx.try_recv(), Ok(1));
    }

    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn last_receiver_drop_drops_queued_values_at_once() {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = bounded::<Counted>(4);
        for _ in 0..3 {
            tx.send(Counted(drops.clone())).unwrap();
        }
        let rx2 = rx.clone();
        drop(rx);
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(rx2);
        // The sender is still alive: the values went with the last receiver.
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(tx.is_disconnected());
        let e = tx.try_send(Counted(drops.clone())).unwrap_err();
        assert!(e.is_disconnected());
        drop(e);
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    /// A request that carries its reply sender: when the server's receiver
    /// goes away with the request still queued, the requester sees
    /// `Disconnected` instead of waiting forever.
    #[test]
    fn queued_request_with_reply_sender_disconnects_its_requester() {
        within(
            HANG,
            "queued_request_with_reply_sender_disconnects_its_requester",
            || {
                let (req_tx, req_rx) = bounded::<(u32, Sender<u32>)>(4);
                let (reply_tx, reply_rx) = bounded::<u32>(1);
                req_tx.send((7, reply_tx)).unwrap();
                let requester = thread::spawn(move || reply_rx.recv());
                drop(req_rx);
                assert_eq!(requester.join().unwrap(), Err(RecvError));
                drop(req_tx);
            },
        );
    }

    /// Senders race with the drop of the last receiver: every value a send
    /// accepted is dropped by the time the sends returned, while a sender
    /// handle is still alive (none is left queued for nobody), and every
    /// rejected value came back.
    #[test]
    fn sends_racing_the_last_receiver_drop_leave_nothing_queued() {
        within(
            HANG,
            "sends_racing_the_last_receiver_drop_leave_nothing_queued",
            || {
                let rounds = if cfg!(miri) { 3 } else { 300 };
                for _ in 0..rounds {
                    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let (tx, rx) = bounded::<Counted>(4);
                    let start = std::sync::Arc::new(std::sync::Barrier::new(3));
                    let senders: Vec<_> = (0..2)
                        .map(|_| {
                            let tx = tx.clone();
                            let drops = drops.clone();
                            let start = start.clone();
                            thread::spawn(move || {
                                start.wait();
                                let mut accepted = 0;
                                for _ in 0..4 {
                                    match tx.try_send(Counted(drops.clone())) {
                                        Ok(()) => accepted += 1,
                                        Err(e) => drop(e),
                                    }
                                }
                                accepted
                            })
                        })
                        .collect();
                    start.wait();
                    drop(rx);
                    let accepted: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
                    // 8 values were made; `tx` is still alive here.
                    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 8);
                    assert!(accepted <= 8);
                    drop(tx);
                }
            },
        );
    }

    #[test]
    fn try_ops_report_full_empty_and_disconnected() {
        let (tx, rx) = bounded::<u32>(2);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.try_recv(), Ok(1));
        drop(tx);
        assert!(rx.is_disconnected());
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv(), Err(RecvError));
    }

    #[test]
    fn send_fails_with_value_once_receivers_are_gone() {
        let (tx, rx) = bounded::<String>(2);
        let rx2 = rx.clone();
        drop(rx);
        tx.send("ok".into()).unwrap();
        drop(rx2);
        assert_eq!(tx.send("x".into()).unwrap_err().into_inner(), "x");
        assert!(matches!(
            tx.try_send("y".into()),
            Err(TrySendError::Disconnected(_))
        ));
        assert!(tx
            .send_timeout("z".into(), Duration::from_millis(1))
            .unwrap_err()
            .is_disconnected());
    }

    #[test]
    fn timeouts_elapsed_still_try_once_and_huge_does_not_panic() {
        let (tx, rx) = bounded::<u32>(1);
        tx.send_timeout(1, Duration::ZERO).unwrap();
        assert!(tx.send_timeout(2, Duration::ZERO).unwrap_err().is_timeout());
        assert!(matches!(
            tx.send_deadline(3, Instant::now() - Duration::from_millis(5)),
            Err(SendTimeoutError::Timeout(3))
        ));
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        tx.send(4).unwrap();
        assert_eq!(
            rx.recv_deadline(Instant::now() - Duration::from_secs(1)),
            Ok(4)
        );
        tx.send_timeout(5, Duration::MAX).unwrap();
        assert_eq!(rx.recv(), Ok(5));
    }

    #[test]
    fn parked_receiver_is_woken_by_send_and_by_disconnect() {
        within(
            HANG,
            "parked_receiver_is_woken_by_send_and_by_disconnect",
            || {
                let rounds = if cfg!(miri) { 3 } else { 200 };
                for _ in 0..rounds {
                    let (tx, rx) = bounded::<u32>(1);
                    let h = thread::spawn(move || {
                        let a = rx.recv();
                        let b = rx.recv();
                        (a, b)
                    });
                    tx.send(9).unwrap();
                    drop(tx);
                    assert_eq!(h.join().unwrap(), (Ok(9), Err(RecvError)));
                }
            },
        );
    }

    #[test]
    fn parked_sender_is_woken_by_recv_and_by_disconnect() {
        within(
            HANG,
            "parked_sender_is_woken_by_recv_and_by_disconnect",
            || {
                let rounds = if cfg!(miri) { 3 } else { 200 };
                for _ in 0..rounds {
                    let (tx, rx) = bounded::<u32>(1);
                    tx.send(1).unwrap();
                    let h = thread::spawn(move || {
                        let a = tx.send(2).map_err(|e| e.into_inner());
                        let b = tx.send(3).map_err(|e| e.into_inner());
                        (a, b)
                    });
                    assert_eq!(rx.recv(), Ok(1));
                    // Then drop: the sender either got 2 in or not; 3 must come back.
                    drop(rx);
                    let (a, b) = h.join().unwrap();
                    assert!(a.is_ok() || a == Err(2));
                    assert_eq!(b, Err(3));
                }
            },
        );
    }

    /// Two receivers parked at once, two sends: each `notify_one` must reach
    /// a receiver that still needs a value. (Not a loom model: with a third
    /// thread in a load-retry loop loom explores stale re-reads forever and
    /// exceeds its branch limit; see docs/channel.md §7.)
    #[test]
    fn two_parked_receivers_are_both_woken() {
        within(HANG, "two_parked_receivers_are_both_woken", || {
            let rounds = if cfg!(miri) { 2 } else { 300 };
            for _ in 0..rounds {
                let (tx, rx) = bounded::<u32>(1);
                let receivers: Vec<_> = (0..2)
                    .map(|_| {
                        let rx = rx.clone();
                        thread::spawn(move || rx.recv())
                    })
                    .collect();
                drop(rx);
                tx.send(1).unwrap();
                tx.send(2).unwrap();
                let mut got: Vec<u32> = receivers
                    .into_iter()
                    .map(|r| r.join().unwrap().unwrap())
                    .collect();
                got.sort_unstable();
                assert_eq!(got, [1, 2]);
            }
        });
    }

    #[test]
    fn batch_receive_wakes_every_parked_sender() {
        within(HANG, "batch_receive_wakes_every_parked_sender", || {
            let rounds = if cfg!(miri) { 2 } else { 100 };
            for _ in 0..rounds {
                let (tx, rx) = bounded::<u32>(2);
                tx.send(0).unwrap();
                tx.send(1).unwrap();
                let senders: Vec<_> = [2, 3]
                    .into_iter()
                    .map(|v| {
                        let tx = tx.clone();
                        thread::spawn(move || tx.send(v).unwrap())
                    })
                    .collect();
                let mut out = Vec::new();
                assert_eq!(rx.recv_batch(&mut out, 2), Ok(2));
                // No further receive: both senders must get in on their own
                // (a parked one left asleep would hang here).
                for s in senders {
                    s.join().unwrap();
                }
                out.extend(rx.try_iter());
                out.sort_unstable();
                assert_eq!(out, [0, 1, 2, 3]);
            }
        });
    }

    #[test]
    fn iter_and_batch() {
        let (tx, rx) = bounded::<u32>(8);
        for i in 0..6 {
            tx.send(i).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(rx.recv_batch(&mut out, 4), Ok(4));
        assert_eq!(rx.recv_batch(&mut out, 0), Ok(0));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![4, 5]);
        drop(tx);
        assert_eq!(rx.iter().count(), 0);
        assert_eq!(rx.recv_batch(&mut out, 4), Err(RecvError));
        assert_eq!(out, vec![0, 1, 2, 3]);
    }

    #[test]
    fn errors_and_handles_debug_without_t_debug() {
        struct Opaque;
        let (tx, rx) = bounded::<Opaque>(1);
        assert!(format!("{tx:?}").starts_with("Sender"));
        assert!(format!("{rx:?}").starts_with("Receiver"));
        tx.send(Opaque).unwrap();
        let e = tx.try_send(Opaque).unwrap_err();
        assert_eq!(format!("{e:?}"), "TrySendError::Full(..)");
    }
}
