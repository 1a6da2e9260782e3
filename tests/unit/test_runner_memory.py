"""Every job ends by handing freed memory back to the OS, whether it succeeded or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio import tone_wav
from tests.fakes import FakeTranscriber
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import InvalidAudio
from whisperx_api.pipeline import runner as runner_module
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext


def test_memory_is_released_after_each_job_even_a_failed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[bool] = []
    monkeypatch.setattr(runner_module, "release_memory", lambda full=True: released.append(full))
    runner = PipelineRunner(FakeTranscriber(), max_audio_seconds=600)
    options = TranscriptionOptions(model="base")
    transcript = runner.run(tone_wav(tmp_path / "tone.wav", 2.0), options, StageContext())
    assert transcript.duration == pytest.approx(2.0)
    assert released == [False]  # the young generations only: a job's garbage is young
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidAudio):
        runner.run(empty, options, StageContext())
    assert released == [False, False]
