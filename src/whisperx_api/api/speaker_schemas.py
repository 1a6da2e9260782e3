"""Wire models of the saved-voice registry (`/v1/speakers`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from whisperx_api.api.schemas import AUDIO_URL_DOC, Upload, Url
from whisperx_api.domain.voices import SavedVoice
from whisperx_api.errors import InvalidRequest

_ENROL_SOURCES: dict[str, Any] = {
    "oneOf": [
        {"required": ["name", "file"]},
        {"required": ["name", "audio_url"]},
        {"required": ["name", "job_id", "speaker"]},
    ]
}


class SpeakerForm(BaseModel):
    """`POST /v1/speakers`: a name and one source of the voice."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        arbitrary_types_allowed=True,
        json_schema_extra=_ENROL_SOURCES,
    )

    name: str = Field(default="", max_length=200, description="The speaker's name, 1-64 chars.")
    file: Upload | None = Field(
        default=None, description="2 to 30 s of this voice alone, in any format the decoder reads."
    )
    audio_url: Url | None = Field(default=None, description=AUDIO_URL_DOC)
    job_id: str | None = Field(
        default=None,
        max_length=64,
        description="A finished job of this key, run with `diarize=true` and "
        "`speaker_embeddings=true`, whose speaker to save.",
    )
    speaker: str | None = Field(
        default=None, max_length=64, description="With `job_id`: the label (`SPEAKER_00`)."
    )

    def job_speaker(self) -> tuple[str, str] | None:
        """(job_id, speaker) when the voice comes from a finished job, else None (a clip);
        checks that the sources do not mix."""
        if self.job_id is None and self.speaker is None:
            return None
        if self.job_id is None or self.speaker is None:
            missing = "job_id" if self.job_id is None else "speaker"
            raise InvalidRequest(
                f"'job_id' and 'speaker' go together; add '{missing}'.", param=missing
            )
        if self.file is not None or self.audio_url is not None:
            raise InvalidRequest(
                "Send a clip ('file' or 'audio_url') or 'job_id' with 'speaker', not both.",
                param="job_id",
            )
        return self.job_id, self.speaker


class SpeakerView(BaseModel):
    """A saved voice as the API shows it (the embedding stays inside)."""

    id: str = Field(description="`spk_...`")
    object: Literal["speaker"] = "speaker"
    name: str
    created_at: int = Field(description="Unix seconds.")
    seconds: float = Field(description="How much speech the voice was computed from.")

    @classmethod
    def of(cls, voice: SavedVoice) -> SpeakerView:
        return cls(id=voice.id, name=voice.name, created_at=voice.created_at, seconds=voice.seconds)


class SpeakerList(BaseModel):
    """`GET /v1/speakers`: this key's voices, oldest first."""

    object: Literal["list"] = "list"
    data: list[SpeakerView]


class SpeakerDeleted(BaseModel):
    """`DELETE /v1/speakers/{id}`."""

    id: str
    object: Literal["speaker"] = "speaker"
    deleted: Literal[True] = True


class SpeakersDeleted(BaseModel):
    """`DELETE /v1/speakers`: every voice this key had, now forgotten."""

    object: Literal["list"] = "list"
    data: list[SpeakerDeleted]
