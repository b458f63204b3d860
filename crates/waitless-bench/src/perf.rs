//! A hardware cache-miss counter through Linux `perf_event_open`, when the
//! CPU and the kernel expose one.
//!
//! Most virtual machines expose no hardware counters, and
//! `kernel.perf_event_paranoid` may forbid them; [`CacheMissCounter::open`]
//! then returns `None` and callers report "not available" instead of a number.
//! The counter is opened for the calling thread with `inherit` set, so it also
//! counts every thread created after it was opened; the kernel adds a child
//! thread's count to the parent's when the child exits, which is why
//! [`CacheMissCounter::stop_and_read`] must be called after the measured
//! threads were joined.

/// A `PERF_COUNT_HW_CACHE_MISSES` counter (user space only) for this thread
/// and the threads it creates.
#[derive(Debug)]
pub struct CacheMissCounter {
    #[cfg(target_os = "linux")]
    fd: libc::c_int,
}

#[cfg(target_os = "linux")]
mod sys {
    /// The first published layout of `struct perf_event_attr`
    /// (`PERF_ATTR_SIZE_VER0`, 64 bytes); the kernel accepts it and zero-fills
    /// the fields added later.
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
    // _IO('$', 0) and _IO('$', 1).
    pub(super) const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    pub(super) const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
}

impl CacheMissCounter {
    /// Opens a disabled counter, or `None` when hardware counters are not
    /// available here (no PMU, a VM, insufficient permission, not Linux).
    pub fn open() -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use sys::*;
            let attr = PerfEventAttrV0 {
                type_: PERF_TYPE_HARDWARE,
                size: std::mem::size_of::<PerfEventAttrV0>() as u32,
                config: PERF_COUNT_HW_CACHE_MISSES,
                flags: FLAG_DISABLED | FLAG_INHERIT | FLAG_EXCLUDE_KERNEL | FLAG_EXCLUDE_HV,
                ..PerfEventAttrV0::default()
            };
            // SAFETY: `attr` is a valid, initialised perf_event_attr of the
            // size it declares and lives across the call; pid 0 / cpu -1
            // means "this thread, any CPU"; group_fd -1 and flags 0 request
            // a standalone counter. The syscall only reads `attr`.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    &attr as *const PerfEventAttrV0,
                    0 as libc::pid_t,
                    -1 as libc::c_int,
                    -1 as libc::c_int,
                    0 as libc::c_ulong,
                )
            };
            if fd < 0 {
                return None;
            }
            Some(Self {
                fd: fd as libc::c_int,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Starts counting.
    pub fn start(&self) {
        #[cfg(target_os = "linux")]
        // SAFETY: `self.fd` is an open perf event descriptor owned by `self`;
        // PERF_EVENT_IOC_ENABLE takes no argument.
        unsafe {
            libc::ioctl(self.fd, sys::PERF_EVENT_IOC_ENABLE as _, 0);
        }
    }

    /// Stops counting and returns the count (`None` if the read fails, or
    /// if the counter never ran because the PMU was busy).
    pub fn stop_and_read(self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            let mut value: u64 = 0;
            // SAFETY: `self.fd` is an open perf event descriptor owned by
            // `self`; DISABLE takes no argument, and `read` writes at most 8
            // bytes into `value`, which is 8 bytes long and lives across the
            // call.
            let n = unsafe {
                libc::ioctl(self.fd, sys::PERF_EVENT_IOC_DISABLE as _, 0);
                libc::read(
                    self.fd,
                    (&mut value as *mut u64).cast::<libc::c_void>(),
                    std::mem::size_of::<u64>(),
                )
            };
            (n == std::mem::size_of::<u64>() as isize).then_some(value)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

impl Drop for CacheMissCounter {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: `self.fd` was returned by perf_event_open, is owned by
        // `self` and is closed exactly once, here.
        unsafe {
            libc::close(self.fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_is_either_absent_or_counts() {
        // This VM has no PMU, so `open` is usually `None`; where a PMU
        // exists the count must read back after a run.
        if let Some(c) = CacheMissCounter::open() {
            c.start();
            let v: Vec<u64> = (0..100_000).collect();
            std::hint::black_box(v.iter().sum::<u64>());
            assert!(c.stop_and_read().is_some());
        }
    }
}
