"""The speaker model behind saved voices: decode a clip under the job limits, embed it.

Embedded mode shares the pipeline's diarization backend (and its model cache). An API replica in
MODE=distributed holds no job models, so it builds its own diarization backend for enrolment;
its speaker model loads at the first enrolment and is released after the usual idle time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO

from whisperx_api.errors import InvalidRequest, PayloadTooLarge, UnsupportedParameter
from whisperx_api.pipeline.stage import DiarizationBackend
from whisperx_api.pipeline.stages.decode import decode_audio

MIN_VOICE_SECONDS = 2.0
MAX_VOICE_SECONDS = 30.0
_COPY_CHUNK = 1 << 16


class DiarizerEmbedder:
    """`voices.ports.VoiceEmbedder` over a diarization backend's speaker model."""

    def __init__(
        self,
        diarizer: DiarizationBackend | None,
        max_bytes: int,
        max_decode_seconds: float | None = None,
    ) -> None:
        self._diarizer = diarizer
        self._max_bytes = max_bytes
        self._max_decode_seconds = max_decode_seconds

    def embed_clip(self, source: BinaryIO) -> tuple[tuple[float, ...], float]:
        if self._diarizer is None:
            raise UnsupportedParameter(
                "Speaker diarization is not configured on this server, so voices cannot be saved.",
                param="file",
            )
        with tempfile.TemporaryDirectory(prefix="whisperx-voice-") as folder:
            path = Path(folder) / "clip"
            self._copy_bounded(source, path)
            try:
                audio = decode_audio(
                    path, MAX_VOICE_SECONDS + 0.5, time_limit=self._max_decode_seconds
                )
            except InvalidRequest as exc:
                raise InvalidRequest(
                    f"The clip is not audio of at most {MAX_VOICE_SECONDS:g} s: {exc.message}",
                    param="file",
                ) from exc
        if not MIN_VOICE_SECONDS <= audio.duration <= MAX_VOICE_SECONDS + 0.05:
            raise InvalidRequest(
                f"The clip lasts {audio.duration:.1f} s; a voice needs "
                f"{MIN_VOICE_SECONDS:g} to {MAX_VOICE_SECONDS:g} s.",
                param="file",
            )
        return self._diarizer.embed_voices([audio])[0], audio.duration

    def _copy_bounded(self, source: BinaryIO, path: Path) -> None:
        """The clip on disk (the decoder reads files), refusing more than `max_bytes`."""
        written = 0
        with path.open("wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                written += len(chunk)
                if written > self._max_bytes:
                    raise PayloadTooLarge(f"The file is over the limit of {self._max_bytes} bytes.")
                out.write(chunk)
        if written == 0:
            raise InvalidRequest("The clip is empty.", param="file")
