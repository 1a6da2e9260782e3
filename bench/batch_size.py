"""Batch size on this machine: throughput and peak memory of one long file per batch size.

Each run is a fresh process (so its peak RSS is its own) that loads the transcription backend
(base int8, the server's defaults) with `WHISPER__BATCH_SIZE` set to one value, decodes a few
minutes of speech built from the committed fixtures, warms the model up on a short file, and
transcribes the long file once. Batch sizes are run round-robin `--repeats` times so that
background load hits them alike; prints per run, and the best throughput and the largest peak
per batch size.

    .venv/bin/python bench/batch_size.py [--minutes 3] [--sizes 4 6 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.distributed_stack import build_speech  # noqa: E402

MB = 1024 * 1024


def one_run(audio: Path, batch_size: int, cache: Path) -> dict[str, float]:
    """In this process: transcribe `audio` once at `batch_size`; wall time and peak RSS."""
    from whisperx_api.domain.options import TranscriptionOptions
    from whisperx_api.pipeline.catalog import ModelCatalog
    from whisperx_api.pipeline.stage import StageContext
    from whisperx_api.pipeline.stages.decode import decode_audio
    from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

    backend = FasterWhisperBackend(
        ModelCatalog("base", cache_dir=cache),
        DeviceConfig("cpu"),
        batch_size=batch_size,
    )
    options = TranscriptionOptions(model="base")
    backend.transcribe(decode_audio(DATA / "good_short.mp3", 60), options, StageContext())
    decoded = decode_audio(audio, 7200)
    started = time.perf_counter()
    transcript = backend.transcribe(decoded, options, StageContext())
    wall = time.perf_counter() - started
    assert transcript.segments, "no text"
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
    return {"seconds": decoded.duration, "wall": wall, "peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("AUDIO", "BATCH", "CACHE"))
    args = parser.parse_args()
    if args.child:
        audio, batch, cache = args.child
        print(json.dumps(one_run(Path(audio), int(batch), Path(cache))), flush=True)
        os._exit(0)  # skip interpreter teardown: the model's threads abort on it
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "speech.wav"
        build_speech(audio, args.minutes * 60)
        results: dict[int, list[dict[str, float]]] = {size: [] for size in args.sizes}
        print("batch  audio_s  wall_s  audio_s_per_wall_s  peak_rss_MB", flush=True)
        for _ in range(args.repeats):
            for size in args.sizes:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(audio), str(size), tmp],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "HF_HUB_OFFLINE": "1"},
                ).stdout
                run = json.loads(out.strip().splitlines()[-1])
                results[size].append(run)
                print(
                    f"{size:5d}  {run['seconds']:7.0f}  {run['wall']:6.1f}"
                    f"  {run['seconds'] / run['wall']:18.2f}  {run['peak'] / MB:11.0f}",
                    flush=True,
                )
        print("best per batch size (throughput: best run; peak: largest run)")
        best = max(max(r["seconds"] / r["wall"] for r in runs) for runs in results.values())
        for size, runs in results.items():
            speed = max(r["seconds"] / r["wall"] for r in runs)
            peak = max(r["peak"] for r in runs) / MB
            print(
                f"  batch {size}: {speed:.2f} audio-s/wall-s ({speed / best:.3f} of the best),"
                f" peak RSS {peak:.0f} MB"
            )


if __name__ == "__main__":
    main()
