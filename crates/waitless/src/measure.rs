//! Measurement plumbing shared by [`OptimizedChannel::benchmark_orderings`]
//! and the `waitless-bench` analyzer (which depends on this crate; the
//! library cannot depend on it): a hardware cache-miss counter through
//! `perf_event_open(2)` and a thread's CPU time. Not part of the public API.
//!
//! [`OptimizedChannel::benchmark_orderings`]: crate::channel::OptimizedChannel::benchmark_orderings

/// A `PERF_COUNT_HW_CACHE_MISSES` counter (user space only), when the CPU
/// and the kernel expose one.
///
/// Most virtual machines expose no hardware counters, and
/// `kernel.perf_event_paranoid` may forbid them; the constructors then return
/// `None` and callers report "not available" instead of a number.
#[derive(Debug)]
pub struct CacheMissCounter {
    #[cfg(all(target_os = "linux", not(miri)))]
    fd: libc::c_int,
}

#[cfg(all(target_os = "linux", not(miri)))]
mod sys {
    /// The first published layout of `struct perf_event_attr`
    /// (`PERF_ATTR_SIZE_VER0`, 64 bytes); every kernel since 2.6.31 accepts
    /// it and zero-fills the fields added later.
    #[repr(C)]
    #[derive(Default)]
    pub(super) struct PerfEventAttrV0 {
        pub(super) type_: u32,
        pub(super) size: u32,
        pub(super) config: u64,
        pub(super) sample_period: u64,
        pub(super) sample_type: u64,
        pub(super) read_format: u64,
        /// Bit field: bit 0 `disabled`, bit 1 `inherit`, bit 5
        /// `exclude_kernel`, bit 6 `exclude_hv` (see `perf_event_open(2)`).
        pub(super) flags: u64,
        pub(super) wakeup_events: u32,
        pub(super) bp_type: u32,
        pub(super) config1: u64,
    }

    pub(super) const PERF_TYPE_HARDWARE: u32 = 0;
    pub(super) const PERF_COUNT_HW_CACHE_MISSES: u64 = 3;
    pub(super) const FLAG_DISABLED: u64 = 1 << 0;
    pub(super) const FLAG_INHERIT: u64 = 1 << 1;
    pub(super) const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
    pub(super) const FLAG_EXCLUDE_HV: u64 = 1 << 6;
    pub(super) const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    // _IO('$', 0) and _IO('$', 1).
    pub(super) const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    pub(super) const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
}

impl CacheMissCounter {
    /// A counter for the calling thread alone, counting from now on; read
    /// it with [`read`](Self::read) before and after.
    pub fn open_thread() -> Option<Self> {
        let c = Self::open(false, false)?;
        // A counter that opens but cannot be read counts as absent.
        c.read()?;
        Some(c)
    }

    /// A disabled counter for the calling thread *and every thread it
    /// creates afterwards* (the kernel adds a child thread's count to the
    /// parent's when the child exits, so call
    /// [`stop_and_read`](Self::stop_and_read) after joining them); start it
    /// with [`start`](Self::start).
    pub fn open_inherited() -> Option<Self> {
        Self::open(true, true)
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    fn open(inherit: bool, disabled: bool) -> Option<Self> {
        use sys::*;
        let mut flags = FLAG_EXCLUDE_KERNEL | FLAG_EXCLUDE_HV;
        if inherit {
            flags |= FLAG_INHERIT;
        }
        if disabled {
            flags |= FLAG_DISABLED;
        }
        let attr = PerfEventAttrV0 {
            type_: PERF_TYPE_HARDWARE,
            size: core::mem::size_of::<PerfEventAttrV0>() as u32,
            config: PERF_COUNT_HW_CACHE_MISSES,
            flags,
            ..PerfEventAttrV0::default()
        };
        // SAFETY: `attr` is a valid, initialised perf_event_attr of the size
        // it declares and lives across the call; pid 0 / cpu -1 means "this
        // thread, any CPU"; group_fd -1 requests a standalone counter. The
        // syscall only reads `attr`.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttrV0,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        (fd >= 0).then_some(Self {
            fd: fd as libc::c_int,
        })
    }

    #[cfg(not(all(target_os = "linux", not(miri))))]
    fn open(_inherit: bool, _disabled: bool) -> Option<Self> {
        None
    }

    /// Starts (or resumes) counting.
    pub fn start(&self) {
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: `self.fd` is an open perf event descriptor owned by `self`;
        // PERF_EVENT_IOC_ENABLE takes no argument.
        unsafe {
            libc::ioctl(self.fd, sys::PERF_EVENT_IOC_ENABLE as _, 0);
        }
    }

    /// The current count, or `None` if reading fails.
    pub fn read(&self) -> Option<u64> {
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            let mut value = 0u64;
            // SAFETY: `fd` is an open perf event descriptor we own, and
            // `value` is 8 writable bytes, the size a non-group read returns.
            let n = unsafe {
                libc::read(
                    self.fd,
                    (&mut value as *mut u64).cast::<libc::c_void>(),
                    core::mem::size_of::<u64>(),
                )
            };
            (n == core::mem::size_of::<u64>() as isize).then_some(value)
        }
        #[cfg(not(all(target_os = "linux", not(miri))))]
        {
            None
        }
    }

    /// Stops counting and returns the count (`None` if the read fails, or
    /// if the counter never ran because the PMU was busy).
    pub fn stop_and_read(self) -> Option<u64> {
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: `self.fd` is an open perf event descriptor owned by
        // `self`; DISABLE takes no argument.
        unsafe {
            libc::ioctl(self.fd, sys::PERF_EVENT_IOC_DISABLE as _, 0);
        }
        self.read()
    }
}

impl Drop for CacheMissCounter {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: `self.fd` was returned by perf_event_open, is owned by
        // `self` and is closed exactly once, here.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// CPU time (user + system) of the calling thread in nanoseconds, from
/// `getrusage`, or of the process where per-thread accounting is
/// unavailable; 0 under Miri and off Unix.
pub fn thread_cpu_ns() -> u64 {
    #[cfg(all(unix, not(miri)))]
    {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let who = libc::RUSAGE_THREAD;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let who = libc::RUSAGE_SELF;
        // SAFETY: `rusage` is a plain C struct for which all-zero bytes are
        // a valid value.
        let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable `rusage`; `who` is a valid
        // selector for this platform.
        if unsafe { libc::getrusage(who, &mut ru) } != 0 {
            return 0;
        }
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
    #[cfg(not(all(unix, not(miri))))]
    {
        0
    }
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn counters_are_either_absent_or_count() {
        // Most VMs have no PMU, so `open_*` is usually `None`; where a PMU
        // exists the counts must read back.
        if let Some(c) = CacheMissCounter::open_inherited() {
            c.start();
            let v: Vec<u64> = (0..100_000).collect();
            core::hint::black_box(v.iter().sum::<u64>());
            assert!(c.stop_and_read().is_some());
        }
        if let Some(c) = CacheMissCounter::open_thread() {
            assert!(c.read().is_some());
        }
    }

    #[test]
    fn thread_cpu_time_grows_with_work() {
        let a = thread_cpu_ns();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(30) {
            x = core::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_ns() > a);
    }
}
