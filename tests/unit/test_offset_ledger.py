"""The commit bookkeeping of a worker running several jobs at once: out-of-order finishes
commit only the contiguous finished prefix of each partition."""

from __future__ import annotations

import random

import pytest

from whisperx_api.distributed.offsets import OffsetLedger

P0 = ("jobs", 0)
P1 = ("jobs", 1)


def test_in_order_finishes_commit_each_next_offset() -> None:
    ledger = OffsetLedger()
    for offset in (5, 6, 7):
        assert ledger.take(P0, offset)
    assert ledger.finish(P0, 5) == 6
    assert ledger.finish(P0, 6) == 7
    assert ledger.finish(P0, 7) == 8
    assert ledger.running() == 0


def test_an_early_finish_does_not_commit_past_a_running_message() -> None:
    ledger = OffsetLedger()
    for offset in (10, 11, 12):
        ledger.take(P0, offset)
    assert ledger.finish(P0, 12) is None
    assert ledger.finish(P0, 11) is None
    assert ledger.running() == 1
    # The first one ends: the whole prefix is done at once.
    assert ledger.finish(P0, 10) == 13


def test_the_prefix_stops_at_the_first_running_message() -> None:
    ledger = OffsetLedger()
    for offset in range(4):
        ledger.take(P0, offset)
    assert ledger.finish(P0, 0) == 1
    assert ledger.finish(P0, 2) is None
    assert ledger.finish(P0, 1) == 3  # 3 still runs
    assert ledger.finish(P0, 3) == 4


def test_partitions_are_independent() -> None:
    ledger = OffsetLedger()
    ledger.take(P0, 0)
    ledger.take(P0, 1)
    ledger.take(P1, 0)
    assert ledger.finish(P0, 1) is None
    assert ledger.finish(P1, 0) == 1  # partition 1 is not held back by partition 0
    assert ledger.finish(P0, 0) == 2


def test_a_rewound_partition_does_not_run_known_messages_twice() -> None:
    """After a rebalance the partition is read again from its committed offset: messages still
    running, or finished above the committed prefix, are not taken again."""
    ledger = OffsetLedger()
    for offset in (3, 4, 5):
        ledger.take(P0, offset)
    ledger.finish(P0, 4)
    assert not ledger.take(P0, 3)  # running
    assert not ledger.take(P0, 4)  # finished, not yet committed
    assert not ledger.take(P0, 5)
    assert ledger.take(P0, 6)  # new


def test_finishing_a_message_not_taken_is_an_error() -> None:
    ledger = OffsetLedger()
    with pytest.raises(KeyError):
        ledger.finish(P0, 1)
    ledger.take(P0, 1)
    ledger.finish(P0, 1)
    with pytest.raises(KeyError):
        ledger.finish(P0, 1)


@pytest.mark.parametrize("seed", range(20))
def test_random_orders_never_commit_past_an_unfinished_message(seed: int) -> None:
    """Whatever the order of finishes, every commit is exactly one past the longest finished
    prefix, and commits only move forward."""
    rng = random.Random(seed)
    offsets = list(range(100, 130))
    ledger = OffsetLedger()
    for offset in offsets:
        ledger.take(P0, offset)
    order = offsets[:]
    rng.shuffle(order)
    done: set[int] = set()
    last = 100
    for offset in order:
        done.add(offset)
        committed = ledger.finish(P0, offset)
        prefix = 100
        while prefix in done:
            prefix += 1
        if committed is None:
            assert prefix == last
        else:
            assert committed == prefix > last
            last = committed
    assert last == 130
    assert ledger.running() == 0
