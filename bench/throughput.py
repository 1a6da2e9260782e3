"""Throughput: the running server vs faster-whisper called directly, same audio, same settings.

Builds a few minutes of speech from the committed fixtures, transcribes it once with
faster-whisper's BatchedInferencePipeline in this process and through a real
`whisperx-api serve` process (model warmed up first), each `--repeats` times alternating so
that background load hits both alike, and prints the best audio-seconds per wall-second of
each and their ratio.

    .venv/bin/python bench/throughput.py [--minutes 3] [--batch-size 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.distributed_stack import build_speech  # noqa: E402
from tests.server import serving  # noqa: E402


def build_audio(target: Path, minutes: float) -> float:
    """Concatenate the English fixtures (with 1 s gaps) to about `minutes`; returns seconds."""
    return build_speech(target, minutes * 60).seconds


def direct_pipeline(model_dir: str) -> Any:
    """faster-whisper's batched pipeline on the same model the server uses."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    return BatchedInferencePipeline(WhisperModel(model_dir, device="cpu", compute_type="int8"))


def direct(pipeline: Any, audio: Path, batch_size: int) -> float:
    """Wall seconds for faster-whisper alone (decode + VAD + batched decode)."""
    from faster_whisper import decode_audio

    started = time.perf_counter()
    segments, _ = pipeline.transcribe(
        decode_audio(str(audio)),
        batch_size=batch_size,
        temperature=[0.0],
        condition_on_previous_text=False,
        vad_filter=True,
        beam_size=5,
    )
    text = " ".join(s.text.strip() for s in segments)
    elapsed = time.perf_counter() - started
    assert text, "direct run produced no text"
    return elapsed


def server_env(root: Path, batch_size: int) -> dict[str, str]:
    """A server like `make run`'s, with its files in `root`."""
    return {
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "WHISPER__BATCH_SIZE": str(batch_size),
        "LOG_LEVEL": "warning",
    }


def through_server(url: str, audio: Path) -> float:
    """Wall seconds for one `json` request to the server."""
    started = time.perf_counter()
    with audio.open("rb") as f:
        response = httpx.post(url, files={"file": (audio.name, f)}, timeout=3600)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert response.json()["text"], "server returned no text"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from whisperx_api.pipeline.catalog import ModelCatalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio = root / "bench.wav"
        seconds = build_audio(audio, args.minutes)
        model_dir = ModelCatalog("base", cache_dir=root / "cache").resolve("base").source
        pipeline = direct_pipeline(model_dir)
        direct_runs: list[float] = []
        server_runs: list[float] = []
        with serving(server_env(root, args.batch_size), root / "server.log") as server:
            url = f"{server.base_url}/v1/audio/transcriptions"
            through_server(url, DATA / "good_short.mp3")  # loads the model
            for _ in range(args.repeats):
                direct_runs.append(direct(pipeline, audio, args.batch_size))
                server_runs.append(through_server(url, audio))
    direct_s, server_s = min(direct_runs), min(server_runs)
    print("direct runs (s):", " ".join(f"{r:.1f}" for r in direct_runs))
    print("server runs (s):", " ".join(f"{r:.1f}" for r in server_runs))
    direct_rate, server_rate = seconds / direct_s, seconds / server_s
    print(f"audio: {seconds:.1f} s of speech, model base int8 on CPU, batch size {args.batch_size}")
    print(f"direct faster-whisper: {direct_s:.1f} s wall, {direct_rate:.1f} audio-s per wall-s")
    print(f"whisperx-api server:   {server_s:.1f} s wall, {server_rate:.1f} audio-s per wall-s")
    print(f"ratio server/direct: {server_rate / direct_rate:.3f}")


if __name__ == "__main__":
    main()
