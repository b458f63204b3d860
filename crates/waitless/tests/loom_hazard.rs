//! loom models of the hazard-pointer handshake: protect racing with
//! retire must never let a reader use a freed object.
#![cfg(loom)]

use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use waitless::hazard::{Domain, FenceStrategy, HazardPointer};

struct Obj {
    value: loom::cell::UnsafeCell<u64>,
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
        value: loom::cell::UnsafeCell::new(v),
        drops: drops.clone(),
    }))
}

/// One reader protects and reads; one writer swaps the object out and
/// retires it (under loom every retire scans). The reader must read the
/// value it protected, never a dropped one, and every object is dropped once.
#[test]
fn protect_vs_retire_no_use_after_free() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Arc::new(Domain::with_strategy(FenceStrategy::Symmetric));
        let src = Arc::new(AtomicPtr::new(obj(1, &drops)));

        let reader = {
            let (domain, src) = (domain.clone(), src.clone());
            thread::spawn(move || {
                let mut hp = HazardPointer::new_in(&domain);
                let p = hp.protect(&src);
                // SAFETY: protected by `hp`.
                let v = unsafe { (*p).value.with(|v| *v) };
                assert!(v == 1 || v == 2, "read {v}: freed object");
            })
        };

        let old = src.swap(obj(2, &drops), Ordering::AcqRel);
        // SAFETY: unlinked by the swap, retired once.
        unsafe { domain.retire_box(old) };

        reader.join().unwrap();
        // SAFETY: joined; the current object is ours.
        unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
        drop(Arc::try_unwrap(domain).ok().expect("sole owner"));
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// Two writers retire concurrently while a reader protects: both retired
/// objects are freed exactly once by the time the domain drops.
#[test]
fn concurrent_retire_frees_each_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Arc::new(Domain::with_strategy(FenceStrategy::Symmetric));
        let src = Arc::new(AtomicPtr::new(obj(0, &drops)));
        let writers: Vec<_> = (1..=2)
            .map(|i| {
                let (domain, src, drops) = (domain.clone(), src.clone(), drops.clone());
                thread::spawn(move || {
                    let old = src.swap(obj(i, &drops), Ordering::AcqRel);
                    // SAFETY: unlinked by the swap, retired once.
                    unsafe { domain.retire_box(old) };
                })
            })
            .collect();
        {
            let mut hp = HazardPointer::new_in(&domain);
            let p = hp.protect(&src);
            // SAFETY: protected by `hp`.
            let v = unsafe { (*p).value.with(|v| *v) };
            assert!(v <= 2);
        }
        for w in writers {
            w.join().unwrap();
        }
        // SAFETY: joined; the current object is ours.
        unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
        drop(Arc::try_unwrap(domain).ok().expect("sole owner"));
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}
