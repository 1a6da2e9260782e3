"""A fair batch scheduler: one thread runs batches formed from the work of every open lane.

Each job opens a lane and submits items tagged with a key; items may share a batch only when
their keys are equal (what the model call must share). The thread takes lanes in turn, one item
per lane per round, so a job with many items cannot starve a job with few, and it dispatches
what is queued as soon as the model is free, waiting at most a moment for jobs that are about
to queue theirs (see `_linger`), never to fill a batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from whisperx_api.errors import BackendError

W = TypeVar("W")
R = TypeVar("R")

log = logging.getLogger(__name__)

_MAX_LINGER_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class _Queued(Generic[W]):
    index: int
    key: Hashable
    item: W


class Lane(Generic[W, R]):
    """One job's queue in the scheduler; results come back tagged with the submit index."""

    def __init__(self, scheduler: BatchScheduler[W, R]) -> None:
        self._scheduler = scheduler
        self._pending: deque[_Queued[W]] = deque()
        self._results: queue.SimpleQueue[tuple[int, R | BaseException]] = queue.SimpleQueue()
        self._submitted = 0
        self._closed = False

    def submit(self, item: W, key: Hashable) -> int:
        """Queue `item`; returns its index, which its result carries."""
        return self._scheduler._submit(self, [item], key)

    def submit_many(self, items: Sequence[W], key: Hashable) -> int:
        """Queue `items` at once (so they can share one batch); returns the first's index."""
        return self._scheduler._submit(self, items, key)

    def next_result(self, timeout: float) -> tuple[int, R | BaseException] | None:
        """The next finished item as (index, result or the exception it raised), or None."""
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Leave the scheduler; items not yet in a batch are dropped (a cancelled job)."""
        self._scheduler._close_lane(self)

    def __enter__(self) -> Lane[W, R]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class BatchScheduler(Generic[W, R]):
    """Runs `run_batch` on up to `max_batch` same-key items at a time, on its own thread.

    `run_batch` returns one result per item, in order. When it raises on a batch of several
    items, each item is retried alone, so a failing item fails only its own job.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[W]], Sequence[R]],
        max_batch: int,
        name: str = "batch-scheduler",
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`on_batch` hears, for every batch dispatched, how many lanes it took items from."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._name = name
        self._cond = threading.Condition()
        self._lanes: list[Lane[W, R]] = []
        self._turn = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_batch_seconds = 0.0
        self.batches_run = 0

    def open_lane(self) -> Lane[W, R]:
        """A new lane for one job; close it when the job ends (or use it as a context)."""
        lane: Lane[W, R] = Lane(self)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batch scheduler is closed")
            self._lanes.append(lane)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        return lane

    def close(self) -> None:
        """Stop the thread after the batch in progress, and wait for it: a process must not exit
        while a batch is still inside the model's native code (the C++ runtime aborts).

        Queued items are dropped, and every lane still open gets an error in their place, so no
        job waits for results that will never come.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:
            for lane in self._lanes:
                lane._pending.clear()
                lane._results.put((-1, BackendError("The transcription model was closed.")))

    @property
    def open_lanes(self) -> int:
        """How many jobs have a lane open now."""
        with self._cond:
            return len(self._lanes)

    @property
    def running(self) -> bool:
        """Whether the thread is alive (it ends whenever no lane is open)."""
        with self._cond:
            return self._thread is not None

    def _submit(self, lane: Lane[W, R], items: Sequence[W], key: Hashable) -> int:
        with self._cond:
            if lane._closed or self._closed:
                raise RuntimeError("the lane is closed")
            first = lane._submitted
            for item in items:
                lane._pending.append(_Queued(lane._submitted, key, item))
                lane._submitted += 1
            self._cond.notify_all()
        return first

    def _close_lane(self, lane: Lane[W, R]) -> None:
        with self._cond:
            if lane._closed:
                return
            lane._closed = True
            lane._pending.clear()
            position = self._lanes.index(lane)
            del self._lanes[position]
            if position < self._turn:
                self._turn -= 1
            self._cond.notify_all()

    def _loop(self) -> None:
        try:
            self._serve()
        except Exception:
            # Should anything here fail, the next lane must start a new thread, and the lanes
            # open now must hear of it: a job must never wait on a thread that is gone.
            log.exception("the batch scheduler %s stopped", self._name)
            with self._cond:
                self._thread = None
                for lane in self._lanes:
                    lane._pending.clear()
                    lane._results.put((-1, BackendError("The transcription model failed.")))

    def _serve(self) -> None:
        # The thread ends when no lane is open, so an unloaded model is not kept alive by it.
        while True:
            with self._cond:
                batch: list[tuple[Lane[W, R], _Queued[W]]] = []
                while not batch:
                    while not self._closed and not any(lane._pending for lane in self._lanes):
                        if not self._lanes:
                            self._thread = None
                            return
                        self._cond.wait()
                    self._linger()
                    if self._closed:
                        self._thread = None
                        return
                    # A lane closed while we lingered may have taken the only queued work.
                    batch = self._take()
            if self._on_batch is not None:
                self._on_batch(len({id(lane) for lane, _ in batch}))
            started = time.monotonic()
            self._run(batch)
            self._last_batch_seconds = time.monotonic() - started

    def _linger(self) -> None:
        """Wait a moment for lanes that are preparing chunks, when the batch is not yet full.

        Jobs whose results just came back queue their next chunks a few milliseconds later;
        without this the first of them would take the model alone. The wait is at most a tenth
        of the last batch's time (and never above `_MAX_LINGER_SECONDS`), and none when every
        open lane already has work queued, so a job running alone never waits.
        """
        deadline = time.monotonic() + min(_MAX_LINGER_SECONDS, 0.1 * self._last_batch_seconds)
        while not self._closed:
            queued = sum(len(lane._pending) for lane in self._lanes)
            idle = any(not lane._pending for lane in self._lanes)
            remaining = deadline - time.monotonic()
            if queued >= self._max_batch or not idle or remaining <= 0:
                return
            self._cond.wait(remaining)

    def _take(self) -> list[tuple[Lane[W, R], _Queued[W]]]:
        """The next batch: the key of the lane whose turn it is, one item per lane per round;
        empty when no lane has work queued."""
        count = len(self._lanes)
        order = [self._lanes[(self._turn + i) % count] for i in range(count)]
        order = [lane for lane in order if lane._pending]
        if not order:
            return []
        key = order[0]._pending[0].key
        self._turn = (self._lanes.index(order[0]) + 1) % count
        batch: list[tuple[Lane[W, R], _Queued[W]]] = []
        while len(batch) < self._max_batch:
            took = False
            for lane in order:
                if len(batch) == self._max_batch:
                    break
                if lane._pending and lane._pending[0].key == key:
                    batch.append((lane, lane._pending.popleft()))
                    took = True
            if not took:
                break
        return batch

    def _run(self, batch: list[tuple[Lane[W, R], _Queued[W]]]) -> None:
        self.batches_run += 1
        try:
            results = self._run_batch([queued.item for _, queued in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:
            if len(batch) == 1:
                lane, queued = batch[0]
                lane._results.put((queued.index, exc))
                return
            log.warning("a batch of %d failed (%s); retrying its items one by one", len(batch), exc)
            for one in batch:
                self._run([one])
            return
        for (lane, queued), result in zip(batch, results, strict=True):
            lane._results.put((queued.index, result))
