"""The WhisperX command backend against a fake `whisperx` CLI (tests/fake_whisperx.py)."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio import tone_bytes
from tests.conftest import running
from whisperx_api.api.app import create_app
from whisperx_api.config import Settings
from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Task
from whisperx_api.errors import BackendError, ConfigError, InvalidValue, JobCancelled
from whisperx_api.pipeline.registry import default_registry, transcription_backend_name
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.whisperx_cli import (
    CommandConfig,
    WhisperXCommandBackend,
    child_environment,
    parse_result,
)

FAKE = Path(__file__).resolve().parents[1] / "fake_whisperx.py"


def audio(seconds: float = 2.0) -> DecodedAudio:
    t = np.arange(int(seconds * SAMPLE_RATE), dtype=np.float32) / SAMPLE_RATE
    return DecodedAudio((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))


def make_backend(tmp_path: Path, cmd: Path | str = FAKE, **config: Any) -> WhisperXCommandBackend:
    settings = {
        "device": "cpu",
        "output_dir": tmp_path / "out",
        "poll_seconds": 0.05,
        "inherit_env": ("FAKE_WHISPERX_LOG",),
        **config,
    }
    return WhisperXCommandBackend(CommandConfig(cmd=str(cmd), default_model="base", **settings))


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """What the fake CLI was run with, one entry per run."""
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv("FAKE_WHISPERX_LOG", str(log))

    def read() -> list[dict[str, Any]]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return read


def flag(argv: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value`."""
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def leftovers(tmp_path: Path) -> list[Path]:
    out = tmp_path / "out"
    return list(out.iterdir()) if out.exists() else []


def test_flags_reach_the_command(tmp_path: Path, runs: Callable[[], list[dict[str, Any]]]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    backend = make_backend(tmp_path, models_dir=models, device_index=1, batch_size=4, threads=2)
    options = TranscriptionOptions(
        model="large-v3",
        language="fr",
        prompt="--looks like a flag",
        hotwords="Kubernetes, GPU",
        temperature=0.2,
        suppress_numerals=True,
        word_timestamps=False,
        chunk_size=20,
    )
    transcript = backend.transcribe(audio(), options, StageContext())

    [run] = runs()
    argv = run["argv"]
    assert argv[0].endswith(".wav")
    expected = {
        "--model": "large-v3",
        "--output_format": "json",
        "--device": "cpu",
        "--device_index": "1",
        "--compute_type": "int8",
        "--batch_size": "4",
        "--chunk_size": "20",
        "--task": "transcribe",
        "--temperature": "0.2",
        "--temperature_increment_on_fallback": "None",
        "--language": "fr",
        "--initial_prompt": "--looks like a flag",
        "--hotwords": "Kubernetes, GPU",
        "--model_dir": str(models),
        "--threads": "2",
    }
    assert {name: flag(argv, name) for name in expected} == expected
    assert "--suppress_numerals" in argv
    assert "--no_align" in argv
    assert transcript.segments[0].text == "Hello in fr from large-v3."
    assert transcript.words == ()  # --no_align: WhisperX writes no words
    assert leftovers(tmp_path) == []


def test_optional_flags_stay_off_by_default(
    tmp_path: Path, runs: Callable[[], list[dict[str, Any]]]
) -> None:
    backend = make_backend(tmp_path, device="auto")
    options = TranscriptionOptions(model="", task=Task.TRANSLATE)
    backend.transcribe(audio(), options, StageContext())

    argv = runs()[0]["argv"]
    assert flag(argv, "--model") == "base"
    assert flag(argv, "--task") == "translate"
    for absent in ("--language", "--initial_prompt", "--hotwords", "--model_dir", "--threads"):
        assert flag(argv, absent) is None
    # "auto" leaves the device and compute type to the CLI, which knows what torch can see
    assert flag(argv, "--device") is None
    assert flag(argv, "--compute_type") is None
    assert "--suppress_numerals" not in argv
    assert "--no_align" not in argv


def test_per_request_device_overrides_the_default(
    tmp_path: Path, runs: Callable[[], list[dict[str, Any]]]
) -> None:
    backend = make_backend(tmp_path, device="cpu", compute_type="int8_float16")
    options = TranscriptionOptions(model="base", device="cuda", device_index=2)
    backend.transcribe(audio(), options, StageContext())

    argv = runs()[0]["argv"]
    assert (flag(argv, "--device"), flag(argv, "--device_index")) == ("cuda", "2")
    assert flag(argv, "--compute_type") == "int8"


def test_json_becomes_a_transcript(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    progress: list[float] = []
    options = TranscriptionOptions(model="base", language="de")
    transcript = backend.transcribe(audio(2.0), options, StageContext(on_progress=progress.append))

    assert transcript.language == "de"
    assert transcript.duration == pytest.approx(2.0)
    assert transcript.task is Task.TRANSCRIBE
    first, second = transcript.segments
    assert (first.id, first.start, first.end) == (0, 0.0, 1.0)
    assert (second.id, second.start, second.end) == (1, 1.0, 2.0)
    assert transcript.text == "Hello in de from base. It costs 42 euros."
    words = [(w.text, round(w.start, 3), round(w.end, 3)) for w in second.words]
    assert words == [("It", 1.0, 1.2), ("costs", 1.2, 1.5), ("42", 1.5, 1.8), ("euros.", 1.8, 2.0)]
    assert [w.score for w in second.words] == [0.8, 0.7, None, 0.6]
    assert all(w.start <= w.end for w in transcript.words)
    assert progress[0] == 0.0
    assert progress[-1] == 1.0
    assert leftovers(tmp_path) == []


def test_untimed_words_share_the_gap_between_timed_neighbours() -> None:
    data = {
        "segments": [
            {
                "start": 10.0,
                "end": 14.0,
                "text": " 1 2 three 4 5",
                "speaker": "SPEAKER_01",
                "words": [
                    {"word": "1"},
                    {"word": "2"},
                    {"word": "three", "start": 11.0, "end": 12.0, "score": 0.5},
                    {"word": "4", "speaker": "SPEAKER_01"},
                    {"word": "5", "start": None, "end": None},
                ],
            },
            {"text": " no times at all"},
        ]
    }
    options = TranscriptionOptions(model="base", language="en")
    transcript = parse_result(data, options, 20.0)

    first, second = transcript.segments
    times = [(w.text, w.start, w.end) for w in first.words]
    assert times == [
        ("1", 10.0, 10.5),
        ("2", 10.5, 11.0),
        ("three", 11.0, 12.0),
        ("4", 12.0, 13.0),
        ("5", 13.0, 14.0),
    ]
    assert first.speaker == "SPEAKER_01"
    assert first.words[3].speaker == "SPEAKER_01"
    assert (second.start, second.end) == (14.0, 14.0)  # untimed: at its predecessor's end
    assert transcript.language == "en"  # no language in the JSON: the one asked for


@pytest.mark.parametrize(
    "data",
    [[], {"language": "en"}, {"segments": "nope"}, {"segments": [{"words": [{"start": 1}]}]}],
)
def test_unexpected_json_shapes_are_backend_errors(data: Any) -> None:
    with pytest.raises(BackendError):
        parse_result(data, TranscriptionOptions(model="base"), 1.0)


def test_failure_tells_the_client_the_exit_code_and_the_log_the_stderr_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = make_backend(tmp_path)
    with (
        caplog.at_level(logging.ERROR, logger="whisperx_api.pipeline.stages.whisperx_cli"),
        pytest.raises(BackendError) as caught,
    ):
        backend.transcribe(audio(), TranscriptionOptions(model="fail"), StageContext())

    assert caught.value.message == (
        "The transcription command exited with code 3; the server log has the details."
    )
    [record] = caplog.records
    logged = record.getMessage()
    assert "exited with code 3" in logged
    assert "RuntimeError: CUDA out of memory (fake failure)" in logged
    assert "noise line 0:" not in logged  # only the tail
    assert leftovers(tmp_path) == []


def test_the_command_sees_a_minimal_environment(
    tmp_path: Path, runs: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "API_KEY": "sk-server",
        "HF_TOKEN": "hf_server_token",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "SECRETS__KEY": "k" * 40,
        "WEBHOOKS__SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0",
    }
    for name, value in {**secrets, "LC_ALL": "C.UTF-8", "CUDA_VISIBLE_DEVICES": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MY_CMD_SETTING", "kept")
    backend = make_backend(tmp_path, inherit_env=("FAKE_WHISPERX_LOG", "MY_CMD_SETTING"))
    backend.transcribe(audio(), TranscriptionOptions(model="base"), StageContext())

    [run] = runs()
    env = run["env"]
    assert not set(secrets) & set(env)
    assert not any(value in env.values() for value in secrets.values())
    assert env["PATH"].endswith(os.environ["PATH"])  # a pyenv shim may prepend to it
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["MY_CMD_SETTING"] == "kept"


def test_the_environment_filter_keeps_only_what_the_command_needs() -> None:
    source = {"PATH": "/bin", "HOME": "/h", "LC_TIME": "C", "API_KEY": "x", "S3__SECRET": "y"}
    assert child_environment(source, ()) == {"PATH": "/bin", "HOME": "/h", "LC_TIME": "C"}
    assert child_environment(source, ("API_KEY",))["API_KEY"] == "x"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the command")
def test_a_command_past_its_time_limit_is_killed(
    tmp_path: Path, runs: Callable[[], list[dict[str, Any]]]
) -> None:
    backend = make_backend(tmp_path, timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.transcribe(audio(), TranscriptionOptions(model="slow"), StageContext())
    assert time.monotonic() - started < 15  # the fake sleeps 30 s
    assert caught.value.message == (
        "The transcription command did not finish within 1 s and was stopped."
    )
    [run] = runs()
    assert not _alive(run["pid"])
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt", "a\x00b", "'prompt' contains a NUL character"),
        ("hotwords", "x\x00", "'hotwords' contains a NUL character"),
        ("prompt", "w" * 4097, "'prompt' is 4097 characters long"),
        ("model", "base\x00", "'model' contains a NUL character"),
    ],
)
def test_arguments_the_command_cannot_take_are_invalid_values(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    backend = make_backend(tmp_path)
    options = TranscriptionOptions(**{"model": "base", field: value})
    with pytest.raises(InvalidValue, match=message) as caught:
        backend.check_options(options)
    assert caught.value.param == field
    with pytest.raises(InvalidValue):  # a job that reached a worker unchecked fails at once
        backend.transcribe(audio(), options, StageContext())
    assert leftovers(tmp_path) == []


def test_missing_json_is_a_backend_error(tmp_path: Path) -> None:
    silent = script(tmp_path / "silent.sh", "#!/bin/sh\nexit 0\n")
    backend = make_backend(tmp_path, silent)
    with pytest.raises(BackendError, match="wrote no JSON"):
        backend.transcribe(audio(), TranscriptionOptions(model="base"), StageContext())
    assert leftovers(tmp_path) == []


def test_unparseable_json_is_a_backend_error(tmp_path: Path) -> None:
    garbage = script(
        tmp_path / "garbage.py",
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        "out = sys.argv[sys.argv.index('--output_dir') + 1]\n"
        "pathlib.Path(out, 'audio.json').write_text('{not json')\n",
    )
    backend = make_backend(tmp_path, garbage)
    with pytest.raises(BackendError, match="not valid JSON"):
        backend.transcribe(audio(), TranscriptionOptions(model="base"), StageContext())
    assert leftovers(tmp_path) == []


def test_a_command_that_cannot_start_is_a_backend_error(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, tmp_path / "no-such-whisperx.sh")
    with pytest.raises(BackendError, match="could not be started"):
        backend.transcribe(audio(), TranscriptionOptions(model="base"), StageContext())
    assert leftovers(tmp_path) == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the grandchild")
def test_cancellation_kills_the_wrapper_and_its_child(
    tmp_path: Path, runs: Callable[[], list[dict[str, Any]]]
) -> None:
    # like a typical whisperx.sh: a shell wrapper that runs whisperx as its child (no exec)
    wrapper = script(tmp_path / "whisperx.sh", f'#!/bin/sh\n"{FAKE}" "$@"\nexit $?\n')
    backend = make_backend(tmp_path, wrapper)
    cancel = threading.Event()
    threading.Timer(0.7, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        backend.transcribe(
            audio(), TranscriptionOptions(model="slow"), StageContext(is_cancelled=cancel.is_set)
        )
    assert time.monotonic() - started < 5

    [run] = runs()
    deadline = time.monotonic() + 3
    while _alive(run["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(run["pid"])
    assert leftovers(tmp_path) == []


def test_model_names_and_lifecycle(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "my-finetune").mkdir(parents=True)
    (models / "my-finetune" / "model.bin").write_bytes(b"")
    (models / "models--Systran--faster-whisper-large-v3").mkdir()
    (models / "not-a-model").mkdir()
    backend = make_backend(tmp_path, models_dir=models)

    assert backend.available_models() == ["base", "large-v3", "my-finetune"]
    assert backend.resolve_model("whisper-1") == "base"
    assert backend.resolve_model(" ") == "base"
    assert backend.resolve_model("anything-the-cli-knows") == "anything-the-cli-knows"
    assert backend.load_model("whisper-1") == "base"
    assert backend.unload_model("base") == "base"
    assert backend.loaded_models() == []

    wav, out = tmp_path / "a.wav", tmp_path / "o"
    finetune = backend.command_line(wav, out, "my-finetune", TranscriptionOptions(model="x"))
    assert flag(finetune, "--model") == str(models / "my-finetune")
    hub = backend.command_line(wav, out, "large-v3", TranscriptionOptions(model="x"))
    assert flag(hub, "--model") == "large-v3"

    assert backend.load_count("base") == 0
    backend.transcribe(audio(), TranscriptionOptions(model="whisper-1"), StageContext())
    backend.transcribe(audio(), TranscriptionOptions(model="base"), StageContext())
    assert backend.load_count("base") == 2
    assert backend.loaded_models() == []


def test_whisper_cmd_picks_the_command_backend(make_settings: Callable[..., Settings]) -> None:
    plain = make_settings()
    with_cmd = make_settings(whisper={"cmd": str(FAKE)})
    chosen = make_settings(whisper={"cmd": str(FAKE)}, backends={"transcription": "other"})
    assert transcription_backend_name(plain) == "faster-whisper"
    assert transcription_backend_name(with_cmd) == "whisperx-cli"
    assert transcription_backend_name(chosen) == "other"

    backend = default_registry().transcription("whisperx-cli")(with_cmd)
    assert isinstance(backend, WhisperXCommandBackend)
    with pytest.raises(ConfigError, match="WHISPER_CMD"):
        default_registry().transcription("whisperx-cli")(plain)


@pytest.mark.anyio
async def test_job_api_runs_the_command(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    out = tmp_path / "whisperx-out"
    settings = make_settings(whisper={"cmd": str(FAKE), "output_dir": out, "model": "base"})
    async with running(create_app(settings)) as client:
        response = await client.post(
            "/transcription",
            files={"file": ("meeting.wav", tone_bytes(tmp_path, 2.0))},
            data={"sync": "true", "response_format": "json", "language": "fr", "model": "small"},
        )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "text": "Hello in fr from small. It costs 42 euros.",
        "language": "fr",
        "segments": [
            {"start": 0.0, "end": 1.0, "text": "Hello in fr from small.", "language": "fr"},
            {"start": 1.0, "end": 2.0, "text": "It costs 42 euros.", "language": "fr"},
        ],
    }
    assert list(out.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"prompt": "hello\x00world"}, "prompt"),
        ({"prompt": "w" * 5000}, "prompt"),
    ],
)
async def test_the_job_api_refuses_arguments_the_command_cannot_take(
    make_settings: Callable[..., Settings], tmp_path: Path, data: dict[str, str], param: str
) -> None:
    settings = make_settings(whisper={"cmd": str(FAKE), "output_dir": tmp_path / "out"})
    async with running(create_app(settings)) as client:
        response = await client.post(
            "/transcription",
            files={"file": ("meeting.wav", tone_bytes(tmp_path, 1.0))},
            data={"sync": "false", **data},
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "invalid_value",
            param,
        )
        status = (await client.get("/status")).json()
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []
    assert status["queue_state"] == {"queued_jobs": 0, "processing_jobs": 0}
