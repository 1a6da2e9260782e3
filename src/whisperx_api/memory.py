"""Process memory: give freed heap back to the OS, so RSS falls after a model is unloaded.

glibc raises its mmap and trim thresholds each time a large mmap-ed block is freed (up to
32 MB and 64 MB). Once a model's weights have been dropped, a thread's heap then keeps up to
64 MB of free memory that neither `free` nor `malloc_trim` hands back. Fixed thresholds stop
that; `release_memory` trims what the heaps hold. Both do nothing on other C libraries.
"""

from __future__ import annotations

import ctypes
import gc
import os
from pathlib import Path

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # where glibc's moving threshold ends up anyway
TRIM_THRESHOLD_BYTES = 1024 * 1024


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def fix_malloc_thresholds() -> bool:
    """Pin glibc's mmap and trim thresholds; True when applied.

    A `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` in the environment is the operator's
    choice and wins.
    """
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def release_memory(full: bool = True) -> None:
    """Collect garbage and hand the heaps' free pages back to the OS.

    `full=False` collects only the young generations: what a job left behind is young, and a
    full collection walks every object the loaded libraries hold (about 100,000), holding the
    GIL for 50-100 ms on 2 CPU cores.
    """
    if full:
        gc.collect()
    else:
        gc.collect(1)
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")


def available_memory_bytes(meminfo: Path = _MEMINFO, cgroup: Path = _CGROUP) -> int | None:
    """Memory this process could still use: the kernel's MemAvailable, or less when a cgroup
    (v2) limit leaves less (a container's). None when neither can be read (not Linux)."""
    found: list[int] = []
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        if limit != "max":
            current = int((cgroup / "memory.current").read_text(encoding="ascii").strip())
            found.append(max(0, int(limit) - current))
    except (OSError, ValueError):
        pass
    return min(found) if found else None
