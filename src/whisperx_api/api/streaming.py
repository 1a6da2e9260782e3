"""`stream=true`: a job's text as server-sent events in OpenAI's `transcript.text.*` shape.

A `transcript.text.delta` carries the text the worker has decoded since the last event (the
segments done so far, joined as the `json` format joins them); `transcript.text.done` carries
the whole text and the usage. The deltas add up to the final text. Once the stream has begun
an error can no longer change the status code, so it arrives as an event holding OpenAI's error
envelope, which the official SDKs raise.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi.responses import StreamingResponse

from whisperx_api.api.errors import error_status
from whisperx_api.domain.job import JobRecord
from whisperx_api.errors import WhisperXApiError
from whisperx_api.formatters.openai_json import usage
from whisperx_api.jobs.service import Disconnected, JobService

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def text_event_stream(
    jobs: JobService, record: JobRecord, timeout: float | None, disconnected: Disconnected
) -> StreamingResponse:
    """The response for a just-submitted job whose client asked for `stream=true`."""
    return StreamingResponse(
        text_events(jobs, record, timeout, disconnected),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def text_events(
    jobs: JobService, record: JobRecord, timeout: float | None, disconnected: Disconnected
) -> AsyncIterator[bytes]:
    """Deltas while the job runs, then `done` (or an error event); the job is then gone."""
    owner = record.spec.owner
    sent = ""
    settled = False
    try:
        async with aclosing(jobs.watch(record.id, owner, timeout, disconnected)) as records:
            async for current in records:
                grown = _growth(sent, current.text_so_far)
                if grown:
                    sent += grown
                    yield _event({"type": "transcript.text.delta", "delta": grown})
        transcript = (await jobs.wait_for_result(record, timeout)).transcript
        rest = _growth(sent, transcript.text)
        if rest:
            yield _event({"type": "transcript.text.delta", "delta": rest})
        yield _event(
            {"type": "transcript.text.done", "text": transcript.text, "usage": usage(transcript)}
        )
        await jobs.release_result(record.id)
        settled = True
    except WhisperXApiError as exc:
        settled = True
        yield _event(error_status(exc)[1])
    finally:
        if not settled:  # the client went away and the response was torn down
            jobs.abandon_soon(record.id, owner)


def _growth(sent: str, text: str | None) -> str:
    """What `text` adds to what was sent; nothing when it does not extend it (a retry)."""
    if text is None or len(text) <= len(sent) or not text.startswith(sent):
        return ""
    return text[len(sent) :]


def _event(payload: dict[str, object]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
