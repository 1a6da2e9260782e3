"""Where a request's audio comes from: an uploaded `file`, or a URL in `audio_url`.

Either way the routes get one readable file and hand it to the same `submit`, so a downloaded
file is staged, probed and stored exactly like an upload (in both modes: the API downloads,
workers need no network access).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, BinaryIO

from starlette.datastructures import UploadFile

from whisperx_api.api.url_fetch import PARAM, FetchLimits, download
from whisperx_api.config import Settings
from whisperx_api.errors import AudioTooLong, InvalidRequest, PayloadTooLarge, WhisperXApiError
from whisperx_api.executors import run_io

if TYPE_CHECKING:
    from whisperx_api.runtime.base import Runtime


def check_one_source(file: UploadFile | None, audio_url: str | None) -> None:
    """Exactly one of `file` and `audio_url`."""
    if file is not None and audio_url is not None:
        raise InvalidRequest("Send either 'file' or 'audio_url', not both.", param="audio_url")
    if file is None and audio_url is None:
        raise InvalidRequest("Missing required parameter: 'file' (or 'audio_url').", param="file")


def fetch_limits(settings: Settings) -> FetchLimits:
    """The download bounds for `audio_url`, from FETCH__* and MAX_FILE_SIZE."""
    fetch = settings.fetch
    return FetchLimits(
        max_bytes=settings.limits.max_file_size,
        connect_timeout=fetch.connect_timeout_seconds,
        read_timeout=fetch.read_timeout_seconds,
        total_timeout=fetch.total_timeout_seconds,
        max_redirects=fetch.max_redirects,
        allow_private=fetch.allow_private_networks,
    )


@asynccontextmanager
async def audio_source(
    runtime: Runtime,
    settings: Settings,
    file: UploadFile | None,
    audio_url: str | None,
) -> AsyncIterator[BinaryIO]:
    """The request's audio as a file; errors about downloaded audio name `audio_url`."""
    check_one_source(file, audio_url)
    if file is not None:
        runtime.check_upload_size(file.size)
        yield file.file
        return
    assert audio_url is not None
    with tempfile.TemporaryFile(prefix="whisperx-url-") as spool:
        await download(audio_url, spool, fetch_limits(settings))
        spool.seek(0)
        seconds = await run_io(runtime.declared_seconds, spool)
        _check_declared_duration(seconds, settings.limits.max_audio_seconds)
        try:
            yield spool
        except (InvalidRequest, PayloadTooLarge) as exc:
            _blame_url(exc)
            raise


def _check_declared_duration(seconds: float | None, max_seconds: float) -> None:
    """Refuse a download whose header already says it is too long (the worker checks again)."""
    if seconds is not None and seconds > max_seconds:
        error = AudioTooLong(
            f"The audio at 'audio_url' lasts {seconds:.0f} s; the maximum is {max_seconds:g} s."
        )
        error.param = PARAM
        raise error


def _blame_url(exc: WhisperXApiError) -> None:
    """Audio checks name `file`; for downloaded audio the culprit is `audio_url`."""
    if exc.param == "file":
        exc.param = PARAM
