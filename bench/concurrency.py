"""Concurrency: many short requests at once through the server, batched across requests.

Cuts `--requests` clips of `--seconds` of speech from the committed fixtures and measures, in
one run so that background load hits every figure alike:

1. the clips sent all at once to a server that admits them together (batching across
   requests: `ENABLE_CONCURRENCY=true`, `MAX_CONCURRENT_JOBS=N`);
2. the same clips sent all at once to a server that runs one job at a time
   (`MAX_CONCURRENT_JOBS=1`, the default, where batches come from one job only);
3. the same clips transcribed one after another by faster-whisper directly in this process;
4. one long file (`--minutes`) through the batching server, and by faster-whisper directly;
5. a warm `--short`-second request with automatic language detection, end to end.

For each it prints aggregate audio-seconds per wall-second, request latency p50/p90/max and
when the first answer came. Model: base, int8 on CPU (the server's default there).

    .venv/bin/python bench/concurrency.py [--requests 8] [--seconds 30] [--minutes 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import direct, direct_pipeline, server_env, through_server  # noqa: E402
from tests.distributed_stack import build_speech  # noqa: E402
from tests.server import serving  # noqa: E402

RATE = 16_000


def cut_clips(source: Path, root: Path, count: int, seconds: float) -> list[Path]:
    """`count` WAV clips of `seconds`, taken at different offsets of `source` (wrapping)."""
    import av
    import numpy as np
    from faster_whisper import decode_audio

    samples = decode_audio(str(source))
    length = int(seconds * RATE)
    step = max(RATE, (len(samples) - length) // max(1, count))
    clips = []
    for i in range(count):
        start = (i * step) % max(1, len(samples) - length)
        pcm = (np.clip(samples[start : start + length], -1, 1) * 32767).astype(np.int16)
        path = root / f"clip{i}.wav"
        with av.open(str(path), "w", format="wav") as out:
            stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
        clips.append(path)
    return clips


class Run:
    """Latencies of requests started together at `started`."""

    def __init__(self, label: str, audio_seconds: float) -> None:
        self.label = label
        self.audio_seconds = audio_seconds
        self.latencies: list[float] = []
        self.wall = 0.0

    def report(self) -> float:
        ordered = sorted(self.latencies)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        rate = self.audio_seconds / self.wall
        print(
            f"{self.label:<34} {rate:6.1f} audio-s/wall-s  wall {self.wall:6.1f} s  "
            f"p50 {statistics.median(ordered):5.1f} s  p90 {p90:5.1f} s  max {ordered[-1]:5.1f} s  "
            f"first answer {ordered[0]:5.1f} s"
        )
        return rate


def all_at_once(
    label: str, call: Callable[[Path], float], clips: Sequence[Path], seconds: float
) -> Run:
    run = Run(label, seconds * len(clips))
    started = time.perf_counter()

    def timed(clip: Path) -> float:
        call(clip)
        return time.perf_counter() - started

    with ThreadPoolExecutor(len(clips)) as pool:
        run.latencies = list(pool.map(timed, clips))
    run.wall = time.perf_counter() - started
    return run


def one_by_one(
    label: str, call: Callable[[Path], float], clips: Sequence[Path], seconds: float
) -> Run:
    run = Run(label, seconds * len(clips))
    started = time.perf_counter()
    for clip in clips:
        call(clip)
        run.latencies.append(time.perf_counter() - started)
    run.wall = time.perf_counter() - started
    return run


def warm_short(url: str, clip: Path, repeats: int) -> list[float]:
    """End-to-end seconds of a short request (no language given: detection runs)."""
    return [through_server(url, clip) for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--short", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    from whisperx_api.pipeline.catalog import ModelCatalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        long_audio = root / "long.wav"
        long_seconds = build_speech(long_audio, args.minutes * 60).seconds
        clips = cut_clips(long_audio, root, args.requests, args.seconds)
        (root / "short").mkdir()
        short = cut_clips(long_audio, root / "short", 1, args.short)[0]
        model_dir = ModelCatalog("base", cache_dir=root / "cache").resolve("base").source
        env = server_env(root, args.batch_size)
        results: dict[str, Any] = {}

        batching = {**env, "ENABLE_CONCURRENCY": "true", "MAX_CONCURRENT_JOBS": str(args.requests)}
        with serving(batching, root / "batching.log") as server:
            url = f"{server.base_url}/v1/audio/transcriptions"
            through_server(url, short)  # loads the model
            results["batched"] = all_at_once(
                f"server, {args.requests} at once (batched)",
                lambda c: through_server(url, c),
                clips,
                args.seconds,
            )
            start = time.perf_counter()
            through_server(url, long_audio)
            results["long"] = long_seconds / (time.perf_counter() - start)
            results["short"] = warm_short(url, short, 5)

        with serving({**env, "ENABLE_CONCURRENCY": "false"}, root / "sequential.log") as server:
            url = f"{server.base_url}/v1/audio/transcriptions"
            through_server(url, short)
            results["sequential"] = all_at_once(
                "server, one job at a time",
                lambda c: through_server(url, c),
                clips,
                args.seconds,
            )

        pipeline = direct_pipeline(model_dir)
        direct(pipeline, short, args.batch_size)  # warm-up
        results["direct"] = one_by_one(
            "faster-whisper direct, in turn",
            lambda c: direct(pipeline, c, args.batch_size),
            clips,
            args.seconds,
        )
        results["direct_long"] = long_seconds / direct(pipeline, long_audio, args.batch_size)

    print(
        f"model base int8 on CPU, batch size {args.batch_size}; {args.requests} requests of "
        f"{args.seconds:.0f} s; long file {long_seconds:.0f} s"
    )
    batched = results["batched"].report()
    sequential = results["sequential"].report()
    direct_rate = results["direct"].report()
    print(f"server, single long file           {results['long']:6.1f} audio-s/wall-s")
    print(f"faster-whisper direct, long file   {results['direct_long']:6.1f} audio-s/wall-s")
    shorts = results["short"]
    print(
        f"warm {args.short:.0f}-s request, language detected: best {min(shorts):.2f} s, "
        f"median {statistics.median(shorts):.2f} s"
    )
    print(f"ratio batched / single long file:   {batched / results['long']:.2f}")
    print(f"ratio batched / one job at a time:  {batched / sequential:.2f}")
    print(f"ratio batched / direct in turn:     {batched / direct_rate:.2f}")
    print(f"ratio long file server / direct:    {results['long'] / results['direct_long']:.3f}")


if __name__ == "__main__":
    main()
