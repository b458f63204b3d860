//! Error types. Every error that carries a value gives it back, and prints
//! without needing `T: Debug` (the value is shown as `..`).

use core::fmt;

use crate::utils::value_error;

value_error! {
    /// Why [`OptimizedChannel::send`](super::OptimizedChannel::send) failed; the
    /// value comes back.
    enum ChannelError {
        /// The channel held `capacity` values at the moment of the call.
        Full => "sending on a full channel",
        /// The channel was closed.
        Disconnected => "sending on a closed channel",
    }
}

impl<T> ChannelError<T> {
    /// `true` for [`ChannelError::Full`].
    ///
    /// ```
    /// use waitless::channel::{ChannelError, OptimizedChannel};
    ///
    /// let ch = OptimizedChannel::new(1);
    /// ch.send(1).unwrap();
    /// let err = ch.send(2).unwrap_err();
    /// assert!(err.is_full() && !err.is_disconnected());
    /// assert_eq!(err, ChannelError::Full(2));
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// `true` for [`ChannelError::Disconnected`].
    ///
    /// ```
    /// use waitless::channel::ChannelError;
    ///
    /// let err = ChannelError::Disconnected("msg");
    /// assert!(err.is_disconnected());
    /// assert_eq!(err.into_inner(), "msg");
    /// ```
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

value_error! {
    /// Why [`Sender::try_send`](super::Sender::try_send) failed; the value comes back.
    enum TrySendError {
        /// The channel is full.
        Full => "sending on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
    }
}

impl<T> TrySendError<T> {
    /// `true` for [`TrySendError::Full`].
    ///
    /// ```
    /// use waitless::channel::{bounded, TrySendError};
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.try_send(1).unwrap();
    /// let err = tx.try_send(2).unwrap_err();
    /// assert!(err.is_full());
    /// assert_eq!(err, TrySendError::Full(2));
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// `true` for [`TrySendError::Disconnected`].
    ///
    /// ```
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded(1);
    /// drop(rx);
    /// let err = tx.try_send(1).unwrap_err();
    /// assert!(err.is_disconnected());
    /// assert_eq!(err.into_inner(), 1);
    /// ```
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

value_error! {
    /// Why [`Sender::send_timeout`](super::Sender::send_timeout) failed; the value comes back.
    enum SendTimeoutError {
        /// The channel stayed full until the deadline.
        Timeout => "timed out waiting on a full channel",
        /// Every receiver is gone.
        Disconnected => "sending on a disconnected channel",
    }
}

impl<T> SendTimeoutError<T> {
    /// `true` for [`SendTimeoutError::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::bounded;
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.send(1).unwrap();
    /// let err = tx.send_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// `true` for [`SendTimeoutError::Disconnected`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::bounded;
    ///
    /// let (tx, rx) = bounded::<u8>(1);
    /// drop(rx);
    /// assert!(tx.send_timeout(1, Duration::from_secs(1)).unwrap_err().is_disconnected());
    /// ```
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

value_error! {
    /// [`Sender::send`](super::Sender::send) failed because every receiver is
    /// gone; the value comes back.
    struct SendError => "sending on a disconnected channel"
}

/// [`Receiver::recv`](super::Receiver::recv) failed: every sender is gone and
/// the channel is drained.
///
/// ```
/// use waitless::channel::{bounded, RecvError};
///
/// let (tx, rx) = bounded(2);
/// tx.send(1).unwrap();
/// drop(tx);
/// assert_eq!(rx.recv(), Ok(1)); // what is left is drained first
/// assert_eq!(rx.recv(), Err(RecvError));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty and disconnected channel")
    }
}

impl std::error::Error for RecvError {}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) failed.
///
/// ```
/// use waitless::channel::{bounded, TryRecvError};
///
/// let (tx, rx) = bounded::<u8>(2);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing to receive right now.
    Empty,
    /// Every sender is gone and the channel is drained.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("receiving on an empty channel"),
            Self::Disconnected => f.write_str("receiving on an empty and disconnected channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why [`Receiver::recv_timeout`](super::Receiver::recv_timeout) failed.
///
/// ```
/// use std::time::Duration;
/// use waitless::channel::{bounded, RecvTimeoutError};
///
/// let (_tx, rx) = bounded::<u8>(2);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// Every sender is gone and the channel is drained.
    Disconnected,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting on an empty channel"),
            Self::Disconnected => f.write_str("receiving on an empty and disconnected channel"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

value_error! {
    /// Why [`Producer::push`](super::spsc::Producer::push) failed; the value comes back.
    struct PushError => "pushing into a full ring buffer"
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    struct NoDebug(u32);

    #[test]
    fn errors_give_the_value_back_and_print_without_t_debug() {
        let e = ChannelError::Full(NoDebug(3));
        assert!(e.is_full() && !e.is_disconnected());
        assert_eq!(format!("{e:?}"), "ChannelError::Full(..)");
        assert_eq!(e.to_string(), "sending on a full channel");
        assert_eq!(e.into_inner().0, 3);
        let e = SendError(NoDebug(4));
        assert_eq!(format!("{e:?}"), "SendError(..)");
        assert_eq!(e.into_inner().0, 4);
        let e = TrySendError::Disconnected(NoDebug(5));
        assert!(e.is_disconnected());
        assert_eq!(format!("{e:?}"), "TrySendError::Disconnected(..)");
        assert_eq!(e.into_inner().0, 5);
        let e = SendTimeoutError::Timeout(NoDebug(6));
        assert!(e.is_timeout());
        assert_eq!(e.into_inner().0, 6);
        assert_eq!(PushError(NoDebug(7)).into_inner().0, 7);
        let boxed: Box<dyn std::error::Error> = Box::new(RecvTimeoutError::Timeout);
        assert_eq!(boxed.to_string(), "timed out waiting on an empty channel");
        assert_eq!(
            TryRecvError::Empty.to_string(),
            "receiving on an empty channel"
        );
        assert!(RecvError.to_string().contains("disconnected"));
    }
}
