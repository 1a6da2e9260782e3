"""A ref-counted model cache: models load once, are shared by jobs, and are bounded per stage.

Two rules keep memory bounded whatever clients ask for: at most `max_loaded` models are
resident (a new one first unloads the least recently used idle one, never one in use), and an
optional idle TTL unloads models nobody used for a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from whisperx_api import metrics
from whisperx_api.errors import Conflict, ModelSlotsBusy, NotFound
from whisperx_api.memory import release_memory

M = TypeVar("M")


@dataclass
class _Entry(Generic[M]):
    model: M
    refs: int = 0
    last_used: float = 0.0
    recency: int = 0


class ModelCache(Generic[M]):
    """Loads a model on first use, counts users, evicts the least recently used when full.

    `ttl_seconds < 0` keeps models until evicted; `0` unloads as soon as the last user leaves.
    `max_loaded=None` sets no bound (tests and single-model stages).
    """

    def __init__(
        self,
        loader: Callable[[str], M],
        ttl_seconds: float = -1,
        clock: Callable[[], float] = time.monotonic,
        stage: str = "model",
        max_loaded: int | None = None,
    ) -> None:
        if max_loaded is not None and max_loaded < 1:
            raise ValueError("max_loaded must be at least 1")
        self._loader = loader
        self._stage = stage
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_loaded
        self._entries: dict[str, _Entry[M]] = {}
        self._loading: set[str] = set()
        self._loads: dict[str, int] = {}
        self._tick = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        if ttl_seconds > 0:
            self._start_sweeper()

    @property
    def max_loaded(self) -> int | None:
        """The most models this cache holds at once (None: unbounded)."""
        return self._max

    @contextmanager
    def acquire(self, key: str, *, wait: bool = True) -> Iterator[M]:
        """Hold `key`'s model for the duration of the block.

        When every slot holds a model in use, `wait=True` (a job) waits for one to be released;
        `wait=False` (an admin's load request) raises `ModelSlotsBusy` at once.
        """
        entry = self._checkout(key, wait)
        try:
            yield entry.model
        finally:
            self._release(entry)

    def load(self, key: str) -> None:
        """Load `key` now, so the first request does not pay for it; never waits for a slot."""
        with self.acquire(key, wait=False):
            pass

    def unload(self, key: str) -> None:
        """Drop `key`; refuse while a job uses it."""
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                raise NotFound(f"Model '{key}' is not loaded.")
            if entry.refs > 0:
                raise Conflict(f"Model '{key}' is in use by {entry.refs} job(s); try again later.")
            del self._entries[key]
            self._cond.notify_all()
        del entry
        metrics.model_unloaded(self._stage, key)
        release_memory()

    def loaded(self) -> list[str]:
        """Keys of the models in memory."""
        with self._cond:
            return sorted(self._entries)

    def load_count(self, key: str) -> int:
        """How many times `key` has been loaded."""
        with self._cond:
            return self._loads.get(key, 0)

    def sweep(self) -> list[str]:
        """Unload every model idle for longer than the TTL; returns their keys."""
        if self._ttl < 0:
            return []
        now = self._clock()
        with self._cond:
            idle = [
                k
                for k, e in self._entries.items()
                if e.refs == 0 and now - e.last_used >= self._ttl
            ]
            for key in idle:
                del self._entries[key]
                metrics.model_unloaded(self._stage, key)
            if idle:
                self._cond.notify_all()
        if idle:
            release_memory()
        return idle

    def close(self) -> None:
        """Stop the sweeper and drop every model."""
        self._stop.set()
        with self._cond:
            for key in self._entries:
                metrics.model_unloaded(self._stage, key)
            self._entries.clear()
            self._cond.notify_all()
        release_memory()

    def _checkout(self, key: str, wait: bool) -> _Entry[M]:
        evicted: list[str] = []
        with self._cond:
            while True:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.refs += 1
                    entry.recency = self._next_tick()
                    return entry
                if key not in self._loading and self._make_room(evicted):
                    self._loading.add(key)
                    break
                if not wait and key not in self._loading:
                    raise ModelSlotsBusy(self._busy_message())
                self._cond.wait()
        if evicted:
            release_memory()  # the evicted models' memory, before the new one maps its weights
        try:
            model = self._loader(key)
        except BaseException:
            with self._cond:
                self._loading.discard(key)
                self._cond.notify_all()
            raise
        release_memory()  # the loader's scratch buffers
        with self._cond:
            self._loading.discard(key)
            entry = _Entry(model=model, refs=1, recency=self._next_tick())
            self._entries[key] = entry
            self._loads[key] = self._loads.get(key, 0) + 1
            metrics.model_loaded(self._stage, key)
            self._cond.notify_all()
            return entry

    def _make_room(self, evicted: list[str]) -> bool:
        """Free one slot for a new model (under the lock): False when every model is in use."""
        while self._max is not None and len(self._entries) + len(self._loading) >= self._max:
            idle = [(e.recency, k) for k, e in self._entries.items() if e.refs == 0]
            if not idle:
                return False
            _, victim = min(idle)
            del self._entries[victim]
            metrics.model_unloaded(self._stage, victim)
            evicted.append(victim)
        return True

    def _busy_message(self) -> str:
        return (
            f"All {self._max} {self._stage} model slot(s) hold models in use by jobs "
            "(MODELS__MAX_LOADED); try again when a job has finished."
        )

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

    def _release(self, entry: _Entry[M]) -> None:
        with self._cond:
            entry.refs -= 1
            entry.last_used = self._clock()
            entry.recency = self._next_tick()
            self._cond.notify_all()
        if self._ttl == 0:
            self.sweep()

    def _start_sweeper(self) -> None:
        interval = min(max(self._ttl / 4, 0.1), 30.0)

        def run() -> None:
            while not self._stop.wait(interval):
                self.sweep()

        self._sweeper = threading.Thread(target=run, name="model-cache-sweeper", daemon=True)
        self._sweeper.start()
