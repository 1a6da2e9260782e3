"""Freed heap goes back to the OS (glibc): pinned thresholds plus `release_memory`.

Each case runs in a fresh interpreter, since malloc settings are process-wide. The probe frees
a 30 MB block in a thread (which is what raises glibc's moving thresholds, as dropping model
weights does), then allocates and frees 60 MB in 1 MB buffers, and prints how much of that
stays resident after `release_memory`.
"""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import ctypes, sys, threading
from pathlib import Path
from whisperx_api.memory import fix_malloc_thresholds, release_memory

if sys.argv[1] == "fix":
    print("applied" if fix_malloc_thresholds() else "not applied")
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def resident_anon_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) // 1024

def churn():
    big = libc.malloc(30 << 20)
    ctypes.memset(big, 1, 30 << 20)
    libc.free(big)
    blocks = [libc.malloc(1 << 20) for _ in range(60)]
    for block in blocks:
        ctypes.memset(block, 1, 1 << 20)
    for block in blocks:
        libc.free(block)

before = resident_anon_mb()
thread = threading.Thread(target=churn)
thread.start()
thread.join()
release_memory()
print(resident_anon_mb() - before)
"""


def retained_mb(mode: str, **env: str) -> tuple[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.split()
    return " ".join(lines[:-1]), int(lines[-1])


def test_freed_memory_stays_resident_with_glibc_defaults() -> None:
    """The failure the fix is for: without it, the 60 MB stay."""
    _, retained = retained_mb("default")
    assert retained >= 50


def test_pinned_thresholds_let_freed_memory_go_back() -> None:
    applied, retained = retained_mb("fix")
    assert applied == "applied"
    assert retained < 10


def test_an_operators_malloc_setting_wins() -> None:
    applied, _ = retained_mb("fix", MALLOC_TRIM_THRESHOLD_="67108864")
    assert applied == "not applied"
