"""The batch scheduler with a fake model: fairness, grouping by key, cancellation, isolation."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from whisperx_api.errors import BackendError
from whisperx_api.pipeline.batching.scheduler import BatchScheduler, Lane

DEADLINE = 30.0


class GatedModel:
    """Records every batch; holds the first call until released, so a queue can build up."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: Sequence[str]) -> list[str]:
        self.entered.set()
        assert self.gate.wait(DEADLINE)
        self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"cannot decode {self.fail_on}")
        return [item.upper() for item in items]


def results(lane: Lane[str, str], count: int) -> dict[int, str | BaseException]:
    got: dict[int, str | BaseException] = {}
    while len(got) < count:
        item = lane.next_result(DEADLINE)
        assert item is not None, "no result before the deadline"
        got[item[0]] = item[1]
    return got


def block_with_one_item(scheduler: BatchScheduler[str, str], model: GatedModel) -> Lane[str, str]:
    """A lane whose single item is inside the model call, so the next items queue up."""
    first = scheduler.open_lane()
    first.submit("warm", "k")
    assert model.entered.wait(DEADLINE)
    return first


def test_round_robin_gives_a_short_job_a_place_in_the_next_batch() -> None:
    model = GatedModel()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=4)
    blocker = block_with_one_item(scheduler, model)
    long_job = scheduler.open_lane()
    for i in range(12):
        long_job.submit(f"long{i}", "k")
    short_job = scheduler.open_lane()
    short_job.submit("short0", "k")
    model.gate.set()
    assert results(short_job, 1) == {0: "SHORT0"}
    assert results(long_job, 12) == {i: f"LONG{i}" for i in range(12)}
    blocker.close()
    # The short job's chunk rode in the first batch after the blocker, not after all 12.
    assert "short0" in model.batches[1]
    assert model.batches[1] == ["long0", "short0", "long1", "long2"]
    assert all(len(batch) <= 4 for batch in model.batches)
    # Each job's items run in the order it queued them.
    longs = [item for batch in model.batches for item in batch if item.startswith("long")]
    assert longs == [f"long{i}" for i in range(12)]


def test_items_share_a_batch_only_with_the_same_key() -> None:
    model = GatedModel()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=8)
    blocker = block_with_one_item(scheduler, model)
    greedy, beam = scheduler.open_lane(), scheduler.open_lane()
    for i in range(3):
        greedy.submit(f"g{i}", ("beam", 1))
        beam.submit(f"b{i}", ("beam", 5))
    model.gate.set()
    assert results(greedy, 3) == {0: "G0", 1: "G1", 2: "G2"}
    assert results(beam, 3) == {0: "B0", 1: "B1", 2: "B2"}
    blocker.close()
    assert sorted(model.batches[1:]) == [["b0", "b1", "b2"], ["g0", "g1", "g2"]]


def test_a_closed_lane_drops_its_queued_items() -> None:
    model = GatedModel()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=2)
    blocker = block_with_one_item(scheduler, model)
    cancelled, kept = scheduler.open_lane(), scheduler.open_lane()
    for i in range(5):
        cancelled.submit(f"c{i}", "k")
    kept.submit("kept", "k")
    cancelled.close()
    model.gate.set()
    assert results(kept, 1) == {0: "KEPT"}
    blocker.close()
    ran = [item for batch in model.batches for item in batch]
    assert ran == ["warm", "kept"]
    with pytest.raises(RuntimeError):
        cancelled.submit("late", "k")


def test_a_failing_item_fails_only_its_own_job() -> None:
    model = GatedModel(fail_on="bad")
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=4)
    blocker = block_with_one_item(scheduler, model)
    failing, healthy = scheduler.open_lane(), scheduler.open_lane()
    failing.submit("bad", "k")
    healthy.submit("good0", "k")
    healthy.submit("good1", "k")
    model.gate.set()
    assert results(healthy, 2) == {0: "GOOD0", 1: "GOOD1"}
    error = results(failing, 1)[0]
    assert isinstance(error, RuntimeError)
    assert "cannot decode bad" in str(error)
    blocker.close()
    # The mixed batch failed once, then each item ran alone.
    assert model.batches[1] == ["bad", "good0", "good1"]
    assert sorted(model.batches[2:]) == [["bad"], ["good0"], ["good1"]]


def test_the_thread_ends_when_no_lane_is_open() -> None:
    model = GatedModel()
    model.gate.set()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=2)
    with scheduler.open_lane() as lane:
        lane.submit("a", "k")
        assert results(lane, 1) == {0: "A"}
        assert scheduler.running
    finished = threading.Event()

    def watch() -> None:
        while scheduler.running:
            threading.Event().wait(0.01)
        finished.set()

    threading.Thread(target=watch, daemon=True).start()
    assert finished.wait(DEADLINE)
    with scheduler.open_lane() as lane:
        lane.submit("b", "k")
        assert results(lane, 1) == {0: "B"}


def test_a_group_queued_at_once_fills_one_batch_and_order_is_kept() -> None:
    model = GatedModel()
    model.gate.set()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=3)
    with scheduler.open_lane() as lane:
        assert lane.submit_many(["a", "b", "c", "d"], "k") == 0
        assert lane.submit("e", "k") == 4
        assert results(lane, 5) == {0: "A", 1: "B", 2: "C", 3: "D", 4: "E"}
    assert model.batches[0] == ["a", "b", "c"]
    assert [item for batch in model.batches for item in batch] == ["a", "b", "c", "d", "e"]


def test_close_waits_for_the_batch_in_the_model_and_fails_what_is_still_queued() -> None:
    model = GatedModel()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=1)
    running = block_with_one_item(scheduler, model)
    waiting = scheduler.open_lane()
    waiting.submit("queued", "k")
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    closer.join(0.2)
    # The batch inside the model holds close() (a process must not exit under native code).
    assert closer.is_alive()
    model.gate.set()
    closer.join(DEADLINE)
    assert not closer.is_alive()
    assert not scheduler.running
    assert results(running, 1) == {0: "WARM"}
    _, error = waiting.next_result(DEADLINE) or (None, None)
    assert isinstance(error, BackendError), error
    assert [item for batch in model.batches for item in batch] == ["warm"]


def test_each_batch_reports_how_many_lanes_it_took_items_from() -> None:
    model = GatedModel()
    heard: list[int] = []
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=4, on_batch=heard.append)
    blocker = block_with_one_item(scheduler, model)
    long_job, short_job = scheduler.open_lane(), scheduler.open_lane()
    for i in range(6):
        long_job.submit(f"long{i}", "k")
    short_job.submit("short0", "k")
    model.gate.set()
    assert results(short_job, 1) == {0: "SHORT0"}
    assert results(long_job, 6) == {i: f"LONG{i}" for i in range(6)}
    blocker.close()
    assert [len(batch) for batch in model.batches] == [1, 4, 3]
    assert heard == [1, 2, 1]


def test_a_lane_closed_while_the_scheduler_lingers_leaves_it_serving_the_others() -> None:
    """A job cancelled while the scheduler waited a moment for more work took the only queued
    item with it; the thread then died on an empty batch, still counted as running, and every
    later job waited for ever."""
    model = GatedModel()
    model.gate.set()
    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=4)
    scheduler._last_batch_seconds = 0.2  # so that it lingers for a lane with nothing queued
    cancelled, other = scheduler.open_lane(), scheduler.open_lane()
    lingered, took = threading.Event(), threading.Event()
    real_linger, real_take = scheduler._linger, scheduler._take

    def linger_then_lose_the_work() -> None:
        if not lingered.is_set():
            lingered.set()
            cancelled.close()  # under the scheduler's lock, as a cancel racing the linger
        real_linger()

    def take() -> list[Any]:
        took.set()
        return real_take()

    scheduler._linger = linger_then_lose_the_work  # type: ignore[method-assign]
    scheduler._take = take  # type: ignore[method-assign]
    cancelled.submit("lost", "k")
    assert took.wait(DEADLINE)  # it has looked for a batch after the lane took its work away
    other.submit("later", "k")
    assert results(other, 1) == {0: "LATER"}
    other.close()
    with scheduler.open_lane() as lane:
        lane.submit("next", "k")
        assert results(lane, 1) == {0: "NEXT"}
    assert [item for batch in model.batches for item in batch] == ["later", "next"]


def test_a_failing_batch_callback_fails_the_open_jobs_and_the_next_job_runs() -> None:
    model = GatedModel()
    model.gate.set()
    calls: list[int] = []

    def on_batch(lanes: int) -> None:
        calls.append(lanes)
        if len(calls) == 1:
            raise RuntimeError("metrics exploded")

    scheduler: BatchScheduler[str, str] = BatchScheduler(model, max_batch=2, on_batch=on_batch)
    with scheduler.open_lane() as lane:
        lane.submit("a", "k")
        error = results(lane, 1)[-1]
        assert isinstance(error, BackendError)
    with scheduler.open_lane() as lane:
        lane.submit("b", "k")
        assert results(lane, 1) == {0: "B"}
