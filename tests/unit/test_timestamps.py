"""Clock strings for SRT and WebVTT."""

from __future__ import annotations

import pytest

from whisperx_api.formatters.timestamps import (
    milliseconds,
    round_seconds,
    srt_timestamp,
    vtt_timestamp,
)


@pytest.mark.parametrize(
    ("seconds", "srt_text", "vtt_text"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.5, "00:00:01,500", "00:00:01.500"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3599.9996, "01:00:00,000", "01:00:00.000"),
        (3723.456, "01:02:03,456", "01:02:03.456"),
        (360_000.001, "100:00:00,001", "100:00:00.001"),
        (-0.25, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_clock_strings(seconds: float, srt_text: str, vtt_text: str) -> None:
    assert srt_timestamp(seconds) == srt_text
    assert vtt_timestamp(seconds) == vtt_text


def test_milliseconds_and_rounded_seconds() -> None:
    assert milliseconds(3723.456) == 3_723_456
    assert milliseconds(-1.0) == 0
    assert round_seconds(1.23456) == 1.235
    assert round_seconds(0.1 + 0.2) == 0.3
