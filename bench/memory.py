"""Peak memory of the server process on long files: 5, 30 and 60 minutes by default.

Builds each file at run time from the committed fixtures (speech concatenated, then looped
with ffmpeg into FLAC in a temporary directory), starts a real `whisperx-api serve` process
(base int8 on CPU, like `make run`), warms it up with a short request, then sends each file
once, shortest first. Before each request the kernel's peak-RSS counter of the server is
reset (`/proc/PID/clear_refs`), so VmHWM afterwards is that request's own peak; a sampler also
polls VmRSS every 20 ms as a cross-check. Prints, per length: peak RSS, RSS right after the
answer, and the baseline before it.

    .venv/bin/python bench/memory.py [--minutes 5 30 60] [--word-timestamps]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.distributed_stack import build_speech  # noqa: E402
from tests.server import serving  # noqa: E402

MB = 1024 * 1024
_LENGTH = ("-t",)


def status_bytes(pid: int, field: str) -> int:
    """A `/proc/PID/status` memory field (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing for {pid}")


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Sampler:
    """Polls VmRSS of one process and keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_bytes(self._pid, "VmRSS"))
            self._stop.wait(self._interval)


def build_long_audio(folder: Path, minutes: float) -> Path:
    """`minutes` of speech as FLAC: about 3 minutes of fixtures looped by ffmpeg."""
    unit = folder / "unit.wav"
    if not unit.exists():
        build_speech(unit, 180)
    target = folder / f"speech_{minutes:g}min.flac"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-stream_loop",
            "-1",
            "-i",
            str(unit),
            *_LENGTH,
            str(minutes * 60),
            "-c:a",
            "flac",
            str(target),
        ],
        check=True,
    )
    return target


def transcribe(url: str, audio: Path, word_timestamps: bool) -> str:
    data = {"response_format": "verbose_json", "timestamp_granularities[]": "word"}
    with audio.open("rb") as f:
        response = httpx.post(
            url,
            files={"file": (audio.name, f)},
            data=data if word_timestamps else {},
            timeout=7200,
        )
    response.raise_for_status()
    text: str = response.json()["text"]
    assert text, "the server returned no text"
    return text


def server_env(root: Path) -> dict[str, str]:
    return {
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "LOG_LEVEL": "warning",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 30.0, 60.0])
    parser.add_argument("--word-timestamps", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = [(m, build_long_audio(root, m)) for m in sorted(args.minutes)]
        with serving(server_env(root), root / "server.log") as server:
            pid = server.process.pid
            url = f"{server.base_url}/v1/audio/transcriptions"
            transcribe(url, DATA / "good_short.mp3", args.word_timestamps)  # loads the model
            rss, hwm = status_bytes(pid, "VmRSS") / MB, status_bytes(pid, "VmHWM") / MB
            print(
                f"after startup and one short request: RSS {rss:.0f} MB, peak so far {hwm:.0f} MB"
            )
            print("minutes  peak_MB  sampled_peak_MB  rss_before_MB  rss_after_MB  wall_s")
            for minutes, audio in files:
                before = status_bytes(pid, "VmRSS")
                exact = reset_peak(pid)
                started = time.perf_counter()
                with Sampler(pid) as sampler:
                    transcribe(url, audio, args.word_timestamps)
                wall = time.perf_counter() - started
                after = status_bytes(pid, "VmRSS")
                peak = status_bytes(pid, "VmHWM") if exact else sampler.peak
                print(
                    f"{minutes:7g}  {peak / MB:7.0f}  {sampler.peak / MB:15.0f}"
                    f"  {before / MB:13.0f}  {after / MB:12.0f}  {wall:6.0f}",
                    flush=True,
                )
    mode = "verbose_json with word timestamps" if args.word_timestamps else "json"
    print(f"server: base int8 on CPU, one request at a time, response_format {mode}")


if __name__ == "__main__":
    main()
