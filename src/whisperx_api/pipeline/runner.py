"""The one place the stage order lives: decode -> (VAD + transcribe) -> align -> diarize."""

from __future__ import annotations

from pathlib import Path

from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.pipeline.stage import StageContext, TranscriptionBackend
from whisperx_api.pipeline.stages.decode import decode_audio, probe_audio


class PipelineRunner:
    """Runs every stage for one job; blocking, so callers run it off the event loop."""

    def __init__(self, transcriber: TranscriptionBackend, max_audio_seconds: float) -> None:
        self.transcriber = transcriber
        self._max_seconds = max_audio_seconds

    def probe(self, audio_path: Path) -> None:
        """Reject obviously bad uploads before they are queued."""
        probe_audio(audio_path)

    def run(self, audio_path: Path, options: TranscriptionOptions, ctx: StageContext) -> Transcript:
        """Decode, transcribe (VAD-batched, with word timings when asked) and return."""
        audio = decode_audio(audio_path, self._max_seconds)
        ctx.check_cancelled()
        ctx.report(0.0)
        transcript = self.transcriber.transcribe(audio, options, ctx)
        ctx.report(1.0)
        return transcript
