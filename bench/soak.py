"""Soak: a real server under a long mix of good and bad requests, and what it holds afterwards.

Starts `whisperx-api serve` (the bundled `tiny.en` by default) with its own data directory and
TMPDIR, warms it up with one request of each kind, takes a baseline, then for `--minutes` sends
from `--clients` threads a weighted random mix: synchronous transcriptions in several formats,
translations, streamed transcriptions, async jobs (polled and fetched, some cancelled), and bad
requests (not audio, a truncated file, bad parameters, a wrong key, an unknown job, a body over
the size limit). Every answer is checked against the status it must have.

At the end, once the queue is empty, it prints the server's RSS, open file descriptors and the
files in its data and temp directories before and after (goal: under 50 MB of RSS growth, and
the same files on disk as at the start), the RSS over time, and the count of each request kind.
Exits 1 if any answer was unexpected.

    .venv/bin/python bench/soak.py [--minutes 30] [--clients 2] [--model tiny.en] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.server import ServerProcess, serving  # noqa: E402

KEY = "sk-soak"
MAX_FILE_SIZE = 4_000_000
GOAL_RSS_GROWTH_MB = 50.0
SPEECH = (DATA / "good_short.mp3").read_bytes()  # 7 s
NOT_AUDIO = (DATA / "bad_not_audio.wav").read_bytes()
TRUNCATED = (DATA / "bad_truncated.mp3").read_bytes()
SYNC_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "tsv", "aud")
JOB_SECONDS = 300.0
# onnxruntime (the VAD's runtime) keeps one session id file in TMPDIR, not per request.
LIBRARY_STATE = frozenset({".ses"})


class Unexpected(Exception):
    """An answer other than the one the request must get."""


@dataclass(frozen=True)
class Snapshot:
    """What the server process holds at one moment."""

    rss_mb: float
    open_fds: int
    files: tuple[str, ...]
    disk_bytes: int


def snapshot(pid: int, dirs: tuple[Path, ...]) -> Snapshot:
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    files: list[str] = []
    size = 0
    for root in dirs:
        for path in sorted(root.rglob("*")):
            if path.name in LIBRARY_STATE:
                continue
            files.append(str(path))
            if path.is_file():
                size += path.stat().st_size
    return Snapshot(rss_kb / 1024, fds, tuple(files), size)


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise Unexpected(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} (wanted {status}) {response.text[:300]}"
        )
    return response


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise Unexpected(f"timed out waiting for {what}")


# The request kinds; each sends one request (or one job's calls) and checks every answer.


def sync_transcription(client: httpx.Client, rng: random.Random) -> None:
    fmt = rng.choice(SYNC_FORMATS)
    response = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("speech.mp3", SPEECH)},
        data={"response_format": fmt, "timestamp_granularities[]": "word"},
    )
    expect(response, 200)
    if "meeting" not in response.text.lower():
        raise Unexpected(f"{fmt}: no transcript in {response.text[:200]}")


def translation(client: httpx.Client, rng: random.Random) -> None:
    response = client.post(
        "/v1/audio/translations",
        files={"file": ("speech.mp3", SPEECH)},
        data={"response_format": "text"},
    )
    expect(response, 200)


def streamed(client: httpx.Client, rng: random.Random) -> None:
    data = {"stream": "true", "response_format": "json"}
    with client.stream(
        "POST", "/v1/audio/transcriptions", files={"file": ("speech.mp3", SPEECH)}, data=data
    ) as response:
        expect(response, 200)
        body = "".join(response.iter_text())
    if "transcript.text.done" not in body:
        raise Unexpected(f"stream without its done event: {body[-300:]}")


def async_job(client: httpx.Client, rng: random.Random) -> None:
    fmt = rng.choice(("txt", "json", "srt", "vtt"))
    response = expect(
        client.post(
            "/transcription", files={"file": ("speech.mp3", SPEECH)}, data={"response_format": fmt}
        ),
        202,
    )
    job_id = response.json()["job_id"]
    if rng.random() < 0.3:  # cancelled when still queued, else it runs and is fetched
        cancel = client.delete(f"/transcription/{job_id}")
        if cancel.status_code == 200:
            expect(client.get(f"/transcription/{job_id}/result"), 409)
            return
        expect(cancel, 409)

    def done() -> bool:
        status = expect(client.get(f"/transcription/{job_id}"), 200).json()["status"]
        if status in ("Failed", "Cancelled"):
            raise Unexpected(f"job {job_id} ended {status}")
        return bool(status == "Completed")

    wait_until(done, f"job {job_id}")
    expect(client.get(f"/transcription/{job_id}/result"), 200)
    expect(client.get(f"/transcription/{job_id}/result"), 404)


def not_audio(client: httpx.Client, rng: random.Random) -> None:
    content = rng.choice((NOT_AUDIO, TRUNCATED, b"", b"just some text, not audio\n" * 50))
    path = rng.choice(("/v1/audio/transcriptions", "/transcription"))
    response = client.post(path, files={"file": ("x.mp3", content)})
    if content is not TRUNCATED or path != "/transcription":
        expect(response, 400)
        return
    # A truncated file probes as audio; the job finds out while decoding and fails on its input.
    job_id = expect(response, 202).json()["job_id"]

    def failed() -> bool:
        return bool(client.get(f"/transcription/{job_id}").json()["status"] == "Failed")

    wait_until(failed, f"job {job_id} to fail")
    expect(client.get(f"/transcription/{job_id}/result"), 400)


def bad_parameter(client: httpx.Client, rng: random.Random) -> None:
    field, value = rng.choice(
        (
            ("temperature", "5"),
            ("response_format", "xml"),
            ("model", "gpt-9"),
            ("language", "xx"),
            ("batch_size", "0"),
            ("chunking_strategy", "{"),
        )
    )
    response = client.post(
        "/v1/audio/transcriptions", files={"file": ("speech.mp3", SPEECH)}, data={field: value}
    )
    expect(response, 400)


def bad_key(client: httpx.Client, rng: random.Random) -> None:
    headers = {"Authorization": rng.choice(("Bearer sk-wrong", "Basic abc", ""))}
    response = client.post(
        "/v1/audio/transcriptions", files={"file": ("speech.mp3", SPEECH)}, headers=headers
    )
    expect(response, 401)


def unknown_job(client: httpx.Client, rng: random.Random) -> None:
    job_id = rng.choice(("00000000-0000-0000-0000-000000000000", "abc", "x" * 300))
    expect(client.request(rng.choice(("GET", "DELETE")), f"/transcription/{job_id}"), 404)


def too_large(client: httpx.Client, rng: random.Random) -> None:
    body = b"\0" * (MAX_FILE_SIZE + 100_000)
    expect(client.post("/transcription", files={"file": ("big.wav", body)}), 413)


KINDS: dict[str, tuple[Callable[[httpx.Client, random.Random], None], int]] = {
    "sync transcription": (sync_transcription, 6),
    "translation": (translation, 1),
    "streamed": (streamed, 2),
    "async job": (async_job, 4),
    "not audio": (not_audio, 3),
    "bad parameter": (bad_parameter, 3),
    "bad key": (bad_key, 2),
    "unknown job": (unknown_job, 2),
    "too large": (too_large, 1),
}


class Soak:
    """Clients sending the mix until the deadline; counts and unexpected answers."""

    def __init__(self, server: ServerProcess, seed: int) -> None:
        self.server = server
        self.seed = seed
        self.counts: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self._lock = threading.Lock()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=JOB_SECONDS,
        )

    def run_one(self, client: httpx.Client, rng: random.Random, kind: str) -> None:
        action, _ = KINDS[kind]
        try:
            action(client, rng)
        except (Unexpected, httpx.HTTPError) as exc:
            with self._lock:
                self.unexpected.append(f"{kind}: {type(exc).__name__}: {exc}")
        with self._lock:
            self.counts[kind] += 1

    def warm_up(self) -> None:
        rng = random.Random(self.seed)
        with self.client() as client:
            for kind in KINDS:
                self.run_one(client, rng, kind)

    def run(self, clients: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        names = list(KINDS)
        weights = [KINDS[name][1] for name in names]

        def worker(index: int) -> None:
            rng = random.Random(self.seed * 1000 + index)
            with self.client() as client:
                while time.monotonic() < deadline:
                    self.run_one(client, rng, rng.choices(names, weights)[0])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def settle(soak: Soak) -> None:
    """Until no job is queued or processing (a cancelled sync job's work may still run)."""
    with soak.client() as client:

        def idle() -> bool:
            state = client.get("/status").json()["queue_state"]
            return bool(state == {"queued_jobs": 0, "processing_jobs": 0})

        wait_until(idle, "an empty queue")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=2, help="threads sending requests")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, temp = root / "data", root / "tmp"
        temp.mkdir()
        env = {
            "API_KEY": KEY,
            "WHISPER_TMP_FILES": str(data),
            "WHISPER__CACHE_DIR": str(root / "cache"),
            "WHISPER__MODEL": args.model,
            "LIMITS__MAX_FILE_SIZE": str(MAX_FILE_SIZE),
            "LOG_LEVEL": "warning",
            "TMPDIR": str(temp),
        }
        with serving(env, root / "server.log") as server:
            pid = server.process.pid
            dirs = (data / "jobs", temp)
            soak = Soak(server, args.seed)
            soak.warm_up()
            settle(soak)
            before = snapshot(pid, dirs)
            timeline = [(0.0, before.rss_mb)]
            started = time.monotonic()
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(max(5.0, args.minutes * 60 / 20)):
                    timeline.append((time.monotonic() - started, snapshot(pid, dirs).rss_mb))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            soak.run(args.clients, args.minutes * 60)
            stop.set()
            settle(soak)
            after = snapshot(pid, dirs)
            timeline.append((time.monotonic() - started, after.rss_mb))
    report(args, soak, before, after, timeline)
    if soak.unexpected:
        sys.exit(1)


def report(
    args: argparse.Namespace,
    soak: Soak,
    before: Snapshot,
    after: Snapshot,
    timeline: list[tuple[float, float]],
) -> None:
    growth = after.rss_mb - before.rss_mb
    total = sum(soak.counts.values())
    print(
        f"soak: {args.minutes:g} min, {args.clients} clients, model {args.model}, "
        f"{total} requests after warm-up (seed {args.seed})"
    )
    for kind in KINDS:
        print(f"  {kind:20s} {soak.counts[kind]}")
    print(
        f"RSS:        {before.rss_mb:8.1f} MB -> {after.rss_mb:8.1f} MB "
        f"(growth {growth:+.1f} MB; goal < {GOAL_RSS_GROWTH_MB:.0f} MB: "
        f"{'met' if growth < GOAL_RSS_GROWTH_MB else 'MISSED'})"
    )
    print(f"open fds:   {before.open_fds:8d}    -> {after.open_fds:8d}")
    print(
        f"disk files: {len(before.files):8d}    -> {len(after.files):8d} "
        f"({before.disk_bytes} -> {after.disk_bytes} bytes; back to baseline: "
        f"{'yes' if after.files == before.files else 'NO'})"
    )
    for extra in sorted(set(after.files) - set(before.files))[:20]:
        print(f"  left: {extra}")
    print("RSS over time: " + ", ".join(f"{t / 60:.1f} min {mb:.0f} MB" for t, mb in timeline))
    print(f"unexpected answers: {len(soak.unexpected)}")
    for line in soak.unexpected[:20]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
