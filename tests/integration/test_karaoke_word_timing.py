"""Word times good enough for karaoke, on fluent speech whose word starts are exact.

The fixtures (`tests/data/make_karaoke.py`) are phrases spoken whole by espeak-ng in eight
English voices at 110-230 wpm and in German, French, Spanish (two), Italian and Dutch, joined
with pauses; espeak-ng's word events give every word's true start. With Whisper base on CPU, the
default aligner must put at least 85 % of the word starts in connected speech within 100 ms of
the truth, and at least 95 % of the word starts after a pause within 200 ms.
`bench/word_timing.py` prints the same figures per fixture, with faster-whisper alone and the
pause-only refiner for comparison, and apart from them the figures on held-out voices and rates
(`karaoke_heldout_*`), which no test holds so that nothing is ever tuned on them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.karaoke import StartScore, describe, load_fixtures, score_starts, total
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.boundary_refiner import EnergyAligner
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

CONNECTED_WITHIN_100MS = 0.85
AFTER_PAUSE_WITHIN_200MS = 0.95


@pytest.mark.slow
def test_default_aligner_word_starts_meet_the_karaoke_bar(tmp_path: Path) -> None:
    backend = FasterWhisperBackend(ModelCatalog("base", cache_dir=tmp_path), DeviceConfig("cpu"))
    aligner = EnergyAligner()
    scores: list[StartScore] = []
    for fixture in load_fixtures():
        audio = decode_audio(fixture.path, 600)
        options = TranscriptionOptions(
            model="base", word_timestamps=True, language=fixture.language
        )
        raw = backend.transcribe(audio, options, StageContext())
        words = aligner.align(raw, audio, StageContext()).words
        scores.append(score_starts(fixture.words, [(w.text, w.start, w.end) for w in words]))
        print(f"\n{fixture.name}: {describe(scores[-1])}", end="")
    backend.close()

    overall = total(scores)
    print(f"\nall: {describe(overall)}")
    # Enough words recognised for the shares to mean something.
    assert overall.connected >= 300
    assert overall.paused >= 80
    assert overall.connected_100 / overall.connected >= CONNECTED_WITHIN_100MS
    assert overall.paused_200 / overall.paused >= AFTER_PAUSE_WITHIN_200MS
