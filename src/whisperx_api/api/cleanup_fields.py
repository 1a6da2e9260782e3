"""The clean-up fields every transcription form takes: `replacements` and `redact[]`.

`replacements` is a JSON object `{"from": "to"}` as text (curl), or one form field per entry,
`replacements[from]=to` (how OpenAI's SDKs encode an object in `extra_body`). Its size is
bounded so one request cannot make matching slow: at most `MAX_REPLACEMENTS` entries, each
`from` at most `MAX_FROM_CHARS` characters and each `to` at most `MAX_TO_CHARS`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from whisperx_api.api.forms import COMMA_SEPARATED
from whisperx_api.domain.cleanup import CleanupOptions, Redaction
from whisperx_api.errors import InvalidValue

MAX_REPLACEMENTS = 100
MAX_FROM_CHARS = 100
MAX_TO_CHARS = 200
MAX_REPLACEMENTS_JSON = 32_768  # characters of the JSON text
_PARAM = "replacements"

RedactKind = Literal["email", "phone", "card_number", "iban", "ssn"]
Replacements = Annotated[str | dict[str, str], WithJsonSchema({"type": "string"})]


class CleanupFields(BaseModel):
    """Find-and-replace and redaction, applied to the finished transcript in every format."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    replacements: Replacements | None = Field(
        default=None,
        description='Find and replace: a JSON object `{"from": "to"}`, e.g. '
        '`{"acme corp": "ACME Corp.", "um": ""}`. Whole words and phrases, case-insensitive, '
        "the longest first; an empty `to` removes the words. Also sent as one field per entry, "
        f"`replacements[from]=to`. At most {MAX_REPLACEMENTS} entries, `from` up to "
        f"{MAX_FROM_CHARS} characters, `to` up to {MAX_TO_CHARS}.",
    )
    redact: Annotated[tuple[RedactKind, ...], COMMA_SEPARATED] = Field(
        default=(),
        description="Personal data to hide: any of `email`, `phone`, `card_number`, `iban`, "
        "`ssn`. Each match becomes `[EMAIL]`, `[PHONE]`, `[CARD_NUMBER]`, `[IBAN]` or `[SSN]`, "
        "one word with the times of the words it replaces. Repeat the field (or send "
        "`redact[]`) for several kinds.",
    )

    def cleanup_options(self) -> CleanupOptions:
        """The clean-up this request asks for; raises `InvalidValue` on a bad `replacements`."""
        kinds = tuple(dict.fromkeys(Redaction(kind) for kind in self.redact))
        return CleanupOptions(replacements=parse_replacements(self.replacements), redact=kinds)


def parse_replacements(raw: str | dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    """(from, to) pairs from JSON text or member fields, checked against the bounds."""
    if raw is None:
        return ()
    data = _decoded(raw) if isinstance(raw, str) else raw
    if len(data) > MAX_REPLACEMENTS:
        raise _bad(f"at most {MAX_REPLACEMENTS} entries are allowed, got {len(data)}.")
    pairs: dict[str, tuple[str, str]] = {}
    for source, target in data.items():
        if not isinstance(target, str):
            raise _bad(f"the replacement for {source!r} must be a string.")
        key = _checked(source, target)
        if key in pairs:
            raise _bad(f"{source!r} and {pairs[key][0]!r} differ only in case or spacing.")
        pairs[key] = (" ".join(source.split()), target)
    return tuple(pairs.values())


def _decoded(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_REPLACEMENTS_JSON:
        raise _bad(f"the JSON text may be at most {MAX_REPLACEMENTS_JSON} characters.")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _bad('must be a JSON object of strings, e.g. {"acme corp": "ACME Corp."}.')
    return data


def _checked(source: str, target: str) -> str:
    """The phrase's matching key, once `source` and `target` are within the bounds."""
    if not any(c.isalnum() for c in source):
        raise _bad(f"{source!r} has no letter or digit to match.")
    if len(source) > MAX_FROM_CHARS:
        raise _bad(f"{source[:20]!r}... is longer than {MAX_FROM_CHARS} characters.")
    if len(target) > MAX_TO_CHARS:
        raise _bad(f"the replacement for {source!r} is longer than {MAX_TO_CHARS} characters.")
    if any(not c.isprintable() for c in source + target):
        raise _bad(f"the entry for {source!r} holds a control character or line break.")
    return " ".join(source.lower().split())


def _bad(reason: str) -> InvalidValue:
    return InvalidValue(f"Invalid 'replacements': {reason}", param=_PARAM)
