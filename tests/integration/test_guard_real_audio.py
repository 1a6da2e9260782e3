"""The guard on the real base model and real audio: a decoder loop cut to one copy, text written
over static that the voice detector heard no speech in removed, whispered speech it barely heard
kept and reported.

Each case runs twice where it matters: once with a segment guard that keeps everything (what the
decoder itself wrote), once as served, rendered as the `verbose_json` a caller gets."""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio import DATA, RATE
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Transcript, TranscriptWarning, WarningCode
from whisperx_api.formatters.openai_json import verbose_payload
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.guard import LOW_LOGPROB, MIN_SPEECH_SHARE, NO_SPEECH, loop_span
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend
from whisperx_api.pipeline.stages.vad_probs import speech_probabilities, speech_share

pytestmark = pytest.mark.slow

LOOP = DATA / "loop.flac"  # a recorded prompt, then 10 s of two talkers played backwards
SENTENCE = "thank you please hold while i attempt to connect you with your party"
WHISPERED = DATA / "whispered.flac"
WHISPERED_TEXT = "the weather was warm and sunny so we had lunch in the park"


def keep_everything(
    segment: Segment, language: str, speech_share: float | None
) -> tuple[Segment | None, list[TranscriptWarning]]:
    return segment, []


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> ModelCatalog:
    return ModelCatalog("base", cache_dir=tmp_path_factory.mktemp("guard-cache"))


@pytest.fixture(scope="module")
def served(catalog: ModelCatalog) -> PipelineRunner:
    return PipelineRunner(FasterWhisperBackend(catalog, DeviceConfig("cpu")), 600)


@pytest.fixture(scope="module")
def unguarded(catalog: ModelCatalog) -> PipelineRunner:
    backend = FasterWhisperBackend(catalog, DeviceConfig("cpu"), segment_guard=keep_everything)
    return PipelineRunner(backend, 600)


def plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def transcribe(runner: PipelineRunner, path: Path, **options: Any) -> Transcript:
    return runner.run(path, TranscriptionOptions(model="base", **options), StageContext())


def codes(body: dict[str, Any], code: WarningCode) -> list[dict[str, Any]]:
    return [w for w in body["warnings"] if w["code"] == code.value]


def test_a_decoder_loop_over_murmur_becomes_one_copy_and_a_warning(
    served: PipelineRunner, unguarded: PipelineRunner
) -> None:
    raw = plain(transcribe(unguarded, LOOP).text)
    assert raw.startswith(SENTENCE), raw
    tokens = raw[len(SENTENCE) :].split()
    found = loop_span(tokens)
    assert found is not None, raw
    start, size, copies = found
    phrase = " ".join(tokens[start : start + size])
    # The murmur holds no words; the decoder wrote one phrase over it again and again.
    assert copies >= 4, raw
    assert raw.count(phrase) == copies

    body = verbose_payload(transcribe(served, LOOP))
    text = plain(body["text"])
    assert text.startswith(SENTENCE), text
    assert text.count(phrase) == 1, text
    assert sum(plain(s["text"]).count(phrase) for s in body["segments"]) == 1
    assert plain(" ".join(w["word"] for w in body["words"])).count(phrase) == 1
    (removed,) = codes(body, WarningCode.REPETITION_REMOVED)
    assert f"({(copies - 1) * size} words removed)" in removed["message"]
    assert 3.8 < removed["start"] < removed["end"] <= body["duration"] + 0.5


def static(path: Path, seconds: float = 20.0, seed: int = 1) -> Path:
    """Hiss with no speech at all (white noise at about -14 dBFS RMS), as 16-bit WAV."""
    hiss = 0.2 * np.random.default_rng(seed).standard_normal(round(seconds * RATE))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(hiss, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return path


def test_text_over_static_the_voice_detector_heard_no_speech_in_is_removed(
    served: PipelineRunner, unguarded: PipelineRunner, tmp_path: Path
) -> None:
    """A caller who opens the voice detector wide (to catch quiet speech) lets static through;
    base writes "1 cm x 2 cm x 2 cm ..." over it with an average log probability over -1, so
    Whisper's own rule alone would keep it. Silero heard no speech there, and the decoder's
    no-speech probability agrees: two of the three signals, so it goes."""
    hiss = static(tmp_path / "static.wav")
    raw = transcribe(unguarded, hiss, vad_threshold=0.01)
    assert raw.text, "base wrote nothing over the static"
    samples = decode_audio(hiss, 600).samples
    probabilities = speech_probabilities(samples)
    spared = [s for s in raw.segments if s.avg_logprob >= LOW_LOGPROB]
    assert spared, [(s.text, s.avg_logprob) for s in raw.segments]
    for segment in raw.segments:
        assert speech_share(probabilities, segment.start, segment.end) < MIN_SPEECH_SHARE

    body = verbose_payload(transcribe(served, hiss, vad_threshold=0.01))
    assert body["text"] == ""
    assert body["segments"] == []
    removed = codes(body, WarningCode.HALLUCINATION_REMOVED)
    assert removed
    assert all(0.0 <= w["start"] < w["end"] <= 20.5 for w in removed)
    assert any("cm" in w["message"] for w in removed)


def test_whispered_speech_the_voice_detector_barely_heard_is_kept_and_reported(
    served: PipelineRunner,
) -> None:
    """Silero gives almost none of a whispered sentence a speech probability of 0.5; base reads
    it word for word and confidently. Removing text on the voice detector's word alone would
    lose it, so it stays, with a `low_confidence` warning over it."""
    samples = decode_audio(WHISPERED, 600).samples
    assert speech_share(speech_probabilities(samples), 0.0, len(samples) / RATE) < 0.1

    transcript = transcribe(served, WHISPERED, vad_threshold=0.01)
    body = verbose_payload(transcript)
    assert plain(body["text"]) == WHISPERED_TEXT
    assert all(s.no_speech_prob <= NO_SPEECH for s in transcript.segments)
    assert codes(body, WarningCode.HALLUCINATION_REMOVED) == []
    (flagged,) = [
        w for w in codes(body, WarningCode.LOW_CONFIDENCE) if "voice detector" in w["message"]
    ]
    assert flagged["start"] < 0.5
    assert flagged["end"] > body["segments"][-1]["end"] - 0.5
