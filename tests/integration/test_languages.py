"""Speech in several languages in one file, on the real base model: no sentence is dropped for
its language, and with `languages[]` each sentence is read in its own.

`languages.flac`: eight espeak-ng sentences alternating English, German, French and Spanish with
0.9 s pauses (`make_languages.py`). Before per-piece detection the whole file was one chunk
decoded in English, and the transcript held two of the eight sentences."""

from __future__ import annotations

import json
import re
from typing import Any

import jiwer
import pytest

from tests.audio import DATA
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Transcript, TranscriptWarning, WarningCode
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

pytestmark = pytest.mark.slow

SENTENCES: list[dict[str, Any]] = json.loads((DATA / "languages.json").read_text())["sentences"]
CANDIDATES = ("en", "de", "fr", "es")


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperBackend:
    catalog = ModelCatalog("base", cache_dir=tmp_path_factory.mktemp("languages-cache"))
    return FasterWhisperBackend(catalog, DeviceConfig("cpu"))


def transcribe(backend: FasterWhisperBackend, **options: Any) -> Transcript:
    runner = PipelineRunner(backend, max_audio_seconds=600)
    chosen = TranscriptionOptions(model="base", **options)
    return runner.run(DATA / "languages.flac", chosen, StageContext())


def heard(transcript: Transcript, sentence: dict[str, Any]) -> list[Segment]:
    """The segments that overlap the sentence's time."""
    return [
        s for s in transcript.segments if s.start < sentence["end"] and s.end > sentence["start"]
    ]


def words(text: str) -> str:
    """Lower case, punctuation gone: a WER that suits every language here."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def wer(reference: str, segments: list[Segment]) -> float:
    hypothesis = words(" ".join(s.text for s in segments))
    return float(jiwer.wer(words(reference), hypothesis)) if hypothesis else 1.0


def switches(transcript: Transcript) -> list[TranscriptWarning]:
    return [w for w in transcript.warnings if w.code is WarningCode.LANGUAGE_SWITCH]


def test_without_a_language_every_sentence_has_text(backend: FasterWhisperBackend) -> None:
    transcript = transcribe(backend)
    for sentence in SENTENCES:
        assert words(" ".join(s.text for s in heard(transcript, sentence))), sentence
    assert all(segment.language for segment in transcript.segments)
    # English was decoded longest, and the other languages it found are reported.
    assert transcript.language == "en"
    found = switches(transcript)
    assert found
    assert all(
        any(s.language != "en" and w.start <= s.start < w.end for s in transcript.segments)
        for w in found
    )


def test_with_candidates_each_sentence_is_read_in_its_own_language(
    backend: FasterWhisperBackend,
) -> None:
    transcript = transcribe(backend, languages=CANDIDATES)
    right = 0
    for sentence in SENTENCES:
        segments = heard(transcript, sentence)
        assert segments, sentence
        assert {s.language for s in segments} <= set(CANDIDATES)
        right += all(s.language == sentence["language"] for s in segments)
        assert wer(sentence["text"], segments) <= 0.5, (sentence, [s.text for s in segments])
    assert right >= 7
    spoken = {s.language for s in transcript.segments}
    assert spoken == set(CANDIDATES)
    assert switches(transcript)
    assert {w.code for w in transcript.warnings} <= {
        WarningCode.LANGUAGE_SWITCH,
        WarningCode.LOW_CONFIDENCE,
    }


def test_a_single_candidate_is_a_fixed_language(backend: FasterWhisperBackend) -> None:
    transcript = transcribe(backend, languages=("en",))
    assert {s.language for s in transcript.segments} == {"en"}
    assert switches(transcript) == []
    assert transcript.language_probability == 1.0


def test_one_language_files_are_not_cut_apart(backend: FasterWhisperBackend) -> None:
    """A file in one language reads as it throughout, with no switch reported."""
    runner = PipelineRunner(backend, max_audio_seconds=600)
    for name, language in (("en_recorded.flac", "en"), ("fr_espeak.flac", "fr")):
        transcript = runner.run(DATA / name, TranscriptionOptions(model="base"), StageContext())
        assert transcript.language == language
        assert {s.language for s in transcript.segments} == {language}
        assert switches(transcript) == []
