"""ThrottledProgress: at most one store write per interval, each carrying the latest state."""

from __future__ import annotations

from whisperx_api.jobs.progress import ThrottledProgress


def test_writes_are_throttled_and_carry_the_latest_text() -> None:
    now = [0.0]
    writes: list[tuple[float, str | None]] = []
    progress = ThrottledProgress(lambda f, t: writes.append((f, t)), 1.0, clock=lambda: now[0])
    progress.fraction(0.1)  # the first report is written at once
    now[0] = 0.4
    progress.text("hello")  # kept for the next write
    progress.fraction(0.3)  # dropped: too soon
    now[0] = 1.2
    progress.text("hello there")  # a text alone writes nothing: its fraction follows
    assert len(writes) == 1
    progress.fraction(0.5)  # written, with the latest text
    assert writes == [(0.1, None), (0.5, "hello there")]
