"""How readable a set of subtitle cues is, against the utterances a recording is known to hold.

Shared by the real-model subtitle tests and `bench/subtitles.py`. A cue is (start, end, text);
its text may hold line breaks and a `[SPEAKER_00]: ` prefix (which counts towards the line
width, as it takes room on screen, but not towards the reading speed: it is not speech).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import srt

from tests.audio import DATA

MAX_SECONDS = 7.0
MAX_LINE = 42
MAX_LINES = 2
MAX_CPS = 20.0
MATCH_SECONDS = 0.5

PREFIX = re.compile(r"^\[[^\]]+\]: ")

Cue = tuple[float, float, str]

RECORDINGS = ("conv2", "conv4", "en_recorded", "en_espeak", "narration")
"""The committed two- and four-voice calls, the recorded prompts, the synthetic sentences, and
the narrated tour; each has exactly known utterance starts."""


@dataclass(frozen=True)
class CueStats:
    """Shares (0..1) of cues within each limit, and of utterance starts a cue starts near."""

    count: int
    short: float
    fits: float
    readable: float
    matched: float

    def row(self, name: str) -> str:
        return (
            f"{name:<24} {self.count:>5} {self.short:>8.0%} {self.fits:>8.0%} "
            f"{self.readable:>8.0%} {self.matched:>8.0%}"
        )


HEADER = f"{'recording':<24} {'cues':>5} {'<=7 s':>8} {'2x42':>8} {'<=20cps':>8} {'starts':>8}"


def srt_cues(text: str) -> list[Cue]:
    """The cues of an SRT document, read by the `srt` package."""
    return [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(text)]


def fits_lines(text: str) -> bool:
    """At most two lines of at most 42 characters, as laid out."""
    lines = text.split("\n")
    return len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE for line in lines)


def wraps_into_lines(text: str) -> bool:
    """For unbroken text (a decoder segment): would greedy wrapping need only two lines?"""
    lines, used = 1, 0
    for word in text.split():
        if used and used + 1 + len(word) > MAX_LINE:
            lines, used = lines + 1, len(word)
        else:
            used += len(word) + (1 if used else 0)
    return lines <= MAX_LINES and all(len(w) <= MAX_LINE for w in text.split())


def spoken_chars(text: str) -> int:
    return len(" ".join(PREFIX.sub("", text).split("\n")))


def cue_stats(cues: Sequence[Cue], starts: Sequence[float], laid_out: bool = True) -> CueStats:
    """`laid_out`: the text carries its own line breaks (cues), else it is wrapped greedily."""
    count = max(len(cues), 1)
    fits = fits_lines if laid_out else wraps_into_lines
    readable = sum(spoken_chars(t) <= MAX_CPS * max(e - s, 1e-3) for s, e, t in cues)
    found = sum(any(abs(s - start) <= MATCH_SECONDS for s, _, _ in cues) for start in starts)
    return CueStats(
        count=len(cues),
        short=sum(e - s <= MAX_SECONDS for s, e, _ in cues) / count,
        fits=sum(fits(t) for _, _, t in cues) / count,
        readable=readable / count,
        matched=found / max(len(starts), 1),
    )


def reference_turns(name: str) -> list[tuple[float, float, str]]:
    """(start, end, speaker or text) of every known utterance, in time order."""
    rttm = DATA / f"{name}.rttm"
    if rttm.exists():
        turns = []
        for line in rttm.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
        return turns
    described = DATA / f"{name}.json"
    if described.exists():
        body = json.loads(described.read_text(encoding="utf-8"))
        return [(u["start"], u["end"], u["text"]) for u in body["utterances"]]
    return [(s, e, "") for s, e in _digital_silence_turns(name)]


def reference_starts(name: str) -> list[float]:
    return [start for start, _, _ in reference_turns(name)]


def _digital_silence_turns(name: str) -> list[tuple[float, float]]:
    """Fixtures joined with digital silence (`make_fixtures.py`): an utterance is a stretch
    between runs of at least 0.25 s of exact zeros."""
    import numpy as np

    from whisperx_api.domain.audio import SAMPLE_RATE
    from whisperx_api.pipeline.stages.decode import decode_audio

    rate = SAMPLE_RATE
    audio = decode_audio(DATA / f"{name}.flac", max_seconds=600)
    voiced = np.flatnonzero(audio.samples != 0)
    gaps = np.flatnonzero(np.diff(voiced) > 0.25 * rate)
    starts = [voiced[0], *voiced[gaps + 1]]
    ends = [*voiced[gaps], voiced[-1]]
    return [(float(s) / rate, float(e) / rate) for s, e in zip(starts, ends, strict=True)]
