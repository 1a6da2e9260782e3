"""Clock strings and rounded seconds, computed from whole milliseconds.

Everything goes through integer milliseconds first so that 59.9996 s becomes "00:01:00,000"
rather than "00:00:60,000", and every format agrees on where a time falls.
"""

from __future__ import annotations

_MS_PER_HOUR = 3_600_000
_MS_PER_MINUTE = 60_000
_MS_PER_SECOND = 1_000


def milliseconds(seconds: float) -> int:
    """Whole milliseconds, never negative: a clock cannot show a time before the audio."""
    return max(0, round(seconds * _MS_PER_SECOND))


def round_seconds(seconds: float) -> float:
    """Seconds at millisecond precision, as the JSON formats report them."""
    return milliseconds(seconds) / _MS_PER_SECOND


def _clock(seconds: float, decimal_marker: str) -> str:
    """`HH:MM:SS<marker>mmm`; hours grow past two digits rather than wrap."""
    hours, rest = divmod(milliseconds(seconds), _MS_PER_HOUR)
    minutes, rest = divmod(rest, _MS_PER_MINUTE)
    secs, millis = divmod(rest, _MS_PER_SECOND)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def srt_timestamp(seconds: float) -> str:
    """SubRip wants a comma before the milliseconds."""
    return _clock(seconds, ",")


def vtt_timestamp(seconds: float) -> str:
    """WebVTT wants a full stop before the milliseconds; hours are always written."""
    return _clock(seconds, ".")
