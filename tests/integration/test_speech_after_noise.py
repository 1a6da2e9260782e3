"""No words lost at the edge of non-speech, on the real base model: a recording after 20 s of
noise and chords reads as well as the recording alone, and noise and music alone read as nothing.

Before spans after long non-speech were widened, Silero VAD started the recording's first span
0.56 s late and "Please hold" was lost (WER 0.028 against 0.0 alone)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.audio import DATA
from tests.noise_music import RATE, noise_and_music
from tests.wer import normalized_wer
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript, WarningCode
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

pytestmark = pytest.mark.slow

REFERENCE = (DATA / "en_recorded.txt").read_text()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> PipelineRunner:
    catalog = ModelCatalog("base", cache_dir=tmp_path_factory.mktemp("noise-cache"))
    return PipelineRunner(FasterWhisperBackend(catalog, DeviceConfig("cpu")), 600)


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return path


def transcribe(runner: PipelineRunner, path: Path) -> Transcript:
    return runner.run(path, TranscriptionOptions(model="base"), StageContext())


def test_a_recording_after_noise_and_music_keeps_its_first_words(
    runner: PipelineRunner, tmp_path: Path
) -> None:
    recording = decode_audio(DATA / "en_recorded.flac", 600).samples
    after = write_wav(tmp_path / "after.wav", np.concatenate([noise_and_music(20.0), recording]))
    alone = normalized_wer(REFERENCE, transcribe(runner, DATA / "en_recorded.flac").text)
    transcript = transcribe(runner, after)
    assert normalized_wer(REFERENCE, transcript.text) <= alone + 0.03, transcript.text
    assert transcript.text.startswith("Please hold")
    assert transcript.segments[0].start >= 19.0


def test_noise_and_music_alone_read_as_nothing(runner: PipelineRunner, tmp_path: Path) -> None:
    transcript = transcribe(runner, write_wav(tmp_path / "noise.wav", noise_and_music(60.0)))
    assert transcript.text == ""
    assert transcript.segments == ()


def test_what_the_model_writes_over_music_is_removed_and_reported(
    runner: PipelineRunner, tmp_path: Path
) -> None:
    """With the voice detector told to pass nearly everything, base writes "you" over 30 s of
    chords (no-speech probability 0.8, average log probability -1.95); that is removed."""
    music = write_wav(tmp_path / "music.wav", noise_and_music(30.0))
    options = TranscriptionOptions(model="base", vad_threshold=0.01)
    transcript = runner.run(music, options, StageContext())
    assert transcript.text == ""
    removed = [w for w in transcript.warnings if w.code is WarningCode.HALLUCINATION_REMOVED]
    assert len(removed) == 1
    assert 0.0 <= removed[0].start < removed[0].end <= 30.0
    assert "'you" in removed[0].message
