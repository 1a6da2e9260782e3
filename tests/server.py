"""A real `whisperx-api serve` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import terminate

STARTUP_SECONDS = 120


@dataclass
class ServerProcess:
    """A running server: where it listens and how to stop it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_env(root: Path, key: str, **extra: str) -> dict[str, str]:
    """A server for live sessions: `key`, the base model loaded at start (so a session's first
    turn does not wait for it), its files under `root`; `extra` adds or overrides settings."""
    return {
        "API_KEY": key,
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "BACKENDS__PRELOAD": "transcription",
        **extra,
    }


def start_server(env: Mapping[str, str], log_path: Path, port: int | None = None) -> ServerProcess:
    """Start `whisperx-api serve` and wait until /health answers."""
    port = port or free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    log = log_path.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "whisperx_api.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    _wait_healthy(server)
    return server


def stop_server(server: ServerProcess, timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    terminate(server.process, timeout)


@contextmanager
def serving(env: Mapping[str, str], log_path: Path) -> Iterator[ServerProcess]:
    server = start_server(env, log_path)
    try:
        yield server
    finally:
        stop_server(server)


def _wait_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.process.kill()
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")
