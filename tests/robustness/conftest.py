"""The robustness suite: abuse a real server from outside and check it answers exactly.

What it covers (docs/development.md sums it up for readers of the repository):

- **Black-box abuse** through real `whisperx-api serve` processes: every form field of the
  OpenAI endpoints and the job API with wrong types, out-of-range and huge values, unknown enum
  values, repeated fields, NUL bytes, very long strings and unicode tricks; malformed multipart
  bodies; job API misuse (unknown or malformed ids, cancel twice, fetch twice, fetch too early);
  kill -9 in the middle of a job. Each case asserts the exact answer: the HTTP status, the error
  envelope's `type`, `code` and `param`, and that nothing was lost (every accepted job delivers
  its result exactly once) or left behind (no job directory, no temp file).
- **Schema-driven fuzzing** (`test_schema_fuzz.py`): schemathesis generates requests for every
  operation of `/openapi.json`; no answer may be a 5xx, and every error is OpenAI's envelope.
- **A crash loop** (`test_crash_loop.py`): 20 random kill -9 of an embedded server during a
  stream of async jobs; every accepted job completes and is fetched exactly once, and the data
  and temp directories end empty.

The servers here are real processes on loopback with a real SQLite store. Two backends serve:
the bundled `tiny.en` model (real inference, for requests that pass validation) and the fake
WhisperX command line (`tests/fake_whisperx.py`, for job-lifecycle cases that need many quick
jobs, or one held in `Processing`: the model name `slow` makes it sleep 30 s). Each server gets
its own data directory and its own `TMPDIR`, so "nothing left behind" is checked on directories
nobody else writes to. Every wait is a bounded poll on a state, never a fixed sleep.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.job_client import wait_for
from tests.server import ServerProcess, start_server, stop_server

KEY = "sk-robust"
FAKE_CLI = Path(__file__).resolve().parents[1] / "fake_whisperx.py"
MAX_FILE_SIZE = 2_000_000  # small, so a body over the limit is cheap to send
JOB_SECONDS = 120  # generous bound for one wait on job work on a loaded 2-core machine
POLL = 0.05
# onnxruntime (the VAD's runtime) keeps one session id file in TMPDIR per machine, not per request.
LIBRARY_STATE = frozenset({".ses"})


@dataclass
class Deployment:
    """A data directory, a temp directory and the settings of the servers that run on them.

    Servers come and go (`start`, `kill`); the directories stay, so a restarted server finds
    the jobs the previous one accepted.
    """

    env: dict[str, str]
    data: Path
    tmp: Path
    log: Path
    servers: list[ServerProcess] = field(default_factory=list)

    @property
    def server(self) -> ServerProcess:
        return self.servers[-1]

    def start(self) -> ServerProcess:
        self.servers.append(start_server(self.env, self.log))
        return self.server

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        self.server.process.kill()
        self.server.process.wait()

    def stop(self) -> None:
        for server in self.servers:
            stop_server(server)

    def client(self, key: str = KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.server.base_url, headers=headers, timeout=JOB_SECONDS)

    def job_dirs(self) -> list[str]:
        """Job directories on disk (audio waiting for a worker, or a result not yet fetched)."""
        jobs = self.data / "jobs"
        return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []

    def temp_files(self) -> list[str]:
        """Whatever the server left in its TMPDIR (spooled uploads, command work dirs)."""
        found = (str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*"))
        return sorted(name for name in found if name not in LIBRARY_STATE)

    def assert_nothing_left(self) -> None:
        """No job directory, no temp file, no queued or processing job."""
        assert self.job_dirs() == [], self.job_dirs()
        assert self.temp_files() == [], self.temp_files()
        with self.client() as client:
            state = client.get("/status").json()["queue_state"]
        assert state == {"queued_jobs": 0, "processing_jobs": 0}, state


def make_deployment(root: Path, cache: Path, **settings: str) -> Deployment:
    """Settings for servers on fresh directories under `root`, keyed with `KEY`."""
    data, tmp = root / "data", root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(data),
        "WHISPER__CACHE_DIR": str(cache),
        "WHISPER__MODEL": "tiny.en",
        "LIMITS__MAX_FILE_SIZE": str(MAX_FILE_SIZE),
        "JOBS__SHUTDOWN_GRACE_SECONDS": "1",
        "TMPDIR": str(tmp),
        **settings,
    }
    return Deployment(env, data, tmp, root / "server.log")


def cli_settings(**overrides: str) -> dict[str, str]:
    """The fake WhisperX command as the transcription backend: jobs take a fraction of a second,
    and the model `slow` holds one in Processing for 30 s."""
    return {"WHISPER__CMD": f"{sys.executable} {FAKE_CLI}", "JOBS__MAX_ATTEMPTS": "3", **overrides}


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the whole suite: the bundled model is assembled once."""
    return tmp_path_factory.mktemp("robust-cache")


@pytest.fixture(scope="module")
def model_server(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[Deployment]:
    """One real server on the bundled `tiny.en` model, shared by a module's cases."""
    deployment = make_deployment(tmp_path_factory.mktemp("robust-model"), model_cache)
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def cli_deployment(tmp_path: Path, model_cache: Path) -> Iterator[Callable[..., Deployment]]:
    """Deployments on the fake command backend; each test gets fresh directories. Servers
    started through them are stopped at the end of the test."""
    made: list[Deployment] = []

    def build(**overrides: str) -> Deployment:
        deployment = make_deployment(
            tmp_path / f"d{len(made)}", model_cache, **cli_settings(**overrides)
        )
        made.append(deployment)
        return deployment

    try:
        yield build
    finally:
        for deployment in made:
            deployment.stop()


def assert_error(
    response: httpx.Response, status: int, type_: str, code: str | None, param: str | None
) -> str:
    """The response is exactly this error in OpenAI's envelope; its message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["type"], error["code"], error["param"]) == (type_, code, param), error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert "Traceback" not in error["message"], error
    return str(error["message"])


def wait_status(client: httpx.Client, job_id: str, wanted: set[str]) -> dict[str, Any]:
    """Poll the job until its status is one of `wanted`; its status body."""

    def check() -> dict[str, Any] | None:
        response = client.get(f"/transcription/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["status"] in wanted else None

    return wait_for(check, f"job {job_id} to be one of {sorted(wanted)}", JOB_SECONDS, POLL)
