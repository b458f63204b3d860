//! Turning a hang into a test failure.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Runs `f` on its own thread and fails, naming `what`, if it has not
/// finished within `secs` seconds; a panic in `f` is re-raised on the
/// calling thread. The deadline only turns a hang (a parked thread never
/// woken, a value lost by a structure a test waits on) into a failure with a
/// message instead of a suite that never ends: no assertion depends on
/// timing. A hung thread is left behind (the test binary still exits). Under
/// Miri `f` runs directly: Miri reports a deadlock itself, and its clock is
/// virtual.
///
/// ```
/// use waitless_check::within;
///
/// within(60, "a quick job", || assert_eq!(1 + 1, 2));
/// let hung = std::panic::catch_unwind(|| {
///     within(1, "a job that never ends", || loop {
///         std::thread::park();
///     })
/// });
/// assert!(hung.is_err());
/// ```
///
/// # Panics
/// If `f` panics (with its payload), or if it runs longer than `secs`
/// seconds (with a message naming `what`).
pub fn within<F: FnOnce() + Send + 'static>(secs: u64, what: &str, f: F) {
    if cfg!(miri) {
        f();
        return;
    }
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().expect("the job finished; joining it cannot fail"),
        Err(RecvTimeoutError::Disconnected) => {
            // `f` panicked: re-raise its panic here.
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {secs} s (hung: a parked thread never woken, or a value lost?)")
        }
    }
}
