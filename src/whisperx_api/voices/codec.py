"""A saved voice as versioned JSON (its embedding, never audio), the same in both stores."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from whisperx_api.domain.voices import SavedVoice

VERSION = 1


def dump_voice(voice: SavedVoice) -> str:
    """JSON for a saved voice."""
    return json.dumps({"v": VERSION, **asdict(voice)}, ensure_ascii=False)


def load_voice(text: str) -> SavedVoice:
    """Inverse of `dump_voice`."""
    data: dict[str, Any] = json.loads(text)
    version = data.pop("v", None)
    if version != VERSION:
        raise ValueError(f"unsupported message version {version!r}")
    data["embedding"] = tuple(float(x) for x in data["embedding"])
    return SavedVoice(**data)
