"""Saved voices: a speaker's name and the embedding of a clip of their voice, kept per API key.

Only the embedding is kept (never the audio): it is what matching needs, and a clip of someone's
voice is more sensitive than a vector that only the diarizer's own speaker model can compare.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

VOICE_ID_PREFIX = "spk_"
MAX_KNOWN_SPEAKER_IDS = 50  # saved voices one transcription or live session may name
_VOICE_ID = re.compile(r"spk_[0-9a-f]{24}")
ANONYMOUS_OWNER = ""
"""The owner of voices saved while authentication is off."""


def new_voice_id() -> str:
    """A fresh, unguessable voice id."""
    return VOICE_ID_PREFIX + secrets.token_hex(12)


def is_voice_id(text: str) -> bool:
    """Whether `text` has the shape of a voice id (checked before it names a stored object)."""
    return _VOICE_ID.fullmatch(text) is not None


def owner_key(owner: str | None) -> str:
    """The stored owner of a caller (the key's fingerprint; one shared owner without auth)."""
    return ANONYMOUS_OWNER if owner is None else owner


@dataclass(frozen=True, slots=True)
class SavedVoice:
    """One enrolled voice. `seconds` is how much audio the embedding was computed from."""

    id: str
    owner: str
    name: str
    created_at: int
    seconds: float
    embedding: tuple[float, ...] = field(repr=False)
