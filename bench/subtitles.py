"""Subtitle cue statistics per recording: this server's default srt vs faster-whisper's segments.

For every committed recording with known utterance times (the two- and four-voice calls, the
recorded prompts, the synthetic sentences, the narrated tour), transcribes it in-process through
the real pipeline (bundled base model, CPU, default settings) and renders the default srt; then
transcribes it with faster-whisper's own `WhisperModel.transcribe` (sequential, no batching,
its default timestamp segments) and treats each segment as a cue. Prints, for both: the cue
count, the share of cues lasting at most 7 s, fitting two lines of 42 characters (decoder
segments are wrapped greedily), reading at most 20 characters a second, and the share of
reference utterance starts that have a cue starting within 0.5 s. Also prints the diarized srt
of each call. Asserts nothing.

    .venv/bin/python bench/subtitles.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.cue_stats import (  # noqa: E402
    HEADER,
    RECORDINGS,
    cue_stats,
    reference_starts,
    srt_cues,
)

from whisperx_api.config import Settings  # noqa: E402
from whisperx_api.domain.formats import OutputFormat  # noqa: E402
from whisperx_api.domain.options import TranscriptionOptions  # noqa: E402
from whisperx_api.formatters import render  # noqa: E402
from whisperx_api.pipeline.catalog import ModelCatalog  # noqa: E402
from whisperx_api.pipeline.registry import default_registry  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.runtime.embedded import build_runner  # noqa: E402

CALLS = {"conv2": 2, "conv4": 4}


def main() -> None:
    from faster_whisper import WhisperModel

    with tempfile.TemporaryDirectory() as name:
        cache = Path(name) / "cache"
        settings = Settings(whisper={"cache_dir": cache, "model": "base"})
        runner = build_runner(settings, default_registry())
        model_dir = ModelCatalog("base", cache_dir=cache).resolve("base").source
        sequential = WhisperModel(model_dir, device="cpu", compute_type="int8")
        ours: list[str] = []
        theirs: list[str] = []
        diarized: list[str] = []
        try:
            for recording in RECORDINGS:
                path = DATA / f"{recording}.flac"
                starts = reference_starts(recording)
                options = runner.check(TranscriptionOptions(model="base", language="en"))
                transcript = runner.run(path, options, StageContext())
                cues = srt_cues(render(transcript, OutputFormat.SRT).body)
                ours.append(cue_stats(cues, starts).row(recording))
                segments, _ = sequential.transcribe(str(path), language="en")
                plain = [(s.start, s.end, s.text.strip()) for s in segments]
                theirs.append(cue_stats(plain, starts, laid_out=False).row(recording))
                if recording in CALLS:
                    count = CALLS[recording]
                    speakers = TranscriptionOptions(
                        model="base",
                        language="en",
                        diarize=True,
                        min_speakers=count,
                        max_speakers=count,
                    )
                    transcript = runner.run(path, runner.check(speakers), StageContext())
                    cues = srt_cues(render(transcript, OutputFormat.SRT).body)
                    diarized.append(cue_stats(cues, starts).row(f"{recording} (diarized)"))
        finally:
            runner.close()
    print("whisperx-api default srt (bundled base, CPU)")
    print(HEADER)
    print("\n".join(ours + diarized))
    print()
    print("faster-whisper WhisperModel.transcribe segments (sequential, no batching)")
    print(HEADER)
    print("\n".join(theirs))


if __name__ == "__main__":
    main()
