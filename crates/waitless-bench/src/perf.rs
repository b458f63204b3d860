//! A hardware cache-miss counter through Linux `perf_event_open`, when the
//! CPU and the kernel expose one.
//!
//! One implementation serves the library's
//! `OptimizedChannel::benchmark_orderings` and this crate: it lives in the
//! `waitless` library (which cannot depend on this crate) and is re-exported
//! here. [`CacheMissCounter::open_inherited`] counts the calling thread and
//! every thread it creates afterwards; the kernel adds a child thread's count
//! to the parent's when the child exits, which is why
//! [`CacheMissCounter::stop_and_read`] must be called after the measured
//! threads were joined. Most virtual machines expose no hardware counters, and
//! `kernel.perf_event_paranoid` may forbid them: the constructors then return
//! `None` and the report says "not available" instead of a number.

pub use waitless::measure::CacheMissCounter;
