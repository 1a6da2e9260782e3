"""The ref-counted model cache: load once, share, refuse unload in use, expire when idle, and
hold at most `max_loaded` models, evicting the least recently used idle one (never one in use)."""

from __future__ import annotations

import threading
import time

import pytest

from whisperx_api.errors import Conflict, ModelSlotsBusy, NotFound
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


class CountingLoader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, name: str) -> str:
        self.calls.append(name)
        return name.upper()


def test_a_full_cache_unloads_the_least_recently_used_idle_model() -> None:
    loader = CountingLoader()
    cache: ModelCache[str] = ModelCache(loader, max_loaded=2)
    cache.load("a")
    cache.load("b")
    with cache.acquire("a"):  # a is now more recent than b
        pass
    cache.load("c")
    assert cache.loaded() == ["a", "c"]
    cache.load("b")
    assert cache.loaded() == ["b", "c"]
    assert loader.calls == ["a", "b", "c", "b"]
    assert cache.max_loaded == 2


def test_a_model_in_use_is_never_evicted_and_a_load_says_the_slots_are_busy() -> None:
    loader = CountingLoader()
    cache: ModelCache[str] = ModelCache(loader, max_loaded=1, stage="transcription")
    with cache.acquire("a"):
        with pytest.raises(ModelSlotsBusy) as info:
            cache.load("b")
        assert cache.loaded() == ["a"]
    assert info.value.code == "model_slots_busy"
    assert "MODELS__MAX_LOADED" in info.value.message
    assert loader.calls == ["a"], "nothing was loaded for the refused request"
    cache.load("b")  # a is idle now: it goes
    assert cache.loaded() == ["b"]


def test_a_job_waits_for_a_slot_instead_of_failing() -> None:
    cache: ModelCache[str] = ModelCache(str.upper, max_loaded=1)
    holding = threading.Event()
    release = threading.Event()
    got: list[str] = []

    def job_a() -> None:
        with cache.acquire("a"):
            holding.set()
            release.wait(30)

    def job_b() -> None:
        with cache.acquire("b") as model:
            got.append(model)

    first = threading.Thread(target=job_a)
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=job_b)
    second.start()
    second.join(0.2)
    assert second.is_alive(), "b must wait while a is in use"
    assert cache.loaded() == ["a"]
    release.set()
    first.join(30)
    second.join(30)
    assert got == ["B"]
    assert cache.loaded() == ["b"]


def test_copies_on_other_devices_take_slots_like_any_model() -> None:
    cache: ModelCache[str] = ModelCache(str.upper, max_loaded=2)
    cache.load("base")
    cache.load("base@cuda:1")
    cache.load("base@cuda:2")
    assert cache.loaded() == ["base@cuda:1", "base@cuda:2"]


def test_a_failed_load_gives_its_slot_back() -> None:
    def loader(name: str) -> str:
        if name == "bad":
            raise RuntimeError("corrupt")
        return name

    cache: ModelCache[str] = ModelCache(loader, max_loaded=1)
    with pytest.raises(RuntimeError):
        cache.load("bad")
    cache.load("good")
    assert cache.loaded() == ["good"]


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ModelCache(str.upper, max_loaded=0)
