"""What the voice registry needs: where voices are kept, a speaker model, finished jobs."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from whisperx_api.domain.job import JobRecord
from whisperx_api.domain.transcript import Transcript
from whisperx_api.domain.voices import SavedVoice


class VoiceStore(Protocol):
    """Saved voices per owner: SQLite (embedded) or S3 (Kafka mode)."""

    def add_voice(self, voice: SavedVoice, limit: int) -> bool:
        """Save a voice unless its owner already has `limit` (False then; nothing written)."""

    def get_voice(self, owner: str, voice_id: str) -> SavedVoice | None:
        """The owner's voice; another owner's id reads as none."""

    def list_voices(self, owner: str) -> list[SavedVoice]:
        """The owner's voices, oldest first."""

    def delete_voice(self, owner: str, voice_id: str) -> bool:
        """Remove the owner's voice; False when the owner has no such voice."""

    def delete_voices(self, owner: str) -> list[str]:
        """Remove all of the owner's voices; the ids removed."""

    def close(self) -> None: ...


class VoiceEmbedder(Protocol):
    """Turns a clip of one voice into the diarizer's speaker embedding (blocking: decoding and
    a speaker model; callers run it off the event loop)."""

    def embed_clip(self, source: BinaryIO) -> tuple[tuple[float, ...], float]:
        """The embedding of the clip and its length in seconds; InvalidRequest for a clip that
        is not audio or not 2-30 s long."""
        ...


class JobResults(Protocol):
    """Finished jobs, to enrol a speaker from (the job service)."""

    async def read_result(self, job_id: str, owner: str | None) -> tuple[JobRecord, Transcript]:
        """A completed job of `owner` and its transcript; NotFound or not ready otherwise."""
        ...
