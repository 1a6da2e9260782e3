#!/usr/bin/env python3
"""A stand-in for the `whisperx` command line, for the WhisperX command backend's tests.

It parses the flags our backend passes with the real CLI's spellings and choices (so a
misspelt flag fails here as it would there), checks the input is a readable WAV, and writes
`<output_dir>/<input stem>.json` in WhisperX's shape: two segments, the first saying which
language and model it was given, the second holding a number the "aligner" could not time.

Triggers, matched in the input stem or the model name (the backend picks the WAV's name, a
client picks the model): "fail" -> exit 3 with a traceback-like stderr; "slow" -> sleep 30 s.
With `$FAKE_WHISPERX_LOG` set, each run appends `{"argv": [...], "pid": N, "env": {...}}` to
that file (`env`: the environment it was given, to check what it inherits).
Standard library only: it runs under whatever `python3` is on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import wave
from pathlib import Path
from typing import Any


def _str2bool(value: str) -> bool:
    choices = {"True": True, "False": False}
    if value not in choices:
        raise ValueError(f"Expected one of {set(choices)}, got {value}")
    return choices[value]


def _optional_float(value: str) -> float | None:
    return None if value == "None" else float(value)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="whisperx")
    p.add_argument("audio", nargs="+")
    p.add_argument("--model", default="small")
    p.add_argument("--model_dir", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--device_index", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument(
        "--compute_type", default="default", choices=["default", "float16", "float32", "int8"]
    )
    p.add_argument("--output_dir", "-o", default=".")
    p.add_argument(
        "--output_format",
        "-f",
        default="all",
        choices=["all", "srt", "vtt", "txt", "tsv", "json", "aud"],
    )
    p.add_argument("--verbose", type=_str2bool, default=True)
    p.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    p.add_argument("--language", default=None)
    p.add_argument("--no_align", action="store_true")
    p.add_argument("--chunk_size", type=int, default=30)
    p.add_argument("--temperature", type=float, default=0)
    p.add_argument("--temperature_increment_on_fallback", type=_optional_float, default=0.2)
    p.add_argument("--suppress_numerals", action="store_true")
    p.add_argument("--initial_prompt", default=None)
    p.add_argument("--hotwords", default=None)
    p.add_argument("--threads", type=int, default=0)
    return p


def _duration(path: str) -> float:
    try:
        with wave.open(path, "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (OSError, wave.Error, EOFError) as exc:
        print(f"RuntimeError: cannot read {path} as WAV: {exc}", file=sys.stderr)
        sys.exit(2)


def _words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    parts = text.split()
    step = (end - start) / len(parts)
    return [
        {
            "word": w,
            "start": round(start + i * step, 3),
            "end": round(start + (i + 1) * step, 3),
            "score": 0.9,
        }
        for i, w in enumerate(parts)
    ]


def _result(args: argparse.Namespace, d: float) -> dict[str, Any]:
    first = f"Hello in {args.language or 'auto'} from {args.model}."
    first_seg: dict[str, Any] = {"start": 0.0, "end": d / 2, "text": f" {first}"}
    second_seg: dict[str, Any] = {"start": d / 2, "end": d, "text": " It costs 42 euros."}
    if not args.no_align and args.task == "transcribe":
        first_seg["words"] = _words(first, 0.0, d / 2)
        second_seg["words"] = [
            {"word": "It", "start": 0.5 * d, "end": 0.6 * d, "score": 0.8},
            {"word": "costs", "start": 0.6 * d, "end": 0.75 * d, "score": 0.7},
            {"word": "42"},  # wav2vec2 cannot align digits: WhisperX leaves them untimed
            {"word": "euros.", "start": 0.9 * d, "end": d, "score": 0.6},
        ]
    # WhisperX writes the language it was given, or "en" when it detected one itself
    return {"segments": [first_seg, second_seg], "language": args.language or "en"}


def _fail() -> None:
    for n in range(40):
        print(f"noise line {n}: loading something", file=sys.stderr)
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "whisperx/asr.py", line 1, in load_model', file=sys.stderr)
    print("RuntimeError: CUDA out of memory (fake failure)", file=sys.stderr)
    sys.exit(3)


def main() -> None:
    args = _parser().parse_args()
    log = os.environ.get("FAKE_WHISPERX_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            entry = {"argv": sys.argv[1:], "pid": os.getpid(), "env": dict(os.environ)}
            handle.write(json.dumps(entry) + "\n")
    audio = args.audio[0]
    triggers = Path(audio).stem + " " + args.model
    if "fail" in triggers:
        _fail()
    duration = _duration(audio)
    if "slow" in triggers:
        time.sleep(30)
    out = Path(args.output_dir) / f"{Path(audio).stem}.{args.output_format}"
    out.write_text(json.dumps(_result(args, duration), ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
