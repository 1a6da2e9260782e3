"""Diarization error rate against the conversation fixtures, scored the standard way.

The committed RTTM turns span each synthesised utterance from its first to its last sample, so
a pause between two sentences of one utterance counts there as that speaker's speech. Standard
references do not: NIST's Rich Transcription evaluations end a speaker segment at a pause of
0.3 s or more, and DIHARD bridges only pauses of 200 ms or less. So the reference scored here is
each RTTM turn less the pauses inside it: stretches of at least `PAUSE_SECONDS` where every
10 ms frame stays below `SILENT_PEAK` of full scale, the level at which the fixture scripts
trimmed each utterance's edges (SoX `silence`, 0.5 %). Shorter pauses, a stop consonant's
closure among them, stay speech. The same rule holds for the output scored: a pause of under
`PAUSE_SECONDS` between two consecutive spans of one speaker (nobody else's span between them) is
no break in that speaker's speech, so such spans are scored as one, as a reference's turn would
be. On top of that, the usual 0.25 s collar around every reference boundary and no scoring of
overlapped speech (pyannote.metrics `DiarizationErrorRate`).

`turns_der` scores against the RTTM turns as they are (the figure before this rule), so that
both can be printed side by side.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache
from typing import Any

import numpy as np

from tests.audio import DATA
from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.pipeline.stages.decode import decode_audio

COLLAR = 0.25
PAUSE_SECONDS = 0.3
SILENT_PEAK = 0.005
FRAME_SECONDS = 0.01

Span = tuple[float, float, str | None]


def rttm_turns(name: str) -> list[tuple[float, float, str]]:
    """(start, end, speaker) of every turn in `tests/data/<name>.rttm`."""
    turns = []
    for line in (DATA / f"{name}.rttm").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        turns.append((start, start + duration, fields[7]))
    return turns


@cache
def silent_stretches(name: str) -> tuple[tuple[float, float], ...]:
    """Runs of at least `PAUSE_SECONDS` of frames whose peak is below `SILENT_PEAK`."""
    samples = decode_audio(DATA / f"{name}.flac", max_seconds=600).samples
    size = round(FRAME_SECONDS * SAMPLE_RATE)
    count = len(samples) // size
    peaks = np.abs(samples[: count * size].reshape(count, size)).max(axis=1)
    silent = np.concatenate(([False], peaks < SILENT_PEAK, [False])).astype(np.int8)
    edges = np.diff(silent)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    shortest = round(PAUSE_SECONDS / FRAME_SECONDS)
    return tuple(
        (float(a) * FRAME_SECONDS, float(b) * FRAME_SECONDS)
        for a, b in zip(starts, ends, strict=True)
        if b - a >= shortest
    )


def speech_turns(name: str) -> list[tuple[float, float, str]]:
    """The RTTM turns cut at the pauses inside them (see the module docstring)."""
    result = []
    for start, end, speaker in rttm_turns(name):
        cursor = start
        for low, high in silent_stretches(name):
            if low > cursor and high < end:
                result.append((cursor, low, speaker))
                cursor = high
        result.append((cursor, end, speaker))
    return result


def bridged(spans: Iterable[Span]) -> list[Span]:
    """`spans` in time order, each pause of under `PAUSE_SECONDS` between two consecutive spans
    of one speaker bridged (the rule `speech_turns` applies to the reference)."""
    result: list[Span] = []
    for start, end, speaker in sorted(spans, key=lambda span: (span[0], span[1])):
        if result:
            last_start, last_end, last_speaker = result[-1]
            if speaker == last_speaker and 0 <= start - last_end < PAUSE_SECONDS:
                result[-1] = (last_start, max(last_end, end), speaker)
                continue
        result.append((start, end, speaker))
    return result


def annotation(spans: Iterable[Span]) -> Any:
    """(start, end, speaker) spans as a pyannote annotation."""
    core = importlib.import_module("pyannote.core")
    result = core.Annotation()
    for index, (start, end, speaker) in enumerate(spans):
        if end > start:
            result[core.Segment(start, end), index] = speaker or "?"
    return result


def _scored(reference: list[tuple[float, float, str]], spans: Iterable[Span]) -> tuple[float, ...]:
    metrics = importlib.import_module("pyannote.metrics.diarization")
    metric = metrics.DiarizationErrorRate(collar=COLLAR, skip_overlap=True)
    parts = metric(annotation(reference), annotation(spans), detailed=True)
    total = parts["total"] or 1.0
    shares = (parts[k] / total for k in ("missed detection", "false alarm", "confusion"))
    return (float(parts["diarization error rate"]), *(float(x) for x in shares))


def der(name: str, spans: Iterable[Span]) -> tuple[float, ...]:
    """DER of `spans` against `name`'s speech turns, then its missed speech, false alarm and
    speaker confusion, each as a share of the scored reference speech."""
    return _scored(speech_turns(name), bridged(spans))


def turns_der(name: str, spans: Iterable[Span]) -> tuple[float, ...]:
    """Against the RTTM turns as they are, pauses inside them counted as speech, and `spans`
    as they are (the figure before the pause rule)."""
    return _scored(rttm_turns(name), spans)
