//! Contention counters: how often each CAS retry loop succeeds and fails.
//!
//! Every retry loop in waitless reports its CAS attempts here through a
//! [`Site`] (a named place in the code). The counters exist only with the
//! `contention` cargo feature; without it [`Site::record`] is an empty inline
//! function and costs nothing. With the feature they are still off until
//! [`enable`] is called, so a build that merely has the feature pays one
//! relaxed load of a global flag per CAS (measured in `waitless-bench`).
//!
//! Counters are per thread (each thread writes only its own cache lines, so
//! counting adds no shared write to the hot path) and are summed on
//! [`snapshot`]. A thread registers on its first recorded CAS while counting
//! is on; when it exits, its counts are folded into a process-wide total and
//! it leaves the registry, so the registry holds only live threads.
//!
//! Cost (measured by `cargo run --release -p waitless-bench --features
//! contention -- micro contention-overhead`, see `docs/benchmarking.md`): with the feature but
//! counting off, one relaxed load and a predictable branch per CAS; with
//! counting on, a thread-local access and two plain stores per CAS.
//!
//! ```
//! use waitless::contention;
//! contention::enable(true);
//! // ... run a workload ...
//! let snap = contention::snapshot();
//! for site in &snap.sites {
//!     println!("{}: {} attempts, {} failures", site.name, site.attempts, site.failures);
//! }
//! contention::enable(false);
//! ```

/// A named CAS site. Declare one `static` per retry loop.
///
/// ```
/// use waitless::contention::{self, Site};
///
/// static PUSH: Site = Site::new("mystack.push");
/// assert_eq!(PUSH.name(), "mystack.push");
/// contention::enable(true);
/// PUSH.record(false); // a failed CAS
/// PUSH.record(true);
/// let snap = contention::snapshot();
/// if contention::is_compiled_in() {
///     let s = snap.sites.iter().find(|s| s.name == "mystack.push").unwrap();
///     assert_eq!((s.attempts, s.failures), (2, 1));
/// } else {
///     assert!(snap.sites.is_empty());
/// }
/// contention::enable(false);
/// ```
#[derive(Debug)]
pub struct Site {
    name: &'static str,
    #[cfg(feature = "contention")]
    id: std::sync::OnceLock<usize>,
}

impl Site {
    /// A site called `name` (by convention `"module.operation"`).
    ///
    /// ```
    /// use waitless::contention::Site;
    ///
    /// static POP: Site = Site::new("mystack.pop");
    /// ```
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            #[cfg(feature = "contention")]
            id: std::sync::OnceLock::new(),
        }
    }

    /// The site's name.
    ///
    /// ```
    /// use waitless::contention::Site;
    ///
    /// static POP: Site = Site::new("mystack.pop");
    /// assert_eq!(POP.name(), "mystack.pop");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Records one CAS attempt at this site and whether it succeeded.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use waitless::contention::Site;
    ///
    /// static INC: Site = Site::new("counter.inc");
    /// let n = AtomicUsize::new(0);
    /// let mut cur = n.load(Ordering::Relaxed);
    /// loop {
    ///     match n.compare_exchange(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed) {
    ///         Ok(_) => { INC.record(true); break; }
    ///         Err(now) => { INC.record(false); cur = now; }
    ///     }
    /// }
    /// ```
    #[inline(always)]
    pub fn record(&'static self, success: bool) {
        #[cfg(feature = "contention")]
        imp::record(self, success);
        #[cfg(not(feature = "contention"))]
        let _ = success;
    }
}

/// Counts for one site, summed over every thread.
///
/// ```
/// use waitless::contention::{ContentionSnapshot, SiteCounts};
///
/// let before = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 3, failures: 1 }] };
/// let after = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 10, failures: 4 }] };
/// assert_eq!((after.attempts(), after.failures()), (10, 4));
/// let delta = after.since(&before);
/// assert_eq!((delta.attempts(), delta.failures()), (7, 3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCounts {
    /// The site's name.
    pub name: &'static str,
    /// CAS attempts.
    pub attempts: u64,
    /// Failed CAS attempts (retries).
    pub failures: u64,
}

/// Every site's counts at one moment.
///
/// ```
/// use waitless::contention::{ContentionSnapshot, SiteCounts};
///
/// let before = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 3, failures: 1 }] };
/// let after = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 10, failures: 4 }] };
/// assert_eq!((after.attempts(), after.failures()), (10, 4));
/// let delta = after.since(&before);
/// assert_eq!((delta.attempts(), delta.failures()), (7, 3));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentionSnapshot {
    /// Sites with at least one attempt, most failures first.
    pub sites: Vec<SiteCounts>,
}

impl ContentionSnapshot {
    /// Total attempts over all sites.
    ///
    /// ```
    /// use waitless::contention::{ContentionSnapshot, SiteCounts};
    ///
    /// let before = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 3, failures: 1 }] };
    /// let after = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 10, failures: 4 }] };
    /// assert_eq!((after.attempts(), after.failures()), (10, 4));
    /// let delta = after.since(&before);
    /// assert_eq!((delta.attempts(), delta.failures()), (7, 3));
    /// ```
    #[must_use]
    pub fn attempts(&self) -> u64 {
        self.sites.iter().map(|s| s.attempts).sum()
    }

    /// Total failures over all sites.
    ///
    /// ```
    /// use waitless::contention::{ContentionSnapshot, SiteCounts};
    ///
    /// let before = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 3, failures: 1 }] };
    /// let after = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 10, failures: 4 }] };
    /// assert_eq!((after.attempts(), after.failures()), (10, 4));
    /// let delta = after.since(&before);
    /// assert_eq!((delta.attempts(), delta.failures()), (7, 3));
    /// ```
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.sites.iter().map(|s| s.failures).sum()
    }

    /// Counts accumulated since `earlier` (site by site).
    ///
    /// ```
    /// use waitless::contention::{ContentionSnapshot, SiteCounts};
    ///
    /// let before = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 3, failures: 1 }] };
    /// let after = ContentionSnapshot { sites: vec![SiteCounts { name: "a", attempts: 10, failures: 4 }] };
    /// assert_eq!((after.attempts(), after.failures()), (10, 4));
    /// let delta = after.since(&before);
    /// assert_eq!((delta.attempts(), delta.failures()), (7, 3));
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &ContentionSnapshot) -> ContentionSnapshot {
        let mut sites: Vec<SiteCounts> = self
            .sites
            .iter()
            .map(|s| {
                let before = earlier.sites.iter().find(|e| e.name == s.name);
                SiteCounts {
                    name: s.name,
                    attempts: s.attempts - before.map_or(0, |b| b.attempts),
                    failures: s.failures - before.map_or(0, |b| b.failures),
                }
            })
            .filter(|s| s.attempts > 0)
            .collect();
        sites.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.name.cmp(b.name)));
        ContentionSnapshot { sites }
    }
}

/// `true` when this build has the `contention` feature.
///
/// ```
/// if !waitless::contention::is_compiled_in() {
///     println!("CAS counters are off: build with --features waitless/contention");
/// }
/// ```
#[must_use]
pub const fn is_compiled_in() -> bool {
    cfg!(feature = "contention")
}

/// Turns counting on or off (process-wide). A no-op without the feature.
///
/// ```
/// waitless::contention::enable(true);
/// // ... run the workload to profile ...
/// waitless::contention::enable(false);
/// ```
pub fn enable(on: bool) {
    #[cfg(feature = "contention")]
    imp::ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "contention"))]
    let _ = on;
}

/// Sums every thread's counters. Empty without the feature.
///
/// ```
/// use waitless::contention;
///
/// let before = contention::snapshot();
/// // ... run a workload ...
/// let delta = contention::snapshot().since(&before);
/// println!("{} CAS attempts, {} failed", delta.attempts(), delta.failures());
/// ```
#[must_use]
pub fn snapshot() -> ContentionSnapshot {
    #[cfg(feature = "contention")]
    {
        imp::snapshot()
    }
    #[cfg(not(feature = "contention"))]
    {
        ContentionSnapshot::default()
    }
}

// The counters are statistics read after the fact, never synchronization, so
// they use std atomics directly with Relaxed ordering and are invisible to
// loom (they would only multiply its state space).
#[cfg(feature = "contention")]
mod imp {
    use super::{ContentionSnapshot, Site, SiteCounts};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
    use std::sync::{Arc, Mutex};

    /// Most distinct sites a process can have; later ones share the last slot.
    pub(super) const MAX_SITES: usize = 64;

    pub(super) static ENABLED: AtomicBool = AtomicBool::new(false);
    static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    static THREADS: Mutex<Vec<Arc<ThreadCounters>>> = Mutex::new(Vec::new());

    pub(super) struct ThreadCounters {
        attempts: [AtomicU64; MAX_SITES],
        failures: [AtomicU64; MAX_SITES],
    }

    /// Counts of threads that have exited, folded in by [`Local::drop`] so
    /// that `THREADS` holds only live threads and does not grow with every
    /// thread a long-running process ever created.
    static RETIRED: ThreadCounters = ThreadCounters {
        attempts: [const { AtomicU64::new(0) }; MAX_SITES],
        failures: [const { AtomicU64::new(0) }; MAX_SITES],
    };

    /// A thread's registration; unregisters (folding its counts into
    /// `RETIRED`) when the thread exits.
    pub(super) struct Local(Arc<ThreadCounters>);

    impl Drop for Local {
        fn drop(&mut self) {
            // Under the THREADS lock, so a concurrent snapshot sees the counts
            // either in this thread's record or in RETIRED, never both.
            let mut threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
            for i in 0..MAX_SITES {
                RETIRED.attempts[i].fetch_add(self.0.attempts[i].load(Relaxed), Relaxed);
                RETIRED.failures[i].fetch_add(self.0.failures[i].load(Relaxed), Relaxed);
            }
            threads.retain(|t| !Arc::ptr_eq(t, &self.0));
        }
    }

    std::thread_local! {
        // Registered lazily, by the first CAS recorded while counting is on.
        static LOCAL: Local = {
            let c = Arc::new(ThreadCounters {
                attempts: [const { AtomicU64::new(0) }; MAX_SITES],
                failures: [const { AtomicU64::new(0) }; MAX_SITES],
            });
            THREADS.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&c));
            Local(c)
        };
    }

    /// Threads currently registered (tests check that exited ones leave).
    #[cfg(test)]
    pub(super) fn live_threads() -> usize {
        THREADS.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn id_of(site: &'static Site) -> usize {
        *site.id.get_or_init(|| {
            let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = names.iter().position(|n| *n == site.name) {
                return i;
            }
            let id = NEXT_ID.fetch_add(1, Relaxed).min(MAX_SITES - 1);
            if names.len() <= id {
                names.push(site.name);
            }
            id
        })
    }

    #[inline(always)]
    pub(super) fn record(site: &'static Site, success: bool) {
        // The only code a retry loop pays while counting is off: one relaxed
        // load and a branch. Counting itself is out of line so that the
        // caller's loop keeps its registers (no spills for the slow path).
        if ENABLED.load(Relaxed) {
            record_enabled(site, success);
        }
    }

    #[inline(never)]
    fn record_enabled(site: &'static Site, success: bool) {
        let id = id_of(site);
        // `try_with`: a CAS during thread-local destruction is not counted.
        let _ = LOCAL.try_with(|Local(c)| {
            // Only this thread writes these counters; a load+store is enough
            // and avoids a locked RMW on the hot path.
            let a = &c.attempts[id];
            a.store(a.load(Relaxed) + 1, Relaxed);
            if !success {
                let f = &c.failures[id];
                f.store(f.load(Relaxed) + 1, Relaxed);
            }
        });
    }

    pub(super) fn snapshot() -> ContentionSnapshot {
        let names = NAMES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        let mut sites: Vec<SiteCounts> = names
            .iter()
            .enumerate()
            .map(|(i, name)| SiteCounts {
                name,
                attempts: RETIRED.attempts[i].load(Relaxed)
                    + threads
                        .iter()
                        .map(|t| t.attempts[i].load(Relaxed))
                        .sum::<u64>(),
                failures: RETIRED.failures[i].load(Relaxed)
                    + threads
                        .iter()
                        .map(|t| t.failures[i].load(Relaxed))
                        .sum::<u64>(),
            })
            .filter(|s| s.attempts > 0)
            .collect();
        sites.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.name.cmp(b.name)));
        ContentionSnapshot { sites }
    }
}

#[cfg(all(test, feature = "contention", not(loom)))]
mod tests {
    use super::*;

    static A: Site = Site::new("test.a");

    #[test]
    fn counts_attempts_and_failures_across_threads() {
        enable(true);
        let before = snapshot();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for i in 0..100 {
                        A.record(i % 4 != 0);
                    }
                });
            }
        });
        let d = snapshot().since(&before);
        let a = d
            .sites
            .iter()
            .find(|s| s.name == "test.a")
            .expect("site recorded");
        assert_eq!(a.attempts, 200);
        assert_eq!(a.failures, 50);
    }

    static B: Site = Site::new("test.b");

    #[test]
    fn exited_threads_keep_their_counts_but_leave_the_registry() {
        enable(true);
        let before = snapshot();
        let live = imp::live_threads();
        for _ in 0..40 {
            std::thread::spawn(|| {
                B.record(true);
                B.record(false);
            })
            .join()
            .unwrap();
        }
        let d = snapshot().since(&before);
        let b = d
            .sites
            .iter()
            .find(|s| s.name == "test.b")
            .expect("site recorded");
        assert_eq!((b.attempts, b.failures), (80, 40));
        // Each joined thread unregistered itself (a concurrent test may add a
        // few live threads of its own, never 40).
        assert!(imp::live_threads() < live + 40);
    }
}
