"""Status latency while every job slot transcribes: how long `GET /transcription/{id}` and
`GET /status` take on a real server running `MAX_CONCURRENT_JOBS` real jobs at once.

Pipeline work has its own threads and store calls theirs, so these answers should not wait for
the jobs (the goal is well under a second). Prints the latency percentiles of the calls made
while all slots were busy.

    .venv/bin/python bench/status_latency.py [--jobs 3] [--minutes 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import build_audio, server_env  # noqa: E402
from tests.server import serving  # noqa: E402


def timed_get(client: httpx.Client, path: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return elapsed, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3, help="MAX_CONCURRENT_JOBS, all busy")
    parser.add_argument("--minutes", type=float, default=2.0, help="audio per job")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio = root / "speech.flac"
        seconds = build_audio(audio, args.minutes)
        env = {
            **server_env(root, 8),
            "ENABLE_CONCURRENCY": "true",
            "MAX_CONCURRENT_JOBS": str(args.jobs),
        }
        with (
            serving(env, root / "server.log") as server,
            httpx.Client(base_url=server.base_url, timeout=60) as client,
        ):
            ids = []
            for _ in range(args.jobs):
                with audio.open("rb") as f:
                    response = client.post("/transcription", files={"file": (audio.name, f)})
                response.raise_for_status()
                ids.append(response.json()["job_id"])
            latencies: list[float] = []
            while True:
                timed = [timed_get(client, "/status")]
                timed += [timed_get(client, f"/transcription/{i}") for i in ids]
                processing = timed[0][1]["queue_state"]["processing_jobs"]
                statuses = [body["status"] for _, body in timed[1:]]
                if processing == args.jobs and all(s == "Processing" for s in statuses):
                    latencies += [seconds for seconds, _ in timed]
                if all(s in ("Completed", "Failed") for s in statuses):
                    break
                time.sleep(0.05)
    if not latencies:
        raise SystemExit("the jobs never ran all at once; try longer audio (--minutes)")
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"{args.jobs} jobs of {seconds:.0f} s audio running at once")
    print(
        f"status calls while all ran: {len(latencies)}, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
