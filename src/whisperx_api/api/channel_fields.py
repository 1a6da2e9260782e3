"""The multichannel fields every transcription form takes: `multichannel` and `channel_names[]`.

Whether the names match the audio's channels is known only once the upload is probed; that
check happens at submit (a clear 400 before anything is queued).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from whisperx_api.api.label_fields import checked_labels, labels_field
from whisperx_api.domain.audio import MAX_CHANNELS
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.errors import InvalidRequest

MAX_CHANNEL_NAME = 64


class ChannelFields(BaseModel):
    """Per-channel transcription of multichannel recordings (call recorders, interviews)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    multichannel: bool = Field(
        default=False,
        description="Transcribe each audio channel on its own (its own voice detection) and "
        "mark every segment and word with its `channel` (0-based); a segment's speaker is "
        f"`channel_N`. Silent or duplicated channels are skipped with a warning. At most "
        f"{MAX_CHANNELS} channels; mono audio is transcribed as without it.",
    )
    channel_names: tuple[str, ...] = labels_field(
        MAX_CHANNELS,
        MAX_CHANNEL_NAME,
        "With `multichannel=true`: one speaker label per channel, in channel order, replacing "
        "`channel_N` (e.g. `agent`, `customer`). Repeat the field (or send `channel_names[]`).",
    )

    def checked_channel_names(self) -> tuple[str, ...]:
        """The names, once they are usable labels; they need `multichannel`."""
        if self.channel_names and not self.multichannel:
            raise InvalidRequest("channel_names needs multichannel=true.", param="channel_names")
        return checked_labels(self.channel_names, "channel_names", MAX_CHANNELS, MAX_CHANNEL_NAME)

    def check_speakers_format(self, response_format: OutputFormat, diarize: bool) -> None:
        """`diarized_json` needs speakers: found by diarization, or the channels themselves."""
        if response_format is OutputFormat.DIARIZED_JSON and not (diarize or self.multichannel):
            raise InvalidRequest(
                "response_format=diarized_json needs diarize=true (or multichannel=true).",
                param="response_format",
            )
