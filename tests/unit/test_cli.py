"""The command line: one-off transcription with a progress bar, and startup refusals that
name what is wrong."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import srt

import whisperx_api
from tests.audio import DATA

ALL_INTERFACES = "0.0.0.0"  # noqa: S104  (what these tests bind, to be refused)


def run_cli(
    args: list[str],
    env: dict[str, str],
    timeout: float = 300,
    launcher: tuple[str, ...] = ("-m", "whisperx_api.cli"),
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPER", "API_KEY"))}
    return subprocess.run(
        [sys.executable, *launcher, *args],
        env={**clean, "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_transcribe_prints_the_result_and_a_progress_bar(tmp_path: Path) -> None:
    env = {"WHISPER__MODEL": "tiny.en", "WHISPER__CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli(["transcribe", str(DATA / "good_short.mp3"), "--format", "srt"], env)
    assert result.returncode == 0, result.stderr
    cues = list(srt.parse(result.stdout))
    assert cues
    assert "welcome" in " ".join(c.content for c in cues).lower()
    assert "100%" in result.stderr
    assert "[####" in result.stderr


def test_transcribe_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    env = {"WHISPER__MODEL": "tiny.en", "WHISPER__CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli(["transcribe", str(DATA / "bad_not_audio.wav"), "--no-progress"], env)
    assert result.returncode == 2
    assert "not audio" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WHISPER__COMPUTE_TYPE": "bogus"}, "WHISPER__COMPUTE_TYPE"),
        ({"WHISPER_DEVICE": "gpu"}, "WHISPER_DEVICE"),
        ({"MAX_FILE_SIZE": "-5"}, "MAX_FILE_SIZE"),
        ({"ENABLE_AUTHORIZATION": "true"}, "API_KEY"),
        ({"HTTP_WORKER_NUMBER": "4"}, "HTTP_WORKER_NUMBER"),
        ({"BACKENDS__TRANSCRIPTION": "nope"}, "faster-whisper"),
    ],
    ids=[
        "nested name",
        "flat alias",
        "negative size",
        "auth without key",
        "several workers",
        "unknown backend",
    ],
)
def test_serve_refuses_bad_configuration(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    env = {"WHISPER_TMP_FILES": str(tmp_path / "data"), **env}
    result = run_cli(["serve", "--port", "1"], env, timeout=60)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps(["a list"])], ids=["bad json", "not a map"]
)
def test_serve_refuses_a_broken_keys_file(tmp_path: Path, content: str) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(content)
    env = {"WHISPER_TMP_FILES": str(tmp_path / "data"), "API_KEYS_FILE": str(keys)}
    result = run_cli(["serve", "--port", "1"], env, timeout=60)
    assert result.returncode == 2
    assert "API_KEYS_FILE" in result.stderr


@pytest.mark.parametrize("host", [ALL_INTERFACES, "::", "192.0.2.7", "example.com"])
def test_serve_refuses_a_public_bind_without_keys(tmp_path: Path, host: str) -> None:
    env = {"WHISPER_TMP_FILES": str(tmp_path / "data")}
    result = run_cli(["serve", "--host", host, "--port", "1"], env, timeout=60)
    assert result.returncode == 2
    assert f"refusing to listen on {host} without authentication" in result.stderr
    assert "ENABLE_AUTHORIZATION=false" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_public_bind_from_settings_is_refused_too(tmp_path: Path) -> None:
    env = {"WHISPER_TMP_FILES": str(tmp_path / "data"), "WHISPER_API_HOST": ALL_INTERFACES}
    result = run_cli(["serve", "--port", "1"], env, timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in result.stderr


@pytest.mark.parametrize(
    ("host", "env"),
    [
        (ALL_INTERFACES, {"API_KEY": "sk-test"}),
        (ALL_INTERFACES, {"ENABLE_AUTHORIZATION": "false"}),
        ("127.0.0.1", {}),
        ("::1", {}),
        ("localhost", {}),
    ],
    ids=["keyed", "explicitly open", "loopback", "loopback v6", "localhost"],
)
def test_serve_starts_when_keyed_open_on_purpose_or_on_loopback(
    tmp_path: Path, host: str, env: dict[str, str]
) -> None:
    """Past the exposure check, startup goes on to the next refusal (several HTTP workers)."""
    env = {"WHISPER_TMP_FILES": str(tmp_path / "data"), "HTTP_WORKER_NUMBER": "4", **env}
    result = run_cli(["serve", "--host", host, "--port", "1"], env, timeout=60)
    assert result.returncode == 2
    assert "refusing to listen" not in result.stderr
    assert "HTTP_WORKER_NUMBER=4" in result.stderr


WITHOUT_AIOKAFKA = (
    "import sys; sys.modules['aiokafka'] = None; "  # as if the distributed extra were missing
    "from whisperx_api.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker"]])
def test_kafka_mode_without_the_distributed_extra_says_what_to_install(
    tmp_path: Path, command: list[str]
) -> None:
    env = {"MODE": "kafka", "WHISPER_TMP_FILES": str(tmp_path / "data")}
    result = run_cli(command, env, timeout=60, launcher=("-c", WITHOUT_AIOKAFKA))
    assert result.returncode == 2, result.stderr
    assert "pip install 'whisperx-api[distributed]'" in result.stderr
    assert "aiokafka" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_transcribe_redacts_and_replaces(tmp_path: Path) -> None:
    env = {"WHISPER__MODEL": "tiny.en", "WHISPER__CACHE_DIR": str(tmp_path / "cache")}
    args = ["transcribe", str(DATA / "billing_call.flac"), "--format", "srt", "--no-progress"]
    args += ["--redact", "card_number", "--redact", "phone", "--replace", "card number=card no."]
    result = run_cli(args, env)
    assert result.returncode == 0, result.stderr
    shown = " ".join(c.content for c in srt.parse(result.stdout))
    assert "[CARD_NUMBER]" in shown
    assert "card no." in shown.lower()
    assert not re.search(r"\d(?:[\s.,()/-]{0,3}\d){6,}", shown), shown


def test_transcribe_refuses_a_bad_replacement(tmp_path: Path) -> None:
    env = {"WHISPER__MODEL": "tiny.en", "WHISPER__CACHE_DIR": str(tmp_path / "cache")}
    args = ["transcribe", str(DATA / "billing_call.flac"), "--no-progress", "--replace", "a"]
    result = run_cli(args, env)
    assert result.returncode == 2
    assert "FROM=TO" in result.stderr
    result = run_cli([*args[:-1], "...=x"], env)
    assert result.returncode == 2
    assert "no letter or digit" in result.stderr


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exactly one line on stderr, and no traceback."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["transcribe", "nothere.mp3"], "cannot read nothere.mp3"),
        (["transcribe", str(DATA / "en_numbers.flac"), "--language", "english"], "'english'"),
        (["transcribe", str(DATA / "en_numbers.flac"), "--format", "docx"], "'docx'"),
        (["transcribe", str(DATA)], "not a file"),
        (["transcribe", str(DATA / "en_numbers.flac"), "--model", "large-v3"], "cannot be reached"),
        (["transcribe", str(DATA / "en_numbers.flac"), "--model", "no-such"], "Available models"),
        (["transcribe", str(DATA / "en_numbers.flac"), "--format", "diarized_json"], "diarize"),
        (["transcribe", str(DATA / "en_numbers.flac"), "--translate", "--diarize"], "translate"),
        (["serve", "--port", "99999"], "99999 is not a port"),
        (["serve", "--port", "http"], "not a port number"),
        (["jobs"], "jobs needs an action: submit FILE"),
        ([], "COMMAND"),
    ],
)
def test_every_cli_mistake_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    env = {"WHISPER__CACHE_DIR": str(tmp_path / "cache"), "JOBS__DATA_DIR": str(tmp_path)}
    line = one_line_failure(run_cli(args, env, timeout=120))
    assert line.startswith("whisperx-api")
    assert expected in line


def test_a_config_file_in_the_working_directory_is_announced(tmp_path: Path) -> None:
    (tmp_path / "whisper_api.conf").write_text('[whisper]\nmodel = "no-such-model"\n')
    source = str(Path(whisperx_api.__file__).parents[1])  # this checkout, from any directory
    result = subprocess.run(
        [sys.executable, "-m", "whisperx_api.cli", "transcribe", str(DATA / "en_numbers.flac")],
        env={
            **os.environ,
            "PYTHONPATH": source,
            "HF_HUB_OFFLINE": "1",
            "WHISPER__CACHE_DIR": str(tmp_path / "c"),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"whisperx-api: reading settings from {tmp_path / 'whisper_api.conf'}"
    assert result.returncode == 2
    assert "no-such-model" in lines[1]
    assert "Traceback" not in result.stderr


def test_help_texts_describe_each_command() -> None:
    for command in ([], ["worker"], ["transcribe"], ["jobs"], ["serve"]):
        result = run_cli([*command, "--help"], {}, timeout=60)
        assert result.returncode == 0
        description = result.stdout.split("\n\n")[1]
        assert "composition root" not in result.stdout
        assert len(description.split()) >= 8, result.stdout
