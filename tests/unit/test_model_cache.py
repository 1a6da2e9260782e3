"""The ref-counted model cache: load once, share, refuse unload in use, expire when idle."""

from __future__ import annotations

import threading
import time

import pytest

from whisperx_api.errors import Conflict, NotFound
from whisperx_api.pipeline.models import ModelCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_loads_once_for_concurrent_users() -> None:
    loads: list[str] = []

    def loader(name: str) -> str:
        time.sleep(0.05)
        loads.append(name)
        return f"model:{name}"

    cache: ModelCache[str] = ModelCache(loader)
    seen: list[str] = []

    def use() -> None:
        with cache.acquire("base") as model:
            seen.append(model)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["base"]
    assert seen == ["model:base"] * 8
    assert cache.load_count("base") == 1


def test_unload_refused_while_in_use_then_allowed() -> None:
    cache: ModelCache[str] = ModelCache(str.upper)
    with cache.acquire("base"), pytest.raises(Conflict):
        cache.unload("base")
    cache.unload("base")
    assert cache.loaded() == []
    with pytest.raises(NotFound):
        cache.unload("base")


def test_idle_ttl_unloads_and_next_use_reloads() -> None:
    clock = Clock()
    cache: ModelCache[str] = ModelCache(str.upper, ttl_seconds=60, clock=clock)
    cache.load("base")
    clock.now = 30
    assert cache.sweep() == []
    clock.now = 61
    assert cache.sweep() == ["base"]
    with cache.acquire("base") as model:
        assert model == "BASE"
    assert cache.load_count("base") == 2
    cache.close()


def test_ttl_zero_unloads_after_each_use() -> None:
    cache: ModelCache[str] = ModelCache(str.upper, ttl_seconds=0)
    with cache.acquire("base"):
        assert cache.loaded() == ["base"]
    assert cache.loaded() == []


def test_negative_ttl_never_unloads() -> None:
    clock = Clock()
    cache: ModelCache[str] = ModelCache(str.upper, ttl_seconds=-1, clock=clock)
    cache.load("base")
    clock.now = 10**9
    assert cache.sweep() == []
    assert cache.loaded() == ["base"]
