//! Hand-built histories: the checker must reject the non-linearizable ones
//! (with an explanation naming the culprit) and accept linearizable ones,
//! including heavily overlapping ones.

use waitless_check::*;

type QH = History<QueueOp<u32>, QueueRet<u32>>;

// ------------------------------------------------------------- register

#[test]
fn register_stale_read_after_completed_write_is_rejected() {
    let mut h = History::new();
    h.push(0, RegisterOp::Write(1), RegisterRet::Written, 0, 10)
        .push(1, RegisterOp::Read, RegisterRet::Read(0), 20, 30);
    let err = check(&RegisterModel::new(0), &h).unwrap_err();
    assert_eq!(err.partition(), "whole history");
    assert_eq!(err.prefix_len(), 1, "{err}");
    assert_eq!(err.stuck().len(), 1, "{err}");
    assert_eq!(err.stuck()[0].input, "Read");
    assert_eq!(err.stuck()[0].output.as_deref(), Some("Read(0)"));
    assert_eq!(err.state(), Some("register 1"));
    let text = err.to_string();
    assert!(
        text.contains("Read(0)") && text.contains("not linearizable"),
        "{text}"
    );
}

#[test]
fn register_read_concurrent_with_write_may_see_either_value() {
    for seen in [0, 1] {
        let mut h = History::new();
        h.push(0, RegisterOp::Write(1), RegisterRet::Written, 0, 10)
            .push(1, RegisterOp::Read, RegisterRet::Read(seen), 5, 30);
        assert!(check(&RegisterModel::new(0), &h).is_ok(), "read {seen}");
    }
}

#[test]
fn register_new_then_old_read_is_rejected() {
    // Both reads overlap the write, but the second starts after the first
    // returned the new value: it cannot see the old one again.
    let mut h = History::new();
    h.push(0, RegisterOp::Write(1), RegisterRet::Written, 0, 100)
        .push(1, RegisterOp::Read, RegisterRet::Read(1), 10, 20)
        .push(2, RegisterOp::Read, RegisterRet::Read(0), 30, 40);
    let err = check(&RegisterModel::new(0), &h).unwrap_err();
    assert!(
        err.stuck()
            .iter()
            .any(|o| o.output.as_deref() == Some("Read(0)")),
        "{err}"
    );
}

// ------------------------------------------------------------- queue

#[test]
fn queue_value_before_earlier_completed_enqueue_is_rejected() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(0, QueueOp::Enqueue(2), QueueRet::Enqueued, 20, 30)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(Some(2)), 40, 50);
    let err = check(&QueueModel::unbounded(), &h).unwrap_err();
    assert_eq!(err.prefix_len(), 2, "{err}");
    assert_eq!(err.stuck()[0].output.as_deref(), Some("Dequeued(Some(2))"));
    assert_eq!(err.state(), Some("queue (oldest first) [1, 2]"));
}

#[test]
fn queue_overlapping_enqueues_may_come_out_in_either_order() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 30)
        .push(1, QueueOp::Enqueue(2), QueueRet::Enqueued, 10, 20)
        .push(2, QueueOp::Dequeue, QueueRet::Dequeued(Some(2)), 40, 50)
        .push(2, QueueOp::Dequeue, QueueRet::Dequeued(Some(1)), 60, 70);
    assert!(check(&QueueModel::unbounded(), &h).is_ok());
}

#[test]
fn queue_full_when_provably_not_full_is_rejected() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(0, QueueOp::Enqueue(2), QueueRet::Full, 20, 30);
    let err = check(&QueueModel::bounded(2), &h).unwrap_err();
    assert_eq!(err.stuck()[0].output.as_deref(), Some("Full"));
    // ... and accepted when the queue really was full.
    assert!(check(&QueueModel::bounded(1), &h).is_ok());
    // Full from an unbounded queue is always wrong.
    assert!(check(&QueueModel::unbounded(), &h).is_err());
}

#[test]
fn queue_enqueued_beyond_capacity_is_rejected() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(0, QueueOp::Enqueue(2), QueueRet::Enqueued, 20, 30);
    assert!(check(&QueueModel::bounded(1), &h).is_err());
    assert!(check(&QueueModel::bounded(2), &h).is_ok());
}

#[test]
fn queue_full_is_fine_if_a_concurrent_dequeue_may_come_after() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(Some(1)), 15, 40)
        .push(0, QueueOp::Enqueue(2), QueueRet::Full, 20, 30);
    assert!(check(&QueueModel::bounded(1), &h).is_ok());
}

#[test]
fn queue_empty_when_provably_non_empty_is_rejected() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(None), 20, 30);
    let err = check(&QueueModel::bounded(4), &h).unwrap_err();
    assert_eq!(err.stuck()[0].output.as_deref(), Some("Dequeued(None)"));
    // Overlapping the enqueue, "empty" is a legal answer.
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 25)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(None), 20, 30);
    assert!(check(&QueueModel::bounded(4), &h).is_ok());
}

#[test]
fn queue_duplicate_and_invented_values_are_rejected() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(Some(1)), 0, 50)
        .push(2, QueueOp::Dequeue, QueueRet::Dequeued(Some(1)), 0, 50);
    assert!(check(&QueueModel::unbounded(), &h).is_err());
    let mut h: QH = History::new();
    h.push(1, QueueOp::Dequeue, QueueRet::Dequeued(Some(9)), 0, 50);
    assert!(check(&QueueModel::unbounded(), &h).is_err());
}

// ------------------------------------------------------------- stack

#[test]
fn stack_value_popped_twice_is_rejected() {
    let mut h = History::new();
    h.push(0, StackOp::Push(1), StackRet::Pushed, 0, 10)
        .push(0, StackOp::Push(2), StackRet::Pushed, 20, 30)
        .push(1, StackOp::Pop, StackRet::Popped(Some(2)), 40, 50)
        .push(2, StackOp::Pop, StackRet::Popped(Some(2)), 60, 70);
    let err = check(&StackModel::new(), &h).unwrap_err();
    assert_eq!(err.prefix_len(), 3, "{err}");
    assert_eq!(err.state(), Some("stack (bottom..top) [1]"));
}

#[test]
fn stack_lifo_order_is_enforced() {
    let mut h = History::new();
    h.push(0, StackOp::Push(1), StackRet::Pushed, 0, 10)
        .push(0, StackOp::Push(2), StackRet::Pushed, 20, 30)
        .push(1, StackOp::Pop, StackRet::Popped(Some(1)), 40, 50);
    assert!(check(&StackModel::new(), &h).is_err());
    let mut h = History::new();
    h.push(0, StackOp::Push(1), StackRet::Pushed, 0, 10)
        .push(0, StackOp::Push(2), StackRet::Pushed, 20, 30)
        .push(1, StackOp::Pop, StackRet::Popped(Some(2)), 40, 50)
        .push(1, StackOp::Pop, StackRet::Popped(Some(1)), 60, 70)
        .push(1, StackOp::Pop, StackRet::Popped(None), 80, 90);
    assert!(check(&StackModel::new(), &h).is_ok());
}

// ------------------------------------------------------------- map / set

#[test]
fn map_get_missing_a_completed_insert_is_rejected() {
    let mut h = History::new();
    for k in 0..10u32 {
        h.push(
            0,
            MapOp::Insert(k, k * 10),
            MapRet::Inserted(None),
            100 * k as u64,
            100 * k as u64 + 10,
        );
    }
    h.push(1, MapOp::Get(3), MapRet::Got(Some(30)), 2000, 2010)
        .push(1, MapOp::Get(7), MapRet::Got(None), 2020, 2030)
        .push(1, MapOp::Remove(4), MapRet::Removed(Some(40)), 2040, 2050)
        .push(1, MapOp::Get(4), MapRet::Got(None), 2060, 2070);
    let err = check(&MapModel::new(), &h).unwrap_err();
    assert_eq!(err.partition(), "key 7", "{err}");
    assert_eq!(err.partition_len(), 2);
    assert_eq!(err.state(), Some("map [(7, 70)]"));
}

#[test]
fn map_previous_values_are_checked() {
    let mut h = History::new();
    h.push(0, MapOp::Insert(1, 10), MapRet::Inserted(None), 0, 10)
        .push(0, MapOp::Insert(1, 11), MapRet::Inserted(None), 20, 30);
    assert!(check(&MapModel::new(), &h).is_err());
    let mut h = History::new();
    h.push(0, MapOp::Insert(1, 10), MapRet::Inserted(None), 0, 10)
        .push(1, MapOp::Insert(1, 11), MapRet::Inserted(Some(10)), 20, 30)
        .push(0, MapOp::Remove(1), MapRet::Removed(Some(11)), 40, 50)
        .push(1, MapOp::Get(1), MapRet::Got(None), 60, 70);
    assert!(check(&MapModel::new(), &h).is_ok());
}

#[test]
fn set_answers_are_checked_per_element() {
    let mut h = History::new();
    h.push(0, SetOp::Insert(1), SetRet(true), 0, 10)
        .push(1, SetOp::Insert(2), SetRet(true), 0, 10)
        .push(0, SetOp::Contains(2), SetRet(true), 20, 30)
        .push(1, SetOp::Insert(1), SetRet(false), 20, 30)
        .push(0, SetOp::Remove(1), SetRet(true), 40, 50);
    assert!(check(&SetModel::new(), &h).is_ok());
    h.push(1, SetOp::Contains(1), SetRet(true), 60, 70);
    let err = check(&SetModel::new(), &h).unwrap_err();
    assert_eq!(err.partition(), "key 1");
}

// ------------------------------------------------------------- overlap, pending, limits

/// `n` enqueues and `n` dequeues of distinct values, all mutually
/// concurrent; the dequeues return the values in `order`.
fn all_concurrent(n: u32, order: &[u32]) -> QH {
    let mut h: QH = History::new();
    for v in 0..n {
        h.push(
            v as usize,
            QueueOp::Enqueue(v),
            QueueRet::Enqueued,
            v as u64,
            1000 + v as u64,
        );
    }
    for (i, &v) in order.iter().enumerate() {
        h.push(
            n as usize + i,
            QueueOp::Dequeue,
            QueueRet::Dequeued(Some(v)),
            10 + i as u64,
            2000,
        );
    }
    h
}

#[test]
fn heavy_overlap_linearizable_histories_are_accepted() {
    // Every enqueue and dequeue overlaps every other one: the checker must
    // find the one enqueue order that matches (reverse of call order).
    let order: Vec<u32> = (0..7).rev().collect();
    assert!(check(&QueueModel::unbounded(), &all_concurrent(7, &order)).is_ok());
    // Bounded: with capacity 1 the enqueues must interleave with dequeues.
    assert!(check(
        &QueueModel::bounded(1),
        &all_concurrent(6, &[3, 1, 0, 2, 5, 4])
    )
    .is_ok());
    // Eight concurrent writers, readers that each see some written value.
    let mut h = History::new();
    for v in 1..=8u32 {
        h.push(
            v as usize,
            RegisterOp::Write(v),
            RegisterRet::Written,
            0,
            100,
        );
        h.push(
            8 + v as usize,
            RegisterOp::Read,
            RegisterRet::Read(9 - v),
            1,
            99,
        );
    }
    assert!(check(&RegisterModel::new(0), &h).is_ok());
}

#[test]
fn heavy_overlap_non_linearizable_history_is_rejected() {
    // All concurrent, but value 3 is dequeued twice and 5 never: the whole
    // search space has to be exhausted.
    let err = check(
        &QueueModel::unbounded(),
        &all_concurrent(6, &[0, 1, 3, 2, 3, 4]),
    )
    .unwrap_err();
    assert!(!err.stuck().is_empty());
}

#[test]
fn pending_operations_may_or_may_not_take_effect() {
    // A pending enqueue whose value was dequeued: it took effect.
    let mut h: QH = History::new();
    h.push_pending(0, QueueOp::Enqueue(1), 0)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(Some(1)), 10, 20)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(None), 30, 40);
    assert_eq!(h.pending(), 1);
    assert!(check(&QueueModel::unbounded(), &h).is_ok());
    // A pending enqueue nobody saw: it need not take effect.
    let mut h: QH = History::new();
    h.push_pending(0, QueueOp::Enqueue(1), 0).push(
        1,
        QueueOp::Dequeue,
        QueueRet::Dequeued(None),
        10,
        20,
    );
    assert!(check(&QueueModel::unbounded(), &h).is_ok());
    // But a pending operation cannot take effect before its call.
    let mut h: QH = History::new();
    h.push(1, QueueOp::Dequeue, QueueRet::Dequeued(Some(1)), 0, 10)
        .push_pending(0, QueueOp::Enqueue(1), 20);
    assert!(check(&QueueModel::unbounded(), &h).is_err());
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    let mut h: QH = History::new();
    h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
        .push(1, QueueOp::Dequeue, QueueRet::Dequeued(None), 10, 20);
    assert!(check(&QueueModel::unbounded(), &h).is_ok());
}

#[test]
fn the_step_limit_yields_unknown_and_is_shared_across_partitions() {
    let h = all_concurrent(6, &[0, 1, 3, 2, 3, 4]);
    match check_with_limit(&QueueModel::unbounded(), &h, 50) {
        CheckOutcome::Unknown { steps, partition } => {
            assert_eq!(steps, 50);
            assert_eq!(partition, "whole history");
        }
        other => panic!("expected Unknown, got {other:?}"),
    }
    assert!(matches!(
        check_with_limit(&QueueModel::unbounded(), &h, u64::MAX),
        CheckOutcome::NonLinearizable(_)
    ));
    assert!(check_with_limit(&RegisterModel::new(0), &History::new(), 0).is_linearizable());
}

#[test]
#[should_panic(expected = "not linearizable")]
fn assert_linearizable_panics_with_the_explanation() {
    let mut h = History::new();
    h.push(0, RegisterOp::Write(1), RegisterRet::Written, 0, 10)
        .push(1, RegisterOp::Read, RegisterRet::Read(0), 20, 30);
    assert_linearizable(&RegisterModel::new(0), &h);
}

#[test]
fn recorder_timestamps_order_sequential_operations() {
    let rec: Recorder<RegisterOp<u32>, RegisterRet<u32>> = Recorder::new();
    {
        let mut log = rec.thread();
        let id = log.call(RegisterOp::Write(5));
        log.ret(id, RegisterRet::Written);
        assert_eq!(
            log.op(RegisterOp::Read, || RegisterRet::Read(0)),
            RegisterRet::Read(0)
        );
        let _pending = log.call(RegisterOp::Read);
        assert_eq!(log.len(), 3);
    }
    let h = rec.into_history();
    let ops = h.ops();
    assert_eq!(ops.len(), 3);
    assert!(ops[0].ret.unwrap() <= ops[1].call);
    assert!(ops[1].call <= ops[1].ret.unwrap());
    assert!(ops[2].is_pending());
    // The stale read after the completed write is caught from a recording.
    let err = check(&RegisterModel::new(0), &h).unwrap_err();
    assert_eq!(err.stuck()[0].output.as_deref(), Some("Read(0)"), "{err}");
}

#[test]
#[should_panic(expected = "belongs to thread log")]
fn ret_with_a_foreign_id_panics() {
    let rec: Recorder<RegisterOp<u32>, RegisterRet<u32>> = Recorder::new();
    let mut a = rec.thread();
    let mut b = rec.thread();
    let id = a.call(RegisterOp::Read);
    b.ret(id, RegisterRet::Read(0));
}
