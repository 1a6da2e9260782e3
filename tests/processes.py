"""Stopping helper processes (servers, brokers) started by the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def terminate(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(log_path: Path, chars: int = 4000) -> str:
    """The end of a log file, for failure messages."""
    return log_path.read_text(errors="replace")[-chars:]
