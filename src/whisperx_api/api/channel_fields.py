"""The multichannel fields every transcription form takes: `multichannel` and `channel_names[]`.

Whether the names match the audio's channels is known only once the upload is probed; that
check happens at submit (a clear 400 before anything is queued).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from whisperx_api.domain.audio import MAX_CHANNELS
from whisperx_api.errors import InvalidRequest, InvalidValue

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
    channel_names: tuple[str, ...] = Field(
        default=(),
        json_schema_extra={
            "maxItems": MAX_CHANNELS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL_NAME},
        },
        description="With `multichannel=true`: one speaker label per channel, in channel "
        "order, replacing `channel_N` (e.g. `agent`, `customer`). Repeat the field (or send "
        "`channel_names[]`).",
    )

    def checked_channel_names(self) -> tuple[str, ...]:
        """The names, once they are usable labels; they need `multichannel`."""
        names = tuple(name.strip() for name in self.channel_names)
        if names and not self.multichannel:
            raise InvalidRequest("channel_names needs multichannel=true.", param="channel_names")
        if len(names) > MAX_CHANNELS:
            raise _bad(f"at most {MAX_CHANNELS} names (one per channel), got {len(names)}.")
        for name in names:
            if not name or len(name) > MAX_CHANNEL_NAME or not name.isprintable():
                raise _bad(f"each name must be 1 to {MAX_CHANNEL_NAME} printable characters.")
        if len(set(names)) != len(names):
            raise _bad("the names must differ (each labels one channel).")
        return names


def _bad(reason: str) -> InvalidValue:
    return InvalidValue(f"Invalid 'channel_names': {reason}", param="channel_names")
