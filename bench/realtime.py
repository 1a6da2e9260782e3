"""Live captions: how soon text arrives while a real two-speaker call is streamed at real speed.

Starts a real `whisperx-api serve` (bundled base model, int8 on CPU, preloaded), takes the batch
transcript of the call from the same server, then streams the call through the official
`openai` SDK's realtime client at real speed (100 ms appends) and prints, per turn, on the
stream's clock (seconds of audio sent when the event arrived):

- first delta: from the turn's start (`speech_started.audio_start_ms`) to its first delta;
- completed: from the end of speech (`speech_stopped.audio_end_ms`, the point where the server's
  VAD closed the turn, as OpenAI defines it) to the `completed` transcript;

then the median of each (and the worst completion), and the WER of the joined completed
transcripts against the batch transcript. `--timings` runs the server at LOG_LEVEL=debug and
prints where each turn's first delta spent its time (speech heard how far into the turn, the
wait for the first draft, each draft's decode) and each kind of decode's median and worst time.
`--with-job` also submits a file job while the session
runs. `--long-turns` streams, instead of `--file`, over a minute of real speech whose pauses are
cut to 250 ms (made at run time from the fixtures, see `tests/long_turn.py`): the server VAD
makes turns of 12 to 30 s of it, as it does of lectures and meetings. The machine's load average
is printed with the figures: on a busy machine every delay is longer.

    .venv/bin/python bench/realtime.py [--file tests/data/conv2.flac | --long-turns] [--speed 1]
        [--with-job] [--timings]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openai import OpenAI  # noqa: E402
from tests.audio import DATA  # noqa: E402
from tests.long_turn import long_turn_audio, write_wav  # noqa: E402
from tests.realtime_sdk import Streamed, Turn, stream_file  # noqa: E402
from tests.server import live_env, serving  # noqa: E402
from tests.wer import normalized_wer  # noqa: E402

KEY = "sk-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA / "conv2.flac")
    parser.add_argument("--speed", type=float, default=1.0, help="x real time (default 1)")
    parser.add_argument("--language", default="en")
    parser.add_argument("--with-job", action="store_true", help="a file job during the session")
    parser.add_argument(
        "--long-turns", action="store_true", help="real speech with its pauses cut to 250 ms"
    )
    parser.add_argument(
        "--timings", action="store_true", help="where the time went (the server's debug log)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.long_turns:
            args.file = write_wav(root / "long_turns.wav", long_turn_audio())
        extra = {"LOG_LEVEL": "debug"} if args.timings else {}
        env = live_env(root, KEY, WHISPER__COMPUTE_TYPE="int8", **extra)
        with serving(env, root / "server.log") as server:
            client = OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", timeout=600)
            batch = transcribe(client, args.file, args.language)  # also warms the model up
            streamed, job_seconds = asyncio.run(session(server.base_url, client, args))
            timings = server.log() if args.timings else ""
    report(streamed, batch, args, job_seconds)
    if timings:
        report_timings(timings)


def transcribe(client: OpenAI, path: Path, language: str | None) -> str:
    with path.open("rb") as audio:
        kwargs = {"language": language} if language else {}
        return client.audio.transcriptions.create(model="whisper-1", file=audio, **kwargs).text


async def session(
    base_url: str, client: OpenAI, args: argparse.Namespace
) -> tuple[Streamed, float | None]:
    speaking = asyncio.Event()
    live = asyncio.create_task(
        stream_file(
            base_url, KEY, args.file, speed=args.speed, language=args.language, speaking=speaking
        )
    )
    job_seconds = None
    if args.with_job:
        await speaking.wait()
        started = time.monotonic()
        await asyncio.to_thread(transcribe, client, DATA / "en_recorded.flac", None)
        job_seconds = time.monotonic() - started
    return await live, job_seconds


def report(
    streamed: Streamed, batch: str, args: argparse.Namespace, job_seconds: float | None
) -> None:
    name = (
        "long turns (fixtures' speech, pauses cut to 250 ms)" if args.long_turns else args.file.name
    )
    print(f"file: {name}, speed {args.speed:g}x, base int8 on CPU, {os.cpu_count()} CPUs")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'turn':>4} {'start':>7} {'end':>7} {'1st delta':>10} {'completed':>10}  transcript")
    firsts, completions = [], []
    turns = sorted(streamed.turns.values(), key=lambda t: t.start_ms or 0)
    for n, turn in enumerate(turns, 1):
        first, done = first_delta(turn), completion(turn)
        firsts += [first] if first is not None else []
        completions += [done] if done is not None else []
        print(
            f"{n:>4} {seconds(turn.start_ms):>7} {seconds(turn.end_ms):>7} "
            f"{fmt(first):>10} {fmt(done):>10}  {turn.transcript}"
        )
    live_text = streamed.text()
    print(f"median first delta after speech starts: {fmt(median(firsts))} s")
    print(f"median end of speech -> completed: {fmt(median(completions))} s")
    print(f"worst end of speech -> completed: {fmt(max(completions, default=None))} s")
    wer = normalized_wer(batch, live_text)
    print(f"WER of the live transcript vs the batch transcript: {wer:.3f}")
    if job_seconds is not None:
        print(f"file job during the session: {job_seconds:.2f} s")
    if streamed.errors:
        print(f"errors: {streamed.errors}")


_DECODE = re.compile(
    r"live session \S+: (.+?) decode \((.+?)\) of ([\d.]+) s of audio took ([\d.]+) s"
)
_FIRST = re.compile(r"live session \S+: (item_\S+: first delta .*)")


def report_timings(log: str) -> None:
    """The session's own account of its time, from the server's debug log."""
    print("first deltas (server clock, from the turn's start):")
    for line in _FIRST.findall(log):
        print(f"  {line}")
    took: dict[str, list[tuple[float, float]]] = {}
    for kind, window, audio, seconds in _DECODE.findall(log):
        took.setdefault(f"{kind} ({window})", []).append((float(audio), float(seconds)))
    print("decodes: count, median audio, median / worst time")
    for kind, runs in sorted(took.items()):
        audio = statistics.median(a for a, _ in runs)
        times = [t for _, t in runs]
        print(
            f"  {kind:<26} {len(runs):>4} {audio:>7.2f} s {statistics.median(times):>6.2f} / "
            f"{max(times):.2f} s"
        )


def first_delta(turn: Turn) -> float | None:
    if turn.first_delta_at is None or turn.start_ms is None:
        return None
    return turn.first_delta_at - turn.start_ms / 1000


def completion(turn: Turn) -> float | None:
    if turn.completed_at is None or turn.end_ms is None:
        return None
    return turn.completed_at - turn.end_ms / 1000


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def seconds(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}"


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
