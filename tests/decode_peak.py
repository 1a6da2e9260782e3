"""Run in a child process: decode one file and print the peak resident memory it added.

`python -m tests.decode_peak PATH MAX_SECONDS` prints one JSON line: the decoded samples' size
(or the error code) and the growth of VmHWM over a warm baseline (codecs already loaded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.audio import DATA
from whisperx_api.errors import WhisperXApiError
from whisperx_api.pipeline.stages.decode import decode_audio


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    path, max_seconds = Path(sys.argv[1]), float(sys.argv[2])
    decode_audio(DATA / "en_espeak.flac", 600)  # load codecs and the resampler once
    baseline = _status_bytes("VmHWM")
    report: dict[str, object] = {}
    try:
        report["samples_bytes"] = decode_audio(path, max_seconds).samples.nbytes
    except WhisperXApiError as exc:
        report["error"] = exc.code
    report["peak_growth_bytes"] = _status_bytes("VmHWM") - baseline
    print(json.dumps(report))


if __name__ == "__main__":
    main()
