//! An owned iterator for [`Receiver`], built on [`Receiver::recv`], and
//! `same_channel` for both handles.

use core::fmt;

use super::{Receiver, Sender};

/// Blocking iterator that owns its [`Receiver`], from
/// `Receiver::into_iter`: yields values until every sender is gone and the
/// channel is drained.
///
/// ```
/// use waitless::channel::bounded;
///
/// let (tx, rx) = bounded(4);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// drop(tx);
/// let all: Vec<i32> = rx.into_iter().collect();
/// assert_eq!(all, [1, 2]);
/// ```
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").finish_non_exhaustive()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    /// Moves the receiver into a blocking iterator (it can then be sent to
    /// another thread with the iterator).
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(4);
    /// let consumer = std::thread::spawn(move || rx.into_iter().sum::<u32>());
    /// for i in 1..=10 {
    ///     tx.send(i).unwrap();
    /// }
    /// drop(tx);
    /// assert_eq!(consumer.join().unwrap(), 55);
    /// ```
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> Sender<T> {
    /// `true` if both handles belong to the same channel.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (a, _rx) = bounded::<u8>(2);
    /// let (b, _rx2) = bounded::<u8>(2);
    /// assert!(a.same_channel(&a.clone()));
    /// assert!(!a.same_channel(&b));
    /// ```
    #[must_use]
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        self.shares_with(other)
    }
}

impl<T> Receiver<T> {
    /// `true` if both handles belong to the same channel.
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (_tx, a) = bounded::<u8>(2);
    /// let (_tx2, b) = bounded::<u8>(2);
    /// assert!(a.same_channel(&a.clone()));
    /// assert!(!a.same_channel(&b));
    /// ```
    #[must_use]
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        self.shares_with(other)
    }
}
