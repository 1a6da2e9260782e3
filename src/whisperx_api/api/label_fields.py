"""Form fields that carry a list of labels (the names of known speakers, of channels): one shape
in the OpenAPI document, and one check, since each label ends up naming speakers in a result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from whisperx_api.errors import InvalidValue


def labels_field(max_items: int, max_chars: int, description: str) -> Any:
    """A repeated text field of at most `max_items` labels of 1 to `max_chars` characters."""
    return Field(
        default=(),
        json_schema_extra={
            "maxItems": max_items,
            "items": {"type": "string", "minLength": 1, "maxLength": max_chars},
        },
        description=description,
    )


def checked_labels(
    labels: Sequence[str], param: str, max_items: int, max_chars: int
) -> tuple[str, ...]:
    """The labels without surrounding spaces, once there are at most `max_items`, each of 1 to
    `max_chars` printable characters, all different; else a 400 naming `param`."""
    stripped = tuple(label.strip() for label in labels)
    if len(stripped) > max_items:
        raise _bad(param, f"at most {max_items} names, got {len(stripped)}.")
    for label in stripped:
        if not label or len(label) > max_chars or not label.isprintable():
            raise _bad(param, f"each name must be 1 to {max_chars} printable characters.")
    if len(set(stripped)) != len(stripped):
        raise _bad(param, "the names must differ (each labels one speaker).")
    return stripped


def _bad(param: str, reason: str) -> InvalidValue:
    return InvalidValue(f"Invalid '{param}': {reason}", param=param)
