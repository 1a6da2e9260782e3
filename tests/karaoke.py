"""Word-start accuracy on the karaoke fixtures (`tests/data/make_karaoke.py`).

Shared by `bench/word_timing.py` and the slow test that holds the bar. Words are matched to the
truth on normalised text by sequence alignment, so recognition errors only drop words from the
count. A matched word counts as *connected* when no silence precedes it (it runs on from the
previous word) and as *after a pause* when at least `PAUSE_S` of silence does.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.audio import DATA

CONNECTED_MAX_GAP_S = 0.03
PAUSE_S = 0.2
# The fixture sets: the one the aligner was tuned on, and voices and rates it never saw.
TUNED = "karaoke"
HELD_OUT = "karaoke_heldout"
TimedWord = tuple[str, float, float]


@dataclass(frozen=True)
class KaraokeFixture:
    """One fixture file with its language and exact word truth."""

    name: str
    language: str
    voice: str
    rate: int
    words: tuple[Mapping[str, Any], ...]
    prefix: str = TUNED

    @property
    def path(self) -> Path:
        return DATA / f"{self.prefix}_{self.name}.flac"


def load_fixtures(prefix: str = TUNED) -> list[KaraokeFixture]:
    """Every fixture of a set (`TUNED` or `HELD_OUT`), in file order."""
    raw: dict[str, dict[str, Any]] = json.loads((DATA / f"{prefix}.json").read_text("utf-8"))
    return [
        KaraokeFixture(name, v["language"], v["voice"], v["rate"], tuple(v["words"]), prefix)
        for name, v in raw.items()
    ]


@dataclass
class StartScore:
    """Counts of word starts within 100 ms and 200 ms, per kind of boundary."""

    connected: int = 0
    connected_100: int = 0
    connected_200: int = 0
    paused: int = 0
    paused_100: int = 0
    paused_200: int = 0
    matched: int = 0
    total: int = 0

    def add(self, other: StartScore) -> StartScore:
        return StartScore(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))

    @staticmethod
    def share(good: int, count: int) -> float:
        return good / count if count else 0.0


def _fields(score: StartScore) -> tuple[int, ...]:
    return (
        score.connected,
        score.connected_100,
        score.connected_200,
        score.paused,
        score.paused_100,
        score.paused_200,
        score.matched,
        score.total,
    )


def norm(text: str) -> str:
    """Lower case, letters and digits only (accents kept)."""
    return re.sub(r"[\W_]", "", text.lower())


def score_starts(truth: Sequence[Mapping[str, Any]], words: Sequence[TimedWord]) -> StartScore:
    """Compare the word starts of `words` with the truth, by kind of boundary."""
    matcher = difflib.SequenceMatcher(
        a=[norm(str(t["word"])) for t in truth], b=[norm(w[0]) for w in words], autojunk=False
    )
    score = StartScore(total=sum(t["start"] is not None for t in truth))
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            expected, heard = truth[block.a + k], words[block.b + k]
            if expected["start"] is None:
                continue
            score.matched += 1
            error = abs(float(expected["start"]) - heard[1])
            gap = float(expected["gap"])
            if gap < CONNECTED_MAX_GAP_S:
                score.connected += 1
                score.connected_100 += error <= 0.1
                score.connected_200 += error <= 0.2
            elif gap >= PAUSE_S:
                score.paused += 1
                score.paused_100 += error <= 0.1
                score.paused_200 += error <= 0.2
    return score


def total(scores: Iterable[StartScore]) -> StartScore:
    result = StartScore()
    for score in scores:
        result = result.add(score)
    return result


def describe(score: StartScore) -> str:
    """One line: connected and after-pause shares within 100/200 ms, with counts."""
    s = StartScore.share
    return (
        f"connected {s(score.connected_100, score.connected):6.1%} / "
        f"{s(score.connected_200, score.connected):6.1%} of {score.connected:3d}   "
        f"after pause {s(score.paused_100, score.paused):6.1%} / "
        f"{s(score.paused_200, score.paused):6.1%} of {score.paused:2d}   "
        f"(matched {score.matched}/{score.total})"
    )
