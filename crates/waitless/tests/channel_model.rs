//! Sequential model tests: random operation sequences on the MPMC core (every
//! strategy), the SPSC ring (single items and chunks) and the blocking handles' `try_*` calls agree
//! with a bounded `VecDeque` step by step (Full/None answers included).
#![cfg(not(loom))]

use std::collections::VecDeque;

use proptest::prelude::*;
use waitless::channel::{
    self, AcquireRelease, ChannelError, Optimized, OptimizedChannel, OrderingStrategy, SeqCstAll,
    TryRecvError, TrySendError,
};

#[derive(Debug, Clone)]
enum Op {
    Send(u16),
    Recv,
    Batch(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u16>().prop_map(Op::Send),
            3 => Just(Op::Recv),
            1 => (0u8..6).prop_map(Op::Batch),
        ],
        0..200,
    )
}

fn core_matches_model<O: OrderingStrategy>(cap_log: u32, ops: &[Op]) {
    let cap = 1usize << cap_log;
    let ch: OptimizedChannel<u16, O> = OptimizedChannel::with_strategy(cap);
    let mut model = VecDeque::new();
    for op in ops {
        match *op {
            Op::Send(v) => match ch.send(v) {
                Ok(()) => {
                    assert!(model.len() < cap, "accepted beyond capacity");
                    model.push_back(v);
                }
                Err(ChannelError::Full(back)) => {
                    assert_eq!(back, v);
                    assert_eq!(model.len(), cap, "Full while not full");
                }
                Err(e) => panic!("unexpected {e:?}"),
            },
            Op::Recv => assert_eq!(ch.recv(), model.pop_front()),
            Op::Batch(n) => {
                let mut out = Vec::new();
                let got = ch.recv_batch(&mut out, n as usize);
                let want: Vec<u16> = (0..got).filter_map(|_| model.pop_front()).collect();
                assert_eq!(out, want);
                assert!(got == n as usize || model.is_empty());
            }
        }
        assert_eq!(ch.len(), model.len());
    }
}

proptest! {
    // No failure persistence: it needs the file system (and `getcwd`, which
    // Miri's isolation refuses); failing cases are printed instead.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 128 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn core_agrees_with_bounded_deque(cap_log in 0u32..4, ops in ops()) {
        core_matches_model::<Optimized>(cap_log, &ops);
        core_matches_model::<AcquireRelease>(cap_log, &ops);
        core_matches_model::<SeqCstAll>(cap_log, &ops);
    }

    #[test]
    fn spsc_agrees_with_bounded_deque(cap_log in 0u32..4, ops in ops()) {
        let cap = 1usize << cap_log;
        let (mut p, mut c) = channel::spsc::bounded::<u16>(cap);
        let mut model = VecDeque::new();
        for op in &ops {
            match *op {
                Op::Send(v) => match p.push(v) {
                    Ok(()) => model.push_back(v),
                    Err(e) => {
                        prop_assert_eq!(e.into_inner(), v);
                        prop_assert_eq!(model.len(), cap);
                    }
                },
                Op::Recv => prop_assert_eq!(c.pop(), model.pop_front()),
                Op::Batch(n) => {
                    let mut out = Vec::new();
                    let got = c.pop_batch(&mut out, n as usize);
                    let want: Vec<u16> = (0..got).filter_map(|_| model.pop_front()).collect();
                    prop_assert_eq!(out, want);
                }
            }
            prop_assert_eq!(c.len(), model.len());
            prop_assert_eq!(p.slots(), cap - model.len());
        }
    }

    /// SPSC chunks: a write chunk of up to `n` slots filled with `k`
    /// values, a read chunk of up to `n` values of which `k` are taken;
    /// lengths, values and what is left agree with the deque.
    #[test]
    fn spsc_chunks_agree_with_bounded_deque(
        cap_log in 0u32..4,
        ops in prop::collection::vec((any::<bool>(), 0usize..10, 0usize..10, any::<u16>()), 0..100),
    ) {
        let cap = 1usize << cap_log;
        let (mut p, mut c) = channel::spsc::bounded::<u16>(cap);
        let mut model = VecDeque::new();
        for &(write, n, k, base) in &ops {
            if write {
                let mut chunk = p.write_chunk(n);
                prop_assert_eq!(chunk.len(), n.min(cap - model.len()));
                let mut written = 0;
                for i in 0..k {
                    let v = base.wrapping_add(i as u16);
                    match chunk.push(v) {
                        Ok(()) => {
                            model.push_back(v);
                            written += 1;
                        }
                        Err(e) => prop_assert_eq!(e.into_inner(), v),
                    }
                }
                prop_assert_eq!(written, k.min(n.min(cap - (model.len() - written))));
            } else {
                let mut chunk = c.read_chunk(n);
                prop_assert_eq!(chunk.len(), n.min(model.len()));
                let took: Vec<u16> = chunk.by_ref().take(k).collect();
                drop(chunk);
                let want: Vec<u16> = (0..took.len()).filter_map(|_| model.pop_front()).collect();
                prop_assert_eq!(took, want);
            }
            prop_assert_eq!(c.len(), model.len());
            prop_assert_eq!(p.slots(), cap - model.len());
        }
        let rest: Vec<u16> = c.read_chunk(cap).collect();
        prop_assert_eq!(rest, Vec::from(model));
    }

    #[test]
    fn blocking_try_ops_agree_with_bounded_deque(cap_log in 0u32..4, ops in ops()) {
        let cap = 1usize << cap_log;
        let (tx, rx) = channel::bounded::<u16>(cap);
        let mut model = VecDeque::new();
        for op in &ops {
            match *op {
                Op::Send(v) => match tx.try_send(v) {
                    Ok(()) => model.push_back(v),
                    Err(TrySendError::Full(back)) => {
                        prop_assert_eq!(back, v);
                        prop_assert_eq!(model.len(), cap);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                },
                Op::Recv | Op::Batch(_) => match rx.try_recv() {
                    Ok(v) => prop_assert_eq!(Some(v), model.pop_front()),
                    Err(TryRecvError::Empty) => prop_assert!(model.is_empty()),
                    Err(e) => panic!("unexpected {e:?}"),
                },
            }
        }
        drop(tx);
        let rest: Vec<u16> = rx.iter().collect();
        prop_assert_eq!(rest, Vec::from(model));
    }
}
