//! loom models of the domain-wide retired list (issue 14, defect 2): a
//! thread's garbage is handed to the shared list or left as an orphan in
//! its released record, and another thread's scan takes the list and adopts
//! the orphan concurrently. Every object must be freed exactly once, never
//! while a reader protects it, and nothing may be lost.
//!
//! Under loom `BATCH` and the threshold are 1 and there is no record cache,
//! so every `retire` hands its object over and scans, and every operation
//! acquires and releases a record.

use super::*;
use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::sync::{Arc, UnsafeCell};
use loom::thread;

struct Obj {
    value: UnsafeCell<u64>,
    drops: Arc<AtomicUsize>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        // A write: loom reports a race if a reader still reads `value`.
        // SAFETY: `&mut self`.
        self.value.with_mut(|v| unsafe { *v = u64::MAX });
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn obj(v: u64, drops: &Arc<AtomicUsize>) -> *mut Obj {
    Box::into_raw(Box::new(Obj {
        value: UnsafeCell::new(v),
        drops: Arc::clone(drops),
    }))
}

struct SendPtr(*mut Obj);
// SAFETY: handed to exactly one thread, which retires it once.
unsafe impl Send for SendPtr {}

/// One thread retires without scanning (a deferred retire, as the map does
/// mid-update, never followed by `collect`), so its object stays in its
/// record, which it releases: an orphan. Another thread retires and scans
/// at the same time: its scan races with that release (the CAS on
/// `in_use`, the orphan count). Then `reclaim` must find whatever the scan
/// did not adopt: both objects freed, once each.
#[test]
fn an_orphan_is_adopted_by_a_concurrent_scan_or_the_next_one() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Arc::new(Domain::with_strategy(FenceStrategy::Symmetric));
        let a = {
            let (domain, p) = (Arc::clone(&domain), SendPtr(obj(1, &drops)));
            thread::spawn(move || {
                let p = p;
                // SAFETY: never shared, retired once.
                unsafe { domain.retire_box_deferred(p.0) };
            })
        };
        let b = {
            let (domain, p) = (Arc::clone(&domain), SendPtr(obj(2, &drops)));
            thread::spawn(move || {
                let p = p;
                // SAFETY: never shared, retired once.
                unsafe { domain.retire_box(p.0) };
            })
        };
        a.join().unwrap();
        b.join().unwrap();
        domain.reclaim();
        assert_eq!(drops.load(Ordering::Relaxed), 2, "an orphan was lost");
        assert_eq!(domain.pending(), 0);
        drop(Arc::try_unwrap(domain).ok().expect("sole owner"));
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// A reader protects the current object while a writer swaps it out and
/// retires it (its scan may find it protected and push it back onto the
/// shared list) and the main thread runs `reclaim` (taking the shared list,
/// racing with that push). The protected object must not be freed while
/// the reader reads it; at the end each object is freed once.
#[test]
fn a_protected_object_pushed_back_survives_a_concurrent_take() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Arc::new(Domain::with_strategy(FenceStrategy::Symmetric));
        let src = Arc::new(AtomicPtr::new(obj(1, &drops)));
        let reader = {
            let (domain, src) = (Arc::clone(&domain), Arc::clone(&src));
            thread::spawn(move || {
                let mut hp = HazardPointer::new_in(&domain);
                let p = hp.protect(&src);
                // SAFETY: protected by `hp`.
                let v = unsafe { (*p).value.with(|v| *v) };
                assert!(v == 1 || v == 2, "read {v}: a freed object");
            })
        };
        let writer = {
            let (domain, src, drops) = (Arc::clone(&domain), Arc::clone(&src), Arc::clone(&drops));
            thread::spawn(move || {
                let old = src.swap(obj(2, &drops), Ordering::AcqRel);
                // SAFETY: unlinked by the swap, retired once.
                unsafe { domain.retire_box(old) };
            })
        };
        domain.reclaim();
        reader.join().unwrap();
        writer.join().unwrap();
        // SAFETY: joined; the current object is ours.
        unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
        drop(Arc::try_unwrap(domain).ok().expect("sole owner"));
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}
