"""A real S3-speaking server for tests: moto's, on a free loopback port, over real HTTP.

Import the fixture into a test module: `from tests.s3_server import s3_endpoint`.

Why one request at a time. moto honours `If-Match` and `If-None-Match` on PUT, but its threaded
server checks the condition and writes the object in two steps with no lock between them, so two
racing conditional writes can both succeed (moto 5.2.5: 4 double wins in 2,800 rounds of 8
writers racing on one key). AWS S3 and MinIO apply conditional writes atomically, and the job
store relies on exactly that. `serial=True` (the default) runs `moto.server.main`, the function
behind the `moto_server` console script, with werkzeug's threading turned off: each request
finishes before the next starts, which gives the tests the atomicity production stores give.
`serial=False` runs the stock `moto_server` script found next to `sys.executable`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import tail as _tail
from tests.processes import terminate as stop
from tests.server import free_port

STARTUP_SECONDS = 30

_SERIAL_MAIN = (
    "import sys, moto.server as s; run = s.run_simple; "
    "s.run_simple = lambda *a, **k: run(*a, **{**k, 'threaded': False}); "
    "s.main(sys.argv[1:])"
)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh moto S3 server shared by the session; buckets are the tests' business."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    process, endpoint = start_moto(log_path)
    try:
        wait_ready(endpoint, process, log_path)
        yield endpoint
    finally:
        stop(process)


def start_moto(log_path: Path, *, serial: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto's server on a free loopback port; returns the process and its endpoint URL."""
    port = free_port()
    address = ["-H", "127.0.0.1", "-p", str(port)]
    if serial:
        command = [sys.executable, "-c", _SERIAL_MAIN, *address]
    else:
        command = [str(Path(sys.executable).with_name("moto_server")), *address]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(endpoint: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Ready means it answers an S3 request (ListBuckets), not merely that the port is open."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(endpoint, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"moto did not answer within {STARTUP_SECONDS}s:\n{_tail(log_path)}")
