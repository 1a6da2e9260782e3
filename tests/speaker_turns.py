"""Scores live speaker labels against a fixture's reference turns (RTTM).

A live turn's right speaker is the reference speaker who talks longest inside the turn's audio
(`speech_started.audio_start_ms` to `speech_stopped.audio_end_ms`). Session labels are anonymous,
so they are matched one-to-one to reference speakers, the matching that gets most turns right;
a label left without a reference speaker (a session speaker too many) gets all its turns wrong.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.realtime_sdk import Streamed


@dataclass(frozen=True)
class LabelScore:
    """How the labels of one streamed session compare with the reference."""

    turns: int
    right: int
    labels: tuple[str, ...]  # the distinct labels the session gave
    mapping: dict[str, str]  # session label -> reference speaker
    rows: tuple[tuple[float, float, str | None, str | None], ...]  # start, end, label, truth

    @property
    def accuracy(self) -> float:
        return self.right / self.turns if self.turns else 0.0


def reference_turns(rttm: Path) -> list[tuple[float, float, str]]:
    """(start, end, speaker) of every RTTM SPEAKER line."""
    turns = []
    for line in rttm.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
    return turns


def majority(start: float, end: float, reference: list[tuple[float, float, str]]) -> str | None:
    """The reference speaker who talks longest between `start` and `end` (seconds)."""
    talk: dict[str, float] = defaultdict(float)
    for ref_start, ref_end, speaker in reference:
        talk[speaker] += max(0.0, min(end, ref_end) - max(start, ref_start))
    best = max(talk, key=lambda s: talk[s], default=None)
    return best if best is not None and talk[best] > 0 else None


def score(streamed: Streamed, rttm: Path) -> LabelScore:
    """Score every completed turn of `streamed` against `rttm`."""
    reference = reference_turns(rttm)
    rows = []
    for turn in sorted(streamed.turns.values(), key=lambda t: t.start_ms or 0):
        if turn.transcript is None or turn.start_ms is None or turn.end_ms is None:
            continue
        start, end = turn.start_ms / 1000, turn.end_ms / 1000
        rows.append((start, end, turn.speaker, majority(start, end, reference)))
    labels = tuple(sorted({row[2] for row in rows if row[2] is not None}))
    names = sorted({speaker for _, _, speaker in reference})
    mapping, right = _best_mapping(rows, labels, names)
    return LabelScore(len(rows), right, labels, mapping, tuple(rows))


def _best_mapping(
    rows: list[tuple[float, float, str | None, str | None]],
    labels: tuple[str, ...],
    names: list[str],
) -> tuple[dict[str, str], int]:
    best: tuple[dict[str, str], int] = ({}, 0)
    width = min(len(labels), len(names))
    for chosen in itertools.permutations(labels, width):
        for targets in itertools.permutations(names, width):
            mapping = dict(zip(chosen, targets, strict=True))
            right = sum(1 for _, _, label, truth in rows if label and mapping.get(label) == truth)
            if right > best[1]:
                best = (mapping, right)
    return best
