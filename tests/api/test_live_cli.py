"""`whisperx-api live`: the command against a real app (fake backend) over a real WebSocket."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.audio import DATA
from tests.conftest import fake_app
from tests.fakes import FakeTranscriber
from tests.realtime_client import pcm16, serve_in_thread
from whisperx_api.cli import main
from whisperx_api.client.live import realtime_url
from whisperx_api.config import Settings

KEY = "sk-live-cli"
FAKE_TEXT = "hello from the fake backend says goodbye"


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve_in_thread(fake_app(make_settings(api_key=KEY), FakeTranscriber())) as url:
        yield url.split("/v1/")[0].replace("ws://", "http://")


def test_a_file_is_streamed_and_each_turn_printed(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["live", str(DATA / "conv2.flac"), "--fast", "--server", server, "--api-key", KEY])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) >= 2  # the call has several turns
    assert set(lines) == {FAKE_TEXT}
    assert "\r" not in out  # partials are drawn only on a terminal


def test_stdin_pcm_at_16_khz_is_streamed(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pcm = pcm16(DATA / "en_recorded.flac", 16_000)[: 2 * 16_000 * 5]
    monkeypatch.setattr("sys.stdin", SimpleNamespace(buffer=io.BytesIO(pcm)))
    code = main(["live", "-", "--rate", "16000", "--server", server, "--api-key", KEY])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()
    assert set(out.splitlines()) == {FAKE_TEXT}


def test_a_wrong_key_is_reported_with_the_servers_message(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["live", str(DATA / "conv2.flac"), "--server", server, "--api-key", "sk-no"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "the server refused the session: Incorrect API key provided." in err


def test_an_unreadable_file_fails_clearly(
    server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    code = main(["live", str(bad), "--fast", "--server", server, "--api-key", KEY])
    assert code == 1
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/v1/realtime?intent=transcription"),
        ("https://stt.example/", "wss://stt.example/v1/realtime?intent=transcription"),
    ],
)
def test_the_realtime_url_follows_the_server_url(server: str, url: str) -> None:
    assert realtime_url(server) == url


def test_the_command_is_listed_in_the_cli_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "whisperx_api.cli", "live", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "arecord -f S16_LE -r 24000 -c 1 | whisperx-api live -" in done.stdout
