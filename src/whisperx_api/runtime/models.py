"""Model management as the HTTP layer needs it: the names served, loads and unloads per stage,
and who may make the server fetch a model from the hub.

The routes see names and counts only; which backend holds what (a real stage, or the null
stages of an API replica in `MODE=distributed`, which refuse loads) is the runtime's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from whisperx_api.errors import ModelNotFound, PermissionDenied, UnsupportedParameter
from whisperx_api.pipeline.catalog import OPENAI_ALIAS, ModelCatalog
from whisperx_api.pipeline.hub import HubProbe
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import ManagedModels

StageName = Literal["transcription", "alignment", "diarization"]
ALLOW_SETTING = "MODELS__ALLOWED"


class ModelAccess:
    """Who may have a hub model fetched: admin keys (anyone while auth is off), and every key
    for the names in `MODELS__ALLOWED`. A name the server cannot get now is refused at submit."""

    def __init__(
        self, catalog: ModelCatalog, allowed: Iterable[str], hub: HubProbe | None = None
    ) -> None:
        self._catalog = catalog
        self._allowed = frozenset(n.strip() for n in allowed if n.strip())
        self._hub = hub or HubProbe()

    def admit(self, name: str | None, may_download: bool) -> None:
        """Raise unless `name` is servable now for this caller (blocking: it may ask the hub).

        Local names (bundled, `models_dir`, the configured default) always pass; an unknown
        name is `model_not_found`; a hub name not yet cached needs the right to download it
        (`admin_key_required` naming MODELS__ALLOWED) and a hub that answers."""
        canonical = self._catalog.canonical(name)
        if canonical == self._catalog.default or self._catalog.is_local(canonical):
            return
        if not self._catalog.downloadable(canonical):
            self._catalog.resolve(canonical)  # raises model_not_found, listing what is available
            return
        if self._hub.cached(canonical):
            return
        if not (may_download or canonical in self._allowed):
            raise PermissionDenied(
                f"The model '{canonical}' is not on this server; fetching it from the model hub "
                f"needs an admin key, or its name in the server's {ALLOW_SETTING} setting. "
                f"Available models: {self._available()}.",
                param="model",
            )
        if not self._hub.reachable(canonical):
            raise ModelNotFound(
                f"The model '{canonical}' is not on this server and the model hub cannot be "
                f"reached to fetch it. Available models: {self._available()}."
            )

    def _available(self) -> str:
        return ", ".join(self._catalog.available()) or "none"


class RuntimeModels:
    """The models of the runner's stages, by stage name; loads and unloads block (call them
    off the event loop)."""

    def __init__(self, runner: PipelineRunner, access: ModelAccess | None = None) -> None:
        self._runner = runner
        self._access = access

    def served(self) -> list[str]:
        """Transcription models this server can serve now, and the name OpenAI clients send
        for "the default" (`whisper-1`)."""
        transcriber = self._runner.transcriber
        return sorted({*transcriber.available_models(), *transcriber.loaded_models(), OPENAI_ALIAS})

    def load_counts(self) -> dict[str, int]:
        """How often each known transcription model was loaded since start."""
        transcriber = self._runner.transcriber
        names = {*transcriber.loaded_models(), *transcriber.available_models()}
        return {n: transcriber.load_count(n) for n in sorted(names)}

    def loaded(self, stage: StageName) -> list[str]:
        """A stage's loaded models; none when the stage is not configured."""
        backend = self._backend(stage)
        return backend.loaded_models() if backend is not None else []

    def configured(self, stage: StageName) -> bool:
        """The stage has a backend (alignment and diarization may be off)."""
        return self._backend(stage) is not None

    def load(self, stage: StageName, name: str, param: str) -> str:
        """Load `name` now; its canonical name."""
        return self._required(stage, param).load_model(name)

    def unload(self, stage: StageName, name: str, param: str) -> str:
        """Unload `name`; 409 while a job uses it, 404 when it is not loaded."""
        return self._required(stage, param).unload_model(name)

    def admit(self, name: str | None, may_download: bool) -> None:
        """Refuse, at submit, a model name this caller cannot be served now (see ModelAccess)."""
        if self._access is not None:
            self._access.admit(name, may_download)

    def _backend(self, stage: StageName) -> ManagedModels | None:
        backends: dict[StageName, ManagedModels | None] = {
            "transcription": self._runner.transcriber,
            "alignment": self._runner.aligner,
            "diarization": self._runner.diarizer,
        }
        return backends[stage]

    def _required(self, stage: StageName, param: str) -> ManagedModels:
        backend = self._backend(stage)
        if backend is None:
            raise UnsupportedParameter(f"No {stage} backend is configured.", param=param)
        return backend
