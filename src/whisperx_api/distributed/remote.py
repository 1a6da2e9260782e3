"""Stand-ins for the stages on an API replica in `MODE=kafka`, where the workers hold the models.

They check requests exactly as the real stages would at submit time (model names, whether a stage
is configured) and list the servable models, but load nothing and import no inference library.
Running a job or managing models here is a mistake, answered with a clear 400.
"""

from __future__ import annotations

from collections.abc import Sequence

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.speakers import Diarization
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import UnsupportedParameter
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext

_ON_WORKERS = "In MODE=kafka the workers hold the models; this API replica loads none."


class RemoteStage:
    """A configured alignment or diarization stage whose models live on the workers."""

    def __init__(self, param: str) -> None:
        self._param = param

    def loaded_models(self) -> list[str]:
        return []

    def load_model(self, name: str) -> str:
        raise UnsupportedParameter(_ON_WORKERS, param=self._param)

    def unload_model(self, name: str) -> str:
        raise UnsupportedParameter(_ON_WORKERS, param=self._param)

    def close(self) -> None:
        """Nothing is held."""

    def align(self, transcript: Transcript, audio: DecodedAudio, ctx: StageContext) -> Transcript:
        raise UnsupportedParameter(_ON_WORKERS)

    def check_request(self, request: DiarizationRequest) -> None:
        """The workers' own configuration decides (a token may be set only there)."""

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        raise UnsupportedParameter(_ON_WORKERS)

    @property
    def voice_threshold(self) -> float:
        raise UnsupportedParameter(_ON_WORKERS)

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        raise UnsupportedParameter(_ON_WORKERS)


class RemoteTranscriber(RemoteStage):
    """Resolves model names from the configured catalog; transcription happens on workers."""

    def __init__(self, catalog: ModelCatalog) -> None:
        super().__init__("model")
        self._catalog = catalog

    def available_models(self) -> list[str]:
        return self._catalog.available()

    def resolve_model(self, name: str) -> str:
        return self._catalog.known(name)

    def check_device(self, device: str | None, device_index: int | None) -> None:
        """Devices belong to the worker that runs the job; it checks them there."""

    def check_options(self, options: TranscriptionOptions) -> None:
        """The workers' backend checks what only it cannot take, and fails the job at once."""

    def load_count(self, name: str) -> int:
        return 0

    def transcribe(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        raise UnsupportedParameter(_ON_WORKERS)
