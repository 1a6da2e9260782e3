"""Streaming: how soon the first text arrives with `stream=true`, against waiting for `json`.

Builds a few minutes of speech from the committed fixtures and, on a real `whisperx-api serve`
process (model warmed up first), sends it once as a plain `json` request and once with
`stream=true` for each batch size, printing the time to the first `transcript.text.delta`, the
number of deltas and the time to `transcript.text.done`.

    .venv/bin/python bench/streaming.py [--minutes 3] [--batch-sizes 1 2 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import build_audio, server_env, through_server  # noqa: E402
from tests.audio import DATA  # noqa: E402
from tests.server import serving  # noqa: E402


def streamed(url: str, audio: Path, batch_size: int) -> tuple[float, int, float]:
    """Seconds to the first delta, number of deltas, seconds to `done`."""
    first: float | None = None
    deltas = 0
    started = time.perf_counter()
    with (
        audio.open("rb") as f,
        httpx.stream(
            "POST",
            url,
            files={"file": (audio.name, f)},
            data={"stream": "true", "batch_size": str(batch_size)},
            timeout=3600,
        ) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            if event.get("type") == "transcript.text.delta":
                deltas += 1
                first = first if first is not None else time.perf_counter() - started
            elif event.get("type") == "transcript.text.done":
                assert event["text"], "the stream ended with no text"
                done = time.perf_counter() - started
                return first if first is not None else done, deltas, done
            else:
                raise AssertionError(f"unexpected event: {event}")
    raise AssertionError("the stream ended without transcript.text.done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio = root / "bench.wav"
        seconds = build_audio(audio, args.minutes)
        with serving(server_env(root, 8), root / "server.log") as server:
            url = f"{server.base_url}/v1/audio/transcriptions"
            through_server(url, DATA / "good_short.mp3")  # loads the model
            print(f"audio: {seconds:.1f} s of speech, model base int8 on CPU")
            print("batch  json: done (s)  stream: first delta (s)  deltas  done (s)")
            for batch_size in args.batch_sizes:
                with audio.open("rb") as f:
                    started = time.perf_counter()
                    plain = httpx.post(
                        url,
                        files={"file": (audio.name, f)},
                        data={"batch_size": str(batch_size)},
                        timeout=3600,
                    )
                    plain.raise_for_status()
                    waited = time.perf_counter() - started
                first, deltas, done = streamed(url, audio, batch_size)
                print(f"{batch_size:5d}  {waited:13.1f}  {first:23.1f}  {deltas:6d}  {done:8.1f}")


if __name__ == "__main__":
    main()
