"""Live captions' first words: when each turn's first delta would arrive under the drafting
rules before and now, on the bench's recordings, with the real model's drafts.

The session's own VAD (streamed Silero, default `server_vad` settings, fed in 100-ms appends as
`bench/realtime.py` sends them, each 100 ms ahead of the clock) cuts the recording into turns.
For each turn the real model (bundled base, int8 on CPU) drafts the turn's first seconds as each
rule would, and the rule's delta logic picks the first words:

- before: first draft at 0.5 s of turn audio, then every 0.5 s, a 15-s window; a draft's last
  word held back;
- now: first draft at `REALTIME__FIRST_PARTIAL_SECONDS`, then every
  `REALTIME__FIRST_WORDS_INTERVAL_SECONDS` until the first delta, a 10-s window; a last word
  goes out once two drafts agree on it (`whisperx_api.realtime.captions`).

A draft starts once its audio has come and the previous one is done, and takes `--draft-seconds`
(0.24 s with a 15-s window, 0.18 s with a 10-s one by default: an idle 2-core machine's, send
and receive included), so the printed times do not depend on this machine's load: the seconds
after `audio_start_ms` at which the first delta arrives, and the turn audio its draft read. A
turn that starts while the previous turn's final decode runs also waits for that
(`bench/realtime.py --timings` shows it).

    .venv/bin/python bench/first_words.py [--file tests/data/conv2.flac | --long-turns]
        [--draft-seconds 0.24,0.18]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
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
from whisperx_api.pipeline.batching import whisper  # noqa: E402
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


Rule = tuple[float, float, float, Callable[[], HeldBack | Captions]]  # first, every, window, rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA / "conv2.flac")
    parser.add_argument("--long-turns", action="store_true", help="the long-turn recording")
    parser.add_argument(
        "--draft-seconds", default="0.24,0.18", help="a draft's time, before and now (s)"
    )
    args = parser.parse_args()
    audio = long_turn_audio() if args.long_turns else decode_audio(str(args.file))
    settings = RealtimeSettings()
    first, every = settings.first_partial_seconds, settings.first_words_interval_seconds
    rules: dict[str, Rule] = {
        "before": (0.5, 0.5, whisper.DRAFT_MIN_WINDOW_SECONDS, HeldBack),
        "now": (first, every, whisper.FIRST_WORDS_WINDOW_SECONDS, Captions),
    }
    took = dict(zip(rules, (float(x) for x in args.draft_seconds.split(",")), strict=True))
    with tempfile.TemporaryDirectory() as cache:
        backend = FasterWhisperBackend(ModelCatalog("base", cache_dir=Path(cache)), DeviceConfig())
        drafts = Drafts(backend, audio)
        starts = turn_starts(audio)
        name = "long turns" if args.long_turns else args.file.name
        print(f"{name}: {len(starts)} turns; drafts take {args.draft_seconds} s (before, now)")
        print("first delta after audio_start_ms (turn audio its draft read): words")
        print(f"{'start':>7}  " + "  ".join(f"{rule:<36}" for rule in rules))
        found: dict[str, list[float]] = {rule: [] for rule in rules}
        for start in starts:
            cells = []
            for rule, (begin, interval, window, make) in rules.items():
                whisper.FIRST_WORDS_WINDOW_SECONDS = window
                at, length, words = first_delta(drafts, start, begin, interval, took[rule], make())
                found[rule] += [at] if at is not None else []
                cell = f"{at:.2f} s ({length:.1f} s): {words!r}" if at is not None else "-"
                cells.append(f"{cell:<36}")
            print(f"{start / SAMPLE_RATE:>7.2f}  " + "  ".join(cells))
        for rule, ats in found.items():
            print(f"median first delta, {rule}: {fmt(median(ats))} s")


class Drafts:
    """Draft decodes of a recording's turns, as a live session runs them (memoised)."""

    def __init__(self, backend: FasterWhisperBackend, audio: npt.NDArray[np.float32]) -> None:
        self._backend = backend
        self._audio = audio
        self._made: dict[tuple[int, int, float], str] = {}

    def text(self, start: int, length: int) -> str:
        key = (start, length, whisper.FIRST_WORDS_WINDOW_SECONDS)
        if key not in self._made:
            options = TranscriptionOptions(model="base", language="en")
            samples = DecodedAudio(self._audio[start : start + length].astype(np.float32))
            made = self._backend.transcribe(samples, options, StageContext(live=True, draft=True))
            self._made[key] = made.text
        return self._made[key]


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
    drafts: Drafts,
    start: int,
    first: float,
    interval: float,
    took: float,
    rule: HeldBack | Captions,
) -> tuple[float | None, float, str]:
    """When the turn's first delta arrives (s after its start), the turn audio its draft read
    (s), and the delta. Appends end on 100-ms bounds of the stream and arrive 100 ms early."""
    drafted = 0
    free = 0.0  # when the decoder is done with the previous draft
    end = (start // APPEND + 1) * APPEND
    while end - start <= MOST * SAMPLE_RATE:
        arrived = (end - APPEND - start) / SAMPLE_RATE
        if arrived + 0.1 <= free:  # the decoder is busy past the next append: take that too
            end += APPEND
            continue
        length = end - start
        if length >= first * SAMPLE_RATE and length - drafted >= round(interval * SAMPLE_RATE):
            drafted, free = length, max(arrived, free) + took
            if delta := rule.partial(drafts.text(start, length)):
                return free, length / SAMPLE_RATE, delta
        end += APPEND
    return None, 0.0, ""


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
