//! Bulk enqueue for [`WaitFreeQueue`], built on
//! [`enqueue`](WaitFreeQueue::enqueue): each element is its own wait-free,
//! linearizable operation (the batch as a whole is not atomic: other
//! threads' operations may interleave). Also the owning iterator
//! ([`IntoIter`], like crossbeam's `ArrayQueue::into_iter`) and the unwind
//! safety impls that crossbeam's queues have.

use core::fmt;
use core::iter::FusedIterator;
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::{QueueError, WaitFreeQueue};

/// What [`WaitFreeQueue::enqueue_all`] could not enqueue: the first value
/// that found the queue full, and the rest of the input, untouched.
///
/// ```
/// use waitless::queue::WaitFreeQueue;
///
/// let q = WaitFreeQueue::new(2);
/// let err = q.enqueue_all(["a", "b", "c", "d"]).unwrap_err();
/// assert_eq!(err.enqueued, 2);
/// assert_eq!(err.value, "c");
/// assert_eq!(err.rest.collect::<Vec<_>>(), ["d"]);
/// ```
pub struct EnqueueAllError<T, I> {
    /// How many values were enqueued before the queue was full.
    pub enqueued: usize,
    /// The value that found the queue full (given back).
    pub value: T,
    /// The values after it, not consumed.
    pub rest: I,
}

impl<T, I: Iterator<Item = T>> EnqueueAllError<T, I> {
    /// Every value that was not enqueued, in input order.
    ///
    /// ```
    /// use waitless::queue::WaitFreeQueue;
    ///
    /// let q = WaitFreeQueue::new(2);
    /// let err = q.enqueue_all(1..=4).unwrap_err();
    /// assert_eq!(err.into_remaining().collect::<Vec<_>>(), [3, 4]);
    /// ```
    pub fn into_remaining(self) -> impl Iterator<Item = T> {
        core::iter::once(self.value).chain(self.rest)
    }
}

impl<T, I> fmt::Debug for EnqueueAllError<T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnqueueAllError")
            .field("enqueued", &self.enqueued)
            .finish_non_exhaustive()
    }
}

impl<T, I> fmt::Display for EnqueueAllError<T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the queue became full after {} values", self.enqueued)
    }
}

impl<T, I> std::error::Error for EnqueueAllError<T, I> {}

impl<T> WaitFreeQueue<T> {
    /// Enqueues values in order until the input ends (`Ok(count)`) or the
    /// queue is full; then the value that did not fit and the unconsumed
    /// rest come back in [`EnqueueAllError`]. Wait-free: one bounded
    /// `enqueue` per value.
    ///
    /// ```
    /// use waitless::queue::WaitFreeQueue;
    ///
    /// let q = WaitFreeQueue::new(4);
    /// assert_eq!(q.enqueue_all([1, 2]).unwrap(), 2);
    /// let err = q.enqueue_all(10..20).unwrap_err();
    /// assert_eq!((err.enqueued, err.value), (2, 12));
    /// assert_eq!(q.len(), 4);
    /// ```
    pub fn enqueue_all<I: IntoIterator<Item = T>>(
        &self,
        values: I,
    ) -> Result<usize, EnqueueAllError<T, I::IntoIter>> {
        let mut rest = values.into_iter();
        let mut enqueued = 0;
        for v in rest.by_ref() {
            match self.enqueue(v) {
                Ok(()) => enqueued += 1,
                Err(QueueError::Full(value)) => {
                    return Err(EnqueueAllError {
                        enqueued,
                        value,
                        rest,
                    })
                }
            }
        }
        Ok(enqueued)
    }
}

// Unwind safety: no operation runs user code while a cell is half-written
// (`enqueue` and `dequeue` move whole values and call no `T` method;
// `enqueue_all` calls its iterator only between two complete enqueues; a
// panicking `T::drop` in `Drop` still drops the rest), so after a panic
// the queue holds whole values only, and it is unwind-safe whenever the
// values are (the same condition as the SPSC handles).
impl<T: UnwindSafe> UnwindSafe for WaitFreeQueue<T> {}
impl<T: UnwindSafe> RefUnwindSafe for WaitFreeQueue<T> {}

/// The owning iterator of a [`WaitFreeQueue`]: dequeues the values left, in
/// FIFO order; values not taken are dropped with the iterator.
///
/// ```
/// use waitless::queue::WaitFreeQueue;
///
/// let q = WaitFreeQueue::new(4);
/// q.enqueue_all(["a", "b", "c"]).unwrap();
/// let mut it = q.into_iter();
/// assert_eq!(it.len(), 3);
/// assert_eq!(it.next(), Some("a"));
/// assert_eq!(it.collect::<Vec<_>>(), ["b", "c"]);
/// ```
pub struct IntoIter<T> {
    queue: WaitFreeQueue<T>,
}

impl<T> IntoIterator for WaitFreeQueue<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { queue: self }
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.dequeue()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Exact: the iterator owns the queue, so no other thread can
        // enqueue or dequeue meanwhile.
        let n = self.queue.len();
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for IntoIter<T> {}

impl<T> FusedIterator for IntoIter<T> {}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("len", &self.queue.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn enqueue_all_gives_back_exactly_what_did_not_fit() {
        let q = WaitFreeQueue::new(8);
        let err = q.enqueue_all(0..20u32).unwrap_err();
        assert_eq!(err.enqueued, 8);
        let back: Vec<u32> = err.into_remaining().collect();
        assert_eq!(back, (8..20).collect::<Vec<_>>());
        let out: Vec<u32> = core::iter::from_fn(|| q.dequeue()).collect();
        assert_eq!(out, (0..8).collect::<Vec<_>>());
        assert_eq!(q.enqueue_all(Vec::<u32>::new()).unwrap(), 0);
    }
}
