"""Word start accuracy on the karaoke fixtures: faster-whisper alone, the pause-only refiner, the
default aligner without and with word edges by a pause following the sound that continues them
(pauses, closures kept apart, and the shift of connected boundaries).

Transcribes every `tests/data/karaoke_*.flac` once with the real faster-whisper backend (CPU,
word timestamps, the fixture's language) and prints, per fixture and overall, the share of word
starts within 100 ms and within 200 ms of the truth, separately for words that run on from the
previous one (connected speech) and words after a pause of at least 200 ms. Two sets are
reported apart: the fixtures the aligner's parameters were chosen on, and held-out voices and
rates (`karaoke_heldout_*`, committed, made by `tests/data/make_karaoke.py held-out`) that were
never used to tune it. It asserts nothing.

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

from tests.karaoke import (  # noqa: E402
    HELD_OUT,
    TUNED,
    KaraokeFixture,
    StartScore,
    describe,
    load_fixtures,
    score_starts,
    total,
)

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
SET_NAMES = {
    TUNED: "tuned fixtures (karaoke_*)",
    HELD_OUT: "held-out voices and rates (karaoke_heldout_*, never used to tune)",
}

VARIANTS: dict[str, Variant] = {
    "faster-whisper alone": lambda raw, audio: raw,
    # The refiner as it was: pauses only, closures taken at any distance, no connected shift.
    "pauses only (before)": lambda raw, audio: refine_word_times(
        raw, audio, RefinerConfig(connected_share=0.0, closure_s=0.0)
    ),
    # The default aligner before word edges by a pause followed the sound that continues them.
    "edges not following sound": lambda raw, audio: refine_word_times(
        raw, audio, RefinerConfig(max_follow_s=0.0)
    ),
    "default aligner (now)": lambda raw, audio: EnergyAligner().align(raw, audio, StageContext()),
}


def run_set(
    backend: FasterWhisperBackend, fixtures: list[KaraokeFixture], model: str
) -> tuple[dict[str, StartScore], float, dict[str, float]]:
    """Every variant on every fixture of one set: its totals, transcription and alignment time."""
    scores: dict[str, list[StartScore]] = {name: [] for name in VARIANTS}
    timings = {name: 0.0 for name in VARIANTS}
    transcribing = 0.0
    for fixture in fixtures:
        audio = decode_audio(fixture.path, 600)
        options = TranscriptionOptions(model=model, word_timestamps=True, language=fixture.language)
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
    return {name: total(s) for name, s in scores.items()}, transcribing, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="bundled model name (default: base)")
    args = parser.parse_args()

    sets = {TUNED: load_fixtures(TUNED), HELD_OUT: load_fixtures(HELD_OUT)}
    if args.model.endswith(".en"):
        sets = {k: [f for f in v if f.language == "en"] for k, v in sets.items()}
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        backend = FasterWhisperBackend(
            ModelCatalog(args.model, cache_dir=Path(cache)), DeviceConfig("cpu")
        )
        for label, fixtures in sets.items():
            print(f"\n== {SET_NAMES[label]} ==")
            results[label] = run_set(backend, fixtures, args.model)
        backend.close()

    for label, (totals, transcribing, timings) in results.items():
        print(f"\n{SET_NAMES[label]}, Whisper {args.model} on CPU; within 100 ms / within 200 ms:")
        for name in VARIANTS:
            print(f"  {name:22s} {describe(totals[name])}")
        print(
            f"transcription {transcribing:.1f} s; alignment "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
        )
    held = results[HELD_OUT][0]["default aligner (now)"]
    share = StartScore.share
    print(
        f"\nheld-out voices, default aligner: connected within 100 ms "
        f"{share(held.connected_100, held.connected):.1%} (bar 85 %), after a pause within "
        f"200 ms {share(held.paused_200, held.paused):.1%} (bar 95 %)"
    )


if __name__ == "__main__":
    main()
