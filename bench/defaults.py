"""The server at its default settings (`make run`, the compose file): speed and peak memory.

One `whisperx-api serve` process with nothing configured but its directories and `base`
(int8 on CPU here; concurrency, batch size and memory budget all at their defaults), and, in
this process, faster-whisper called directly on the same model. Prints:

1. a warm `--short`-second request with language detection, end to end (median of 5);
2. `--requests` requests of `--seconds` sent at once: audio-seconds per wall-second and the
   first answer, against the server's own rate on one long file (`--minutes`);
3. that long file through the server, and through faster-whisper directly, `--long-runs`
   times each, alternating (and alternating which goes first), every run printed with its
   process's CPU seconds and the load average, then the ratio of the best runs and of the
   medians, and the ratio of their median CPU seconds;
4. the server's peak RSS (kernel VmHWM, reset before each) for the long file, each of
   `--rss-minutes`, and `--burst` requests of `--seconds` at once.

The machine's load average is printed before and after: on a shared machine every figure is
pessimistic, and the ratios (measured in the same minutes) mean more than the rates. Load
from other work comes and goes within seconds, so one run of each side can land a ratio
anywhere within about 0.15 of the truth; the alternating runs let it hit both sides alike.

    .venv/bin/python bench/defaults.py [--requests 8] [--seconds 30] [--minutes 5]
        [--long-runs 3] [--rss-minutes 60] [--burst 16] [--short 5]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.concurrency import Run, all_at_once, cut_clips  # noqa: E402
from bench.memory import MB, reset_peak, status_bytes  # noqa: E402
from bench.throughput import direct, direct_pipeline, through_server  # noqa: E402
from tests.distributed_stack import build_speech  # noqa: E402
from tests.server import serving  # noqa: E402

DIRECT_BATCH_SIZE = 8  # BatchedInferencePipeline.transcribe's own default


def default_env(root: Path) -> dict[str, str]:
    """Only where the server keeps its files, and the model: every other setting is default."""
    return {
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "LOG_LEVEL": "warning",
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def peak_of(pid: int, work: Callable[[], object]) -> tuple[float, float]:
    """(peak RSS in MB while `work` ran, wall seconds); the peak since startup if the kernel
    refuses the reset."""
    exact = reset_peak(pid)
    started = time.perf_counter()
    work()
    wall = time.perf_counter() - started
    peak = status_bytes(pid, "VmHWM") / MB
    return (peak if exact else float("nan")), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=5.0, help="the long file")
    parser.add_argument("--long-runs", type=int, default=3, help="long-file runs per side")
    parser.add_argument("--rss-minutes", type=float, nargs="*", default=[60.0])
    parser.add_argument("--burst", type=int, default=16, help="requests at once, for peak RSS")
    parser.add_argument("--short", type=float, default=5.0)
    args = parser.parse_args()
    from whisperx_api.pipeline.catalog import ModelCatalog

    print(f"before: {load()}", flush=True)
    print("server at default settings, model base (int8 on CPU); figures print as measured")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        long_audio = root / "long.wav"
        long_seconds = build_speech(long_audio, args.minutes * 60).seconds
        clips = cut_clips(long_audio, root, max(args.requests, args.burst), args.seconds)
        (root / "short").mkdir()
        short = cut_clips(long_audio, root / "short", 1, args.short)[0]
        model_dir = ModelCatalog("base", cache_dir=root / "cache").resolve("base").source

        pipeline = direct_pipeline(model_dir)
        direct(pipeline, short, DIRECT_BATCH_SIZE)  # warm-up
        with serving(default_env(root), root / "server.log") as server:
            pid = server.process.pid
            url = f"{server.base_url}/v1/audio/transcriptions"
            through_server(url, short)  # loads the model
            shorts = [through_server(url, short) for _ in range(5)]
            say(
                f"warm {args.short:.0f}-s request, language detected: median "
                f"{statistics.median(shorts):.2f} s, best {min(shorts):.2f} s  (target <= 1.2)"
            )
            burst: Run = all_at_once(
                f"server, {args.requests} x {args.seconds:.0f} s at once",
                lambda c: through_server(url, c),
                clips[: args.requests],
                args.seconds,
            )
            burst_rate = burst.report()
            long = long_file_runs(
                args.long_runs,
                (pid, lambda: peak_of(pid, lambda: through_server(url, long_audio))),
                lambda: direct(pipeline, long_audio, DIRECT_BATCH_SIZE),
                long_seconds,
            )
            peak, long_rate = long.peak, long_seconds / statistics.median(long.server)
            say(
                f"ratio burst / server's long-file rate: {burst_rate / long_rate:.2f}  "
                "(target >= 0.9; the server's median long-file run)"
            )
            first = min(burst.latencies)
            say(f"first answer in the burst:             {first:.1f} s  (target <= 5)")
            minutes = long_seconds / 60
            say(f"peak RSS, {minutes:.0f}-min file{'':<16}{peak:6.0f} MB  (5 min: <= 1000)")
            peak, _ = peak_of(
                pid,
                lambda: all_at_once(
                    "", lambda c: through_server(url, c), clips[: args.burst], args.seconds
                ),
            )
            label = f"{args.burst} x {args.seconds:.0f} s at once"
            say(f"peak RSS, {label:<24} {peak:6.0f} MB  (16 x 30 s: <= 1500)")
            for minutes in args.rss_minutes:
                audio = root / f"rss_{minutes:g}.wav"
                seconds = build_speech(audio, minutes * 60).seconds
                peak, wall = peak_of(pid, lambda a=audio: through_server(url, a))
                label = f"{seconds / 60:.0f}-min file"
                say(
                    f"peak RSS, {label:<24} {peak:6.0f} MB  (60 min: <= 1200; "
                    f"{seconds / wall:.1f} audio-s/wall-s)"
                )
                audio.unlink()

    best = min(long.direct) / min(long.server)
    medians = statistics.median(long.direct) / statistics.median(long.server)
    say(
        f"ratio long file server / direct:       best {best:.3f}, medians {medians:.3f}  "
        "(target >= 0.97)"
    )
    say(f"after:  {load()}")


@dataclass
class LongRuns:
    """Wall seconds of each run of the long file, per side, and the server's peak RSS (MB)."""

    server: list[float] = field(default_factory=list)
    direct: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    direct_cpu: list[float] = field(default_factory=list)

    @property
    def peak(self) -> float:
        """The highest of the server's runs (NaN where the kernel refused a reset)."""
        return float("nan") if any(map(math.isnan, self.peaks)) else max(self.peaks)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds that process `pid` has used, all its threads (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def long_file_runs(
    runs: int,
    server: tuple[int, Callable[[], tuple[float, float]]],
    direct_run: Callable[[], float],
    seconds: float,
) -> LongRuns:
    """`runs` of the long file through the server (its pid, and a run giving its peak RSS and
    wall seconds) and through faster-whisper in this process, alternating and swapping which
    side goes first each round, so that load from other work that comes and goes hits both
    sides alike; each run is printed as it ends, with the CPU seconds its process used (the
    work done, which load changes far less than the wall time)."""
    made = LongRuns()
    pid, server_run = server
    for number in range(1, runs + 1):
        order = ("server", "direct") if number % 2 else ("direct", "server")
        for side in order:
            if side == "server":
                before = cpu_seconds(pid)
                peak, wall = server_run()
                used = cpu_seconds(pid) - before
                made.server.append(wall)
                made.peaks.append(peak)
                made.server_cpu.append(used)
            else:
                before = cpu_seconds(os.getpid())
                wall = direct_run()
                used = cpu_seconds(os.getpid()) - before
                made.direct.append(wall)
                made.direct_cpu.append(used)
            say(
                f"long file run {number}, {side:<6} {wall:6.1f} s wall, "
                f"{seconds / wall:5.1f} audio-s/wall-s, {used:5.1f} CPU-s  ({load()})"
            )
    for side, walls in (("server", made.server), ("direct", made.direct)):
        rates = sorted(seconds / wall for wall in walls)
        say(
            f"{side}, {seconds:.0f}-s file: best {rates[-1]:.1f}, median "
            f"{statistics.median(rates):.1f} audio-s/wall-s"
        )
    cpu = statistics.median(made.server_cpu) / statistics.median(made.direct_cpu)
    say(f"CPU seconds per long-file run, server / direct (medians): {cpu:.3f}")
    return made


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    main()
