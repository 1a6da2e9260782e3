"""How many jobs run at once, by memory: each admitted job's audio counts against one budget.

Jobs running at once share the model's batches, so admitting many short requests together is
what makes them fast; but each admitted job holds its decoded audio (64 KB a second: 230 MB an
hour) and what is made from it. So every job is admitted against a byte budget before its audio
is decoded, for an estimate from the duration its container declares, and charged its real size
once decoded. The decoder's beam state is not per job: it is bounded by the batch size, whatever
the number of jobs. A job that does not fit waits (in arrival order, so a long file is not
overtaken forever by short ones); a job alone is always admitted, however large.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from whisperx_api.domain.audio import SAMPLE_RATE

MIB: Final = 1024 * 1024
AUDIO_BYTES_PER_SECOND: Final = SAMPLE_RATE * 4  # float32 mono
# The decoded samples and one transient copy of them (resampling, VAD, alignment), plus the
# queued chunks' mel features (about 1 MB each, two groups of a batch), the transcript and
# the job's buffers.
AUDIO_COPIES: Final = 2
JOB_OVERHEAD_BYTES: Final = 16 * MIB
# A file that declares no duration is counted as if coded at 8 kbit/s (1,000 bytes a second),
# about the lowest bitrate speech is stored at.
MIN_BYTES_PER_SECOND: Final = 1000
# Unset `JOBS__MEMORY_BUDGET_MB`: a quarter of the memory available at startup, at most this:
# one hour-long file (about 470 MB counted) and a dozen short ones, never two hour-long files.
DEFAULT_BUDGET_CAP_BYTES: Final = 768 * MIB
MIN_BUDGET_BYTES: Final = 64 * MIB
_POLL_SECONDS = 0.25


def job_bytes(seconds: float) -> int:
    """What a job of `seconds` of audio is counted as while it runs."""
    return int(AUDIO_COPIES * AUDIO_BYTES_PER_SECOND * max(seconds, 0.0)) + JOB_OVERHEAD_BYTES


def estimated_seconds(declared: float | None, file_bytes: int, max_seconds: float) -> float:
    """A job's length before decoding: what its container declares, else a bound from its size;
    never more than the server accepts."""
    if declared is not None and declared > 0:
        return min(declared, max_seconds)
    return min(file_bytes / MIN_BYTES_PER_SECOND, max_seconds)


def default_budget_bytes(available: int | None) -> int:
    """The budget when none is configured, from the memory available at startup (None:
    unknown, the cap)."""
    if available is None:
        return DEFAULT_BUDGET_CAP_BYTES
    return max(MIN_BUDGET_BYTES, min(DEFAULT_BUDGET_CAP_BYTES, available // 4))


class Admission:
    """One admitted job's share of the budget."""

    def __init__(self, budget: MemoryBudget, charged: int) -> None:
        self._budget = budget
        self.charged = charged

    def charge(self, nbytes: int) -> None:
        """Count the job as `nbytes` from now on, when that is more than its estimate (its
        audio turned out longer than declared). Never waits: the job already holds memory."""
        if nbytes > self.charged:
            self._budget._grow(nbytes - self.charged)
            self.charged = nbytes


class MemoryBudget:
    """Bytes the running jobs may be counted for at once; admission in arrival order."""

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 1:
            raise ValueError("the memory budget must be positive")
        self.capacity = capacity_bytes
        self._used = 0
        self._running = 0
        self._waiting: deque[object] = deque()
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def admit(
        self, nbytes: int, check_cancelled: Callable[[], None] | None = None
    ) -> Iterator[Admission]:
        """Wait until the job is first in line and fits (or nothing else runs), then hold
        `nbytes` until the block ends. `check_cancelled` raises to give up waiting."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while not (self._waiting[0] is ticket and self._fits(nbytes)):
                    if check_cancelled is not None:
                        check_cancelled()
                    self._cond.wait(_POLL_SECONDS)
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()
            self._used += nbytes
            self._running += 1
        admission = Admission(self, nbytes)
        try:
            yield admission
        finally:
            with self._cond:
                self._used -= admission.charged
                self._running -= 1
                self._cond.notify_all()

    def room_for_another(self, held: int) -> bool:
        """For a consumer that pulls its jobs (a Kafka worker) and holds `held` of them now,
        admitted or still on their way to admission (claimed, downloading): whether to pull
        one more. Yes when none is held; else only when no job waits for admission and one
        more of the smallest jobs fits beside the admitted ones and those on their way (each
        counted as the smallest, their size being unknown yet). So a full budget stops the
        pulling, and the messages stay for other consumers; a job pulled just before turns
        out large merely waits its turn here."""
        with self._cond:
            if held <= 0:
                return True
            if self._waiting:
                return False
            on_the_way = max(held - self._running, 0)
            return self._used + (on_the_way + 1) * job_bytes(0) <= self.capacity

    def _fits(self, nbytes: int) -> bool:
        return self._running == 0 or self._used + nbytes <= self.capacity

    def _grow(self, nbytes: int) -> None:
        with self._cond:
            self._used += nbytes


def file_size(path: Path) -> int:
    """The upload's size in bytes (0 when it is gone: decoding then reports the error)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
