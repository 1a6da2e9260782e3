"""Word start accuracy on the karaoke fixtures: faster-whisper alone, the pause-only refiner, and
the default aligner (pauses, closures kept apart, and the shift of connected boundaries).

Transcribes every `tests/data/karaoke_*.flac` once with the real faster-whisper backend (CPU,
word timestamps, the fixture's language) and prints, per fixture and overall, the share of word
starts within 100 ms and within 200 ms of the truth, separately for words that run on from the
previous one (connected speech) and words after a pause of at least 200 ms. It asserts nothing.

    .venv/bin/python bench/word_timing.py [--model base]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.karaoke import StartScore, describe, load_fixtures, score_starts, total  # noqa: E402

from whisperx_api.domain.audio import DecodedAudio  # noqa: E402
from whisperx_api.domain.options import TranscriptionOptions  # noqa: E402
from whisperx_api.domain.transcript import Transcript  # noqa: E402
from whisperx_api.pipeline.catalog import ModelCatalog  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.pipeline.stages.boundary_refiner import (  # noqa: E402
    EnergyAligner,
    RefinerConfig,
    refine_word_times,
)
from whisperx_api.pipeline.stages.decode import decode_audio  # noqa: E402
from whisperx_api.pipeline.stages.faster_whisper import (  # noqa: E402
    DeviceConfig,
    FasterWhisperBackend,
)

Variant = Callable[[Transcript, DecodedAudio], Transcript]

VARIANTS: dict[str, Variant] = {
    "faster-whisper alone": lambda raw, audio: raw,
    # The refiner as it was: pauses only, closures taken at any distance, no connected shift.
    "pauses only (before)": lambda raw, audio: refine_word_times(
        raw, audio, RefinerConfig(connected_share=0.0, closure_s=0.0)
    ),
    "default aligner (now)": lambda raw, audio: EnergyAligner().align(raw, audio, StageContext()),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="bundled model name (default: base)")
    args = parser.parse_args()

    fixtures = load_fixtures()
    if args.model.endswith(".en"):
        fixtures = [f for f in fixtures if f.language == "en"]
    scores: dict[str, list[StartScore]] = {name: [] for name in VARIANTS}
    timings = {name: 0.0 for name in VARIANTS}
    with tempfile.TemporaryDirectory() as cache:
        backend = FasterWhisperBackend(
            ModelCatalog(args.model, cache_dir=Path(cache)), DeviceConfig("cpu")
        )
        transcribing = 0.0
        for fixture in fixtures:
            audio = decode_audio(fixture.path, 600)
            options = TranscriptionOptions(
                model=args.model, word_timestamps=True, language=fixture.language
            )
            began = time.perf_counter()
            raw = backend.transcribe(audio, options, StageContext())
            transcribing += time.perf_counter() - began
            print(f"{fixture.name} ({fixture.voice}, {fixture.rate} wpm, {audio.duration:.1f} s)")
            for name, variant in VARIANTS.items():
                began = time.perf_counter()
                words = variant(raw, audio).words
                timings[name] += time.perf_counter() - began
                score = score_starts(fixture.words, [(w.text, w.start, w.end) for w in words])
                scores[name].append(score)
                print(f"  {name:22s} {describe(score)}")
        backend.close()

    print(f"\nall fixtures, Whisper {args.model} on CPU; within 100 ms / within 200 ms:")
    for name in VARIANTS:
        print(f"  {name:22s} {describe(total(scores[name]))}")
    print(
        f"transcription {transcribing:.1f} s; alignment "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    )


if __name__ == "__main__":
    main()
