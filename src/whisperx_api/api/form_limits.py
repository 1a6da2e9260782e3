"""Form text fields bounded while the body is parsed, by field name.

Starlette's parsers take one size for every text field and keep each in memory, so a limit
large enough for a voice reference (seconds of audio as a data URL) let any junk field take as
much: 32 fields cost hundreds of megabytes before the form was even validated. Here an ordinary
field gets `LIMITS__MAX_FIELD_BYTES`; only the voice-reference fields get
`LIMITS__MAX_VOICE_REFERENCE_BYTES`, and all of them together at most `MAX_KNOWN_SPEAKERS`
times that. The check runs as each piece of a field arrives, so nothing past a limit is ever
buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from whisperx_api.api.openai_extras import MAX_KNOWN_SPEAKERS, REFERENCE_FIELDS
from whisperx_api.errors import InvalidValue

# A field's name and the rest of a URL-encoded pair, on top of its value.
_NAME_ALLOWANCE = 1024


@dataclass(frozen=True, slots=True)
class FieldLimits:
    """Bytes one text field may hold: a voice reference, or any other field."""

    field_bytes: int
    reference_bytes: int

    def for_field(self, name: str) -> int:
        return self.reference_bytes if name in REFERENCE_FIELDS else self.field_bytes


class _Refusal:
    """The field a parser refused, kept beside the parser's own exception (which Starlette's
    parser needs, to close spooled files) so that the answer can name it."""

    def __init__(self) -> None:
        self.field: str | None = None

    def too_large(self, name: str, limit: int) -> MultiPartException:
        kind = "VOICE_REFERENCE" if name in REFERENCE_FIELDS else "FIELD"
        self.field = name
        return MultiPartException(
            f"The form field '{name}' is larger than the limit of {limit} bytes "
            f"(LIMITS__MAX_{kind}_BYTES)."
        )


class _ReferenceTotal:
    """Bytes of all voice references together: at most `MAX_KNOWN_SPEAKERS` full ones."""

    def __init__(self, limits: FieldLimits, refusal: _Refusal) -> None:
        self._left = MAX_KNOWN_SPEAKERS * limits.reference_bytes
        self._refusal = refusal

    def take(self, name: str, size: int) -> None:
        if name in REFERENCE_FIELDS:
            self._left -= size
            if self._left < 0:
                self._refusal.field = "known_speaker_references"
                raise MultiPartException(
                    f"The known_speaker_references together are larger than {MAX_KNOWN_SPEAKERS} "
                    "times LIMITS__MAX_VOICE_REFERENCE_BYTES."
                )


class LimitedMultiPartParser(MultiPartParser):
    """`MultiPartParser` with a per-name limit on text fields."""

    def __init__(
        self, *args: object, field_limits: FieldLimits, refusal: _Refusal, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._field_limits = field_limits
        self._refusal = refusal
        self._references = _ReferenceTotal(field_limits, refusal)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is None:
            limit = self._field_limits.for_field(part.field_name)
            if len(part.data) + (end - start) > limit:
                raise self._refusal.too_large(part.field_name, limit)
            self._references.take(part.field_name, end - start)
        super().on_part_data(data, start, end)


class LimitedFormParser(FormParser):
    """`FormParser` (URL-encoded bodies) with the same per-name limits."""

    def __init__(
        self, *args: object, field_limits: FieldLimits, refusal: _Refusal, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._field_limits = field_limits
        self._refusal = refusal
        self._references = _ReferenceTotal(field_limits, refusal)
        self._value_bytes = 0

    def on_field_start(self) -> None:
        super().on_field_start()
        self._value_bytes = 0

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        name = unquote_plus(self._field_name.decode("latin-1"))
        self._references.take(name, end - start)
        self._value_bytes += end - start
        limit = self._field_limits.for_field(name)
        if self._value_bytes > limit:
            raise self._refusal.too_large(name, limit)
        super().on_field_data(data, start, end)


@asynccontextmanager
async def limited_form(
    request: Request, limits: FieldLimits, *, max_files: int, max_fields: int
) -> AsyncIterator[FormData]:
    """The request's form (multipart or URL-encoded) under `limits`; its spooled upload files
    are closed (deleted) on exit. A field past its limit is a 400 naming the field."""
    form = await _parse(request, limits, max_files=max_files, max_fields=max_fields)
    try:
        yield form
    finally:
        await form.close()


async def _parse(
    request: Request, limits: FieldLimits, *, max_files: int, max_fields: int
) -> FormData:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    largest = max(limits.field_bytes, limits.reference_bytes) + _NAME_ALLOWANCE
    refusal = _Refusal()
    try:
        async with aclosing(request.stream()) as stream:
            if media == "multipart/form-data":
                parser: MultiPartParser | FormParser = LimitedMultiPartParser(
                    request.headers,
                    stream,
                    max_files=max_files,
                    max_fields=max_fields,
                    max_part_size=largest,
                    field_limits=limits,
                    refusal=refusal,
                )
            elif media == "application/x-www-form-urlencoded":
                parser = LimitedFormParser(
                    request.headers,
                    stream,
                    max_fields=max_fields,
                    max_part_size=largest,
                    field_limits=limits,
                    refusal=refusal,
                )
            else:
                return FormData()
            return await parser.parse()
    except MultiPartException as exc:
        if refusal.field is not None:
            raise InvalidValue(exc.message, param=refusal.field) from None
        raise HTTPException(status_code=400, detail=exc.message) from None
