"""Live captions' first words: how much of each turn's audio its first delta waits for, under
the drafting rules before and now, on the bench's recordings.

The session's own VAD (streamed Silero, default `server_vad` settings, fed in 100-ms appends as
`bench/realtime.py` sends them) cuts the recording into turns. For each turn the real model
(bundled base, int8 on CPU) drafts the turn's first seconds at the lengths each rule would, and
the rule's delta logic picks the first words:

- before: first draft at 0.5 s of turn audio, then every 0.5 s; a draft's last word held back;
- now: first draft at `REALTIME__FIRST_PARTIAL_SECONDS`, then every
  `REALTIME__FIRST_WORDS_INTERVAL_SECONDS` until the first delta; a last word goes out once two
  drafts agree on it (`whisperx_api.realtime.captions`).

Drafts are taken as not delayed by other decodes (an idle machine, no previous turn's final
decode still running), so the printed turn audio holds whatever the load: a first delta arrives
that long after `audio_start_ms`, less the 100 ms that a sender's append runs ahead of the clock,
plus one draft's decode time (its median here is printed, measured under this machine's load)
and any wait behind the previous turn's final decode (`bench/realtime.py --timings` shows it).

    .venv/bin/python bench/first_words.py [--file tests/data/conv2.flac | --long-turns]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faster_whisper.audio import decode_audio  # noqa: E402
from tests.audio import DATA  # noqa: E402
from tests.long_turn import long_turn_audio  # noqa: E402

from whisperx_api.config import RealtimeSettings  # noqa: E402
from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio  # noqa: E402
from whisperx_api.domain.options import TranscriptionOptions  # noqa: E402
from whisperx_api.pipeline.catalog import ModelCatalog  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend  # noqa: E402
from whisperx_api.pipeline.stages.silero_stream import SileroStream  # noqa: E402
from whisperx_api.realtime.captions import Captions  # noqa: E402
from whisperx_api.realtime.session_config import ServerVad  # noqa: E402
from whisperx_api.realtime.turns import TurnDetector  # noqa: E402

APPEND = SAMPLE_RATE // 10  # 100 ms
MOST = 3.0  # seconds of a turn drafted at most


class HeldBack:
    """The delta rule before: a draft's last word always waits."""

    def __init__(self) -> None:
        self._sent = 0

    def partial(self, text: str) -> str:
        words = text.split()
        fresh = words[self._sent : max(len(words) - 1, 0)]
        self._sent += len(fresh)
        return " ".join(fresh)


Rule = tuple[float, float, Callable[[], HeldBack | Captions]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA / "conv2.flac")
    parser.add_argument("--long-turns", action="store_true", help="the long-turn recording")
    args = parser.parse_args()
    audio = long_turn_audio() if args.long_turns else decode_audio(str(args.file))
    settings = RealtimeSettings()
    rules: dict[str, Rule] = {
        "before": (0.5, 0.5, HeldBack),
        "now": (settings.first_partial_seconds, settings.first_words_interval_seconds, Captions),
    }
    with tempfile.TemporaryDirectory() as cache:
        backend = FasterWhisperBackend(ModelCatalog("base", cache_dir=Path(cache)), DeviceConfig())
        drafts = Drafts(backend, audio)
        starts = turn_starts(audio)
        name = "long turns" if args.long_turns else args.file.name
        print(f"{name}: {len(starts)} turns; load average {os.getloadavg()[0]:.2f} on 2 CPUs")
        print(f"{'start':>7}  " + "  ".join(f"{rule:<34}" for rule in rules))
        found: dict[str, list[float]] = {rule: [] for rule in rules}
        for start in starts:
            cells = []
            for rule, (first, interval, make) in rules.items():
                at, words = first_delta(drafts, start, first, interval, make())
                found[rule] += [at] if at is not None else []
                cells.append(f"{fmt(at):>5} s {words!r:<26}" if at else f"{'-':<34}")
            print(f"{start / SAMPLE_RATE:>7.2f}  " + "  ".join(cells))
        for rule, ats in found.items():
            print(f"median turn audio at the first delta, {rule}: {fmt(median(ats))} s")
        print(f"median draft decode: {statistics.median(drafts.times):.2f} s")


class Drafts:
    """Draft decodes of a recording's turns, as a live session runs them (memoised)."""

    def __init__(self, backend: FasterWhisperBackend, audio: npt.NDArray[np.float32]) -> None:
        self._backend = backend
        self._audio = audio
        self._made: dict[tuple[int, int], str] = {}
        self.times: list[float] = []

    def text(self, start: int, length: int) -> str:
        if (start, length) not in self._made:
            options = TranscriptionOptions(model="base", language="en")
            samples = DecodedAudio(self._audio[start : start + length].astype(np.float32))
            began = time.perf_counter()
            made = self._backend.transcribe(samples, options, StageContext(live=True, draft=True))
            self.times.append(time.perf_counter() - began)
            self._made[(start, length)] = made.text
        return self._made[(start, length)]


def turn_starts(audio: npt.NDArray[np.float32]) -> list[int]:
    """Where the session's VAD starts turns (samples), fed in 100-ms appends."""
    vad = SileroStream()
    detector = TurnDetector(ServerVad(), vad.window, 30 * SAMPLE_RATE)
    starts = []
    for begin in range(0, len(audio), APPEND):
        edges = detector.feed(vad.feed(audio[begin : begin + APPEND].astype(np.float32)))
        starts += [edge.sample for edge in edges if edge.kind == "start"]
    return starts


def first_delta(
    drafts: Drafts, start: int, first: float, interval: float, rule: HeldBack | Captions
) -> tuple[float | None, str]:
    """The turn audio (s) at the draft whose delta came first, and that delta."""
    drafted = 0
    end = (start // APPEND + 1) * APPEND  # appends end on 100-ms bounds of the stream
    while end - start <= MOST * SAMPLE_RATE:
        length = end - start
        if length >= first * SAMPLE_RATE and length - drafted >= round(interval * SAMPLE_RATE):
            drafted = length
            if delta := rule.partial(drafts.text(start, length)):
                return length / SAMPLE_RATE, delta
        end += APPEND
    return None, ""


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
