"""A ref-counted model cache with an idle TTL: models load once and are shared by jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from whisperx_api import metrics
from whisperx_api.errors import Conflict, NotFound
from whisperx_api.memory import release_memory

M = TypeVar("M")


@dataclass
class _Entry(Generic[M]):
    model: M
    refs: int = 0
    last_used: float = 0.0


class ModelCache(Generic[M]):
    """Loads a model on first use, counts users, unloads after `ttl_seconds` idle.

    `ttl_seconds < 0` keeps models forever; `0` unloads as soon as the last user leaves.
    """

    def __init__(
        self,
        loader: Callable[[str], M],
        ttl_seconds: float = -1,
        clock: Callable[[], float] = time.monotonic,
        stage: str = "model",
    ) -> None:
        self._loader = loader
        self._stage = stage
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Entry[M]] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._loads: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        if ttl_seconds > 0:
            self._start_sweeper()

    @contextmanager
    def acquire(self, key: str) -> Iterator[M]:
        """Hold `key`'s model for the duration of the block."""
        entry = self._checkout(key)
        try:
            yield entry.model
        finally:
            self._release(key, entry)

    def load(self, key: str) -> None:
        """Load `key` now, so the first request does not pay for it."""
        with self.acquire(key):
            pass

    def unload(self, key: str) -> None:
        """Drop `key`; refuse while a job uses it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                raise NotFound(f"Model '{key}' is not loaded.")
            if entry.refs > 0:
                raise Conflict(f"Model '{key}' is in use by {entry.refs} job(s); try again later.")
            del self._entries[key]
        del entry
        metrics.model_unloaded(self._stage, key)
        release_memory()

    def loaded(self) -> list[str]:
        """Keys of the models in memory."""
        with self._lock:
            return sorted(self._entries)

    def load_count(self, key: str) -> int:
        """How many times `key` has been loaded."""
        with self._lock:
            return self._loads.get(key, 0)

    def sweep(self) -> list[str]:
        """Unload every model idle for longer than the TTL; returns their keys."""
        if self._ttl < 0:
            return []
        now = self._clock()
        with self._lock:
            idle = [
                k
                for k, e in self._entries.items()
                if e.refs == 0 and now - e.last_used >= self._ttl
            ]
            for key in idle:
                del self._entries[key]
                metrics.model_unloaded(self._stage, key)
        if idle:
            release_memory()
        return idle

    def close(self) -> None:
        """Stop the sweeper and drop every model."""
        self._stop.set()
        with self._lock:
            for key in self._entries:
                metrics.model_unloaded(self._stage, key)
            self._entries.clear()
        release_memory()

    def _checkout(self, key: str) -> _Entry[M]:
        with self._key_lock(key):
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.refs += 1
                    return entry
            model = self._loader(key)
            release_memory()  # the loader's scratch buffers
            with self._lock:
                entry = _Entry(model=model, refs=1)
                self._entries[key] = entry
                self._loads[key] = self._loads.get(key, 0) + 1
                metrics.model_loaded(self._stage, key)
                return entry

    def _release(self, key: str, entry: _Entry[M]) -> None:
        with self._lock:
            entry.refs -= 1
            entry.last_used = self._clock()
        if self._ttl == 0:
            self.sweep()

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._load_locks.setdefault(key, threading.Lock())

    def _start_sweeper(self) -> None:
        interval = min(max(self._ttl / 4, 0.1), 30.0)

        def run() -> None:
            while not self._stop.wait(interval):
                self.sweep()

        self._sweeper = threading.Thread(target=run, name="model-cache-sweeper", daemon=True)
        self._sweeper.start()
