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
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// `true` for [`ChannelError::Disconnected`].
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
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// `true` for [`TrySendError::Disconnected`].
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
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// `true` for [`SendTimeoutError::Disconnected`].
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
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty and disconnected channel")
    }
}

impl std::error::Error for RecvError {}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) failed.
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
