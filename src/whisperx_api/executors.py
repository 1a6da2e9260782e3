"""Threads for blocking calls, kept apart so that running jobs never starve the API.

A pipeline call holds its thread for the whole job (minutes); a store or file call holds one for
milliseconds. On one shared pool (asyncio's default executor, which `asyncio.to_thread` uses),
`MAX_CONCURRENT_JOBS` running jobs plus anything else blocking there leave status and submit
calls queueing behind them. So the pipeline gets a pool of its own, one thread per job slot
(`pipeline_pool`), and store and I/O calls go through `run_io`, on a pool nothing long-running
uses.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# Store and file calls are short; this many at once is plenty and bounds the threads.
IO_THREADS = 16

_io_pool: ThreadPoolExecutor | None = None
_io_lock = threading.Lock()


def io_pool() -> ThreadPoolExecutor:
    """The process's pool for short blocking calls (created on first use)."""
    global _io_pool
    with _io_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="io")
        return _io_pool


async def run_io(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """`asyncio.to_thread` on the I/O pool: for store, blob and file calls, never pipeline work."""
    return await run_in(io_pool(), func, *args, **kwargs)


def pipeline_pool(slots: int) -> ThreadPoolExecutor:
    """A pool with one thread per job slot, for the pipeline calls of one worker pool."""
    return ThreadPoolExecutor(max_workers=max(slots, 1), thread_name_prefix="pipeline")


async def run_in(
    pool: ThreadPoolExecutor, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> R:
    """`asyncio.to_thread` on `pool` (the caller's context variables go along)."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)
