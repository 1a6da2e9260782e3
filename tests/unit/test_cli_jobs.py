"""`whisperx-api jobs ...`: the client's exit-code mapping against `httpx.MockTransport`, then
the real command line against a real server process running tiny.en."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import srt

from tests.audio import DATA
from tests.server import ServerProcess, free_port, serving
from whisperx_api.client.commands import Streams, add_jobs_parser, describe, run_jobs
from whisperx_api.client.jobs import JobsClient, SubmitOptions

JOB = "0b7c2a5e-0000-4000-8000-000000000001"
KEY = "sk-cli"
Route = Callable[[httpx.Request], httpx.Response]


def envelope(message: str, status: int) -> httpx.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return httpx.Response(status, json={"error": error})


class Cli:
    """The `jobs` subcommands wired to a mock server; records requests and output."""

    def __init__(self, route: Route, api_key: str | None = KEY) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        parser = argparse.ArgumentParser()
        add_jobs_parser(
            parser.add_subparsers(dest="command"), server="http://jobs", api_key=api_key
        )
        self.parser = parser
        self.out = io.BytesIO()
        self.err = io.StringIO()

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.route(request)

    def connect(self, server: str, api_key: str | None) -> JobsClient:
        transport = httpx.MockTransport(self.handle)
        return JobsClient(server, api_key, transport=transport, sleep=self.sleeps.append)

    def __call__(self, *argv: str) -> int:
        args = self.parser.parse_args(["jobs", *argv])
        return run_jobs(args, Streams(self.out, self.err), self.connect)


def statuses(*bodies: dict[str, object], result: bytes = b"1\n") -> Route:
    """A server whose job goes through `bodies` on successive polls, then serves `result`."""
    polls = iter(bodies)

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"job_id": JOB, "status_url": f"/transcription/{JOB}"})
        if request.url.path.endswith("/result"):
            return httpx.Response(200, content=result, headers={"content-type": "text/plain"})
        return httpx.Response(200, json={"job_id": JOB, **next(polls)})

    return route


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.mp3"
    path.write_bytes(b"ID3 not really audio" * 1000)
    return path


# Fast: the client and the exit-code mapping.


def test_submit_streams_a_multipart_upload_and_prints_only_the_id(audio: Path) -> None:
    cli = Cli(statuses())
    hook = "https://hooks.example/x"
    code = cli(
        "submit",
        str(audio),
        "--format",
        "srt",
        "--language",
        "en",
        "--prompt",
        "hi",
        "--webhook-url",
        hook,
    )
    assert code == 0
    assert cli.out.getvalue() == f"{JOB}\n".encode()
    request = cli.requests[0]
    assert request.url == "http://jobs/transcription"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert audio.read_bytes() in body
    sent = [
        ("response_format", "srt"),
        ("language", "en"),
        ("sync", "false"),
        ("webhook_url", hook),
    ]
    for name, value in sent:
        assert f'name="{name}"\r\n\r\n{value}\r\n'.encode() in body
    assert b'name="model"' not in body


def test_no_key_sends_no_authorization_header(audio: Path) -> None:
    cli = Cli(statuses(), api_key=None)
    assert cli("submit", str(audio)) == 0
    assert "authorization" not in cli.requests[0].headers


def test_submit_options_only_send_what_was_given() -> None:
    assert SubmitOptions().form() == {"sync": "false"}
    assert SubmitOptions(model="tiny.en").form() == {"sync": "false", "model": "tiny.en"}
    assert SubmitOptions(webhook_url="https://h.example/x").form() == {
        "sync": "false",
        "webhook_url": "https://h.example/x",
    }


def test_wait_reports_progress_on_stderr_and_prints_the_result(audio: Path) -> None:
    cli = Cli(
        statuses(
            {"status": "Queued", "queue_position": 2},
            {"status": "Queued", "queue_position": 2},
            {"status": "Processing", "progress": 0.4},
            {"status": "Completed"},
            result=b"caf\xc3\xa9\r\n",
        )
    )
    assert cli("submit", str(audio), "--wait", "--poll-interval", "0.25") == 0
    assert cli.out.getvalue() == b"caf\xc3\xa9\r\n"
    lines = cli.err.getvalue().splitlines()
    assert lines == [
        f"whisperx-api: job {JOB} submitted",
        f"job {JOB}: Queued (position 2)",
        f"job {JOB}: Processing 40%",
        f"job {JOB}: Completed",
    ]
    assert cli.sleeps == [0.25, 0.25, 0.25]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "Failed", "error": "Audio file is corrupt."}, "failed: Audio file is corrupt."),
        ({"status": "Cancelled"}, "was cancelled"),
    ],
)
def test_wait_on_an_unsuccessful_job_exits_1(
    audio: Path, body: dict[str, object], message: str
) -> None:
    cli = Cli(statuses({"status": "Processing", "progress": 0.0}, body))
    assert cli("submit", str(audio), "--wait") == 1
    assert cli.out.getvalue() == b""
    assert message in cli.err.getvalue()
    assert not any(r.url.path.endswith("/result") for r in cli.requests)


@pytest.mark.parametrize(
    ("status", "code"), [(400, 1), (401, 1), (404, 4), (409, 3), (413, 1), (500, 1), (503, 1)]
)
def test_http_errors_print_the_servers_message_and_map_to_exit_codes(
    status: int, code: int
) -> None:
    cli = Cli(lambda _: envelope(f"message for {status}", status))
    assert cli("status", JOB) == code
    assert cli.out.getvalue() == b""
    assert cli.err.getvalue() == f"whisperx-api: message for {status} (HTTP {status})\n"


def test_a_non_json_error_body_is_shown_as_text() -> None:
    cli = Cli(lambda _: httpx.Response(502, text="Bad Gateway from proxy"))
    assert cli("cancel", JOB) == 1
    assert "Bad Gateway from proxy (HTTP 502)" in cli.err.getvalue()


def test_unreachable_server_exits_2_naming_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    cli = Cli(refuse)
    assert cli("status", JOB) == 2
    assert "cannot reach server at http://jobs" in cli.err.getvalue()


def test_a_dropped_connection_exits_2() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    cli = Cli(drop)
    assert cli("status", JOB) == 2
    assert "connection to http://jobs failed" in cli.err.getvalue()


def test_status_and_cancel_print_the_json() -> None:
    cancelled = {"success": True, "message": "Job canceled successfully"}

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200, json=cancelled)
        return httpx.Response(200, json={"job_id": JOB, "status": "Queued", "queue_position": 1})

    cli = Cli(route)
    assert cli("status", JOB) == 0
    assert cli("cancel", JOB) == 0
    first, second = cli.out.getvalue().decode().splitlines()
    assert json.loads(first)["queue_position"] == 1
    assert json.loads(second) == cancelled
    assert [r.method for r in cli.requests] == ["GET", "DELETE"]
    assert cli.requests[1].url.path == f"/transcription/{JOB}"


def test_result_to_a_file_writes_bytes_as_received(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 100
    cli = Cli(statuses(result=payload))
    target = tmp_path / "out.bin"
    assert cli("result", JOB, "--output", str(target)) == 0
    assert target.read_bytes() == payload
    assert cli.out.getvalue() == b""
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_result_not_ready_exits_3_and_leaves_the_file_alone(tmp_path: Path) -> None:
    cli = Cli(lambda _: envelope(f"Job '{JOB}' is processing; the result is not ready.", 409))
    target = tmp_path / "out.srt"
    target.write_text("previous")
    assert cli("result", JOB, "-o", str(target)) == 3
    assert "the result is not ready" in cli.err.getvalue()
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.srt"]


def test_result_to_an_unwritable_place_exits_2_before_fetching(tmp_path: Path) -> None:
    cli = Cli(statuses())
    assert cli("result", JOB, "-o", str(tmp_path / "missing" / "out.srt")) == 2
    assert "cannot write" in cli.err.getvalue()
    assert cli.requests == []


def test_submit_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    cli = Cli(statuses())
    assert cli("submit", str(tmp_path / "nope.mp3")) == 2
    assert "cannot read" in cli.err.getvalue()
    assert cli.requests == []


def test_poll_interval_must_be_positive(audio: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        Cli(statuses())("submit", str(audio), "--poll-interval", "0")
    assert exit_info.value.code == 2


def test_describe() -> None:
    assert describe({"status": "Queued", "queue_position": 3}) == "Queued (position 3)"
    assert describe({"status": "Processing", "progress": 0.999}) == "Processing 99%"
    assert describe({"status": "Completed", "attempts": 1}) == "Completed"


# Slow: the real command line against a real server.


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("jobs-cli")
    env = {
        "WHISPER_TMP_FILES": str(tmp / "data"),
        "WHISPER__CACHE_DIR": str(tmp / "cache"),
        "WHISPER__MODEL": "tiny.en",
        "API_KEY": KEY,
    }
    with serving(env, tmp / "server.log") as running:
        yield running


def jobs_cli(
    *argv: str, server: str, api_key: str | None = KEY, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """`python -m whisperx_api.cli jobs ...` with the server and key from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHISPERX_API_")}
    env["WHISPERX_API_URL"] = server
    if api_key is not None:
        env["WHISPERX_API_KEY"] = api_key
    command = [sys.executable, "-m", "whisperx_api.cli", "jobs", *argv]
    return subprocess.run(command, env=env, capture_output=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_submit_and_wait_prints_a_parseable_srt(server: ServerProcess) -> None:
    done = jobs_cli(
        "submit",
        str(DATA / "good_short.mp3"),
        "--format",
        "srt",
        "--wait",
        "--poll-interval",
        "0.2",
        server=server.base_url,
    )
    assert done.returncode == 0, done.stderr.decode()
    subtitles = list(srt.parse(done.stdout.decode()))
    assert subtitles
    assert "welcome" in " ".join(s.content for s in subtitles).lower()
    assert b"Completed" in done.stderr


@pytest.mark.slow
def test_submit_poll_status_fetch_once(server: ServerProcess, tmp_path: Path) -> None:
    audio = str(DATA / "good_short.mp3")
    submitted = jobs_cli("submit", audio, "--format", "json", server=server.base_url)
    assert submitted.returncode == 0, submitted.stderr.decode()
    job_id = submitted.stdout.decode().strip()
    assert len(job_id.splitlines()) == 1
    status = poll_until_completed(job_id, server.base_url)
    assert status["job_id"] == job_id
    target = tmp_path / "result.json"
    fetched = jobs_cli("result", job_id, "--output", str(target), server=server.base_url)
    assert fetched.returncode == 0, fetched.stderr.decode()
    assert fetched.stdout == b""
    assert "welcome" in json.loads(target.read_text())["text"].lower()
    again = jobs_cli("result", job_id, server=server.base_url)
    assert again.returncode == 4
    assert job_id.encode() in again.stderr


def poll_until_completed(job_id: str, server: str, deadline_s: float = 240) -> dict[str, object]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        done = jobs_cli("status", job_id, server=server)
        assert done.returncode == 0, done.stderr.decode()
        status: dict[str, object] = json.loads(done.stdout)
        assert status["status"] in {"Queued", "Processing", "Completed"}, status
        if status["status"] == "Completed":
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not complete in {deadline_s} s")


@pytest.mark.slow
def test_a_wrong_key_is_refused_with_the_servers_message(server: ServerProcess) -> None:
    done = jobs_cli("status", JOB, server=server.base_url, api_key="sk-wrong")
    assert done.returncode == 1
    assert b"Incorrect API key" in done.stderr
    assert done.stdout == b""


@pytest.mark.slow
def test_an_unknown_job_exits_4(server: ServerProcess) -> None:
    done = jobs_cli("cancel", JOB, server=server.base_url)
    assert done.returncode == 4
    assert JOB.encode() in done.stderr


@pytest.mark.slow
def test_an_unreachable_server_exits_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = jobs_cli("submit", str(DATA / "good_short.mp3"), server=url, timeout=60)
    assert done.returncode == 2
    assert f"cannot reach server at {url}".encode() in done.stderr
