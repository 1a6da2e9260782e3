"""Sending a job's result once: held while it is sent, deleted once all of it went out.

A fetch first takes the result (`JobService.take_result`), so a second fetch at the same moment,
here or on another replica, gets 404 rather than a second copy. The result is deleted when it
has been delivered, not when it has been read: if rendering fails, or the client goes away
mid-download, the hold is given back and the result can be fetched again.

Starlette's background tasks are no help here: they run after the last `send` even when the
client has gone (the server then drops writes silently). So the body goes out in chunks, and
before the final, empty chunk the response checks whether the connection reported a disconnect.
A client that drops once the server's socket buffers are full is noticed; bytes the kernel has
already accepted count as sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from whisperx_api.api.responses import transcript_response
from whisperx_api.jobs.service import JobService, TakenResult

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024

Callback = Callable[[], Awaitable[None]]


async def send_once(jobs: JobService, taken: TakenResult) -> Response:
    """The taken result as its response: deleted once sent, given back if it is not."""
    try:
        response = transcript_response(taken.transcript, taken.record.spec)
    except BaseException:
        await _shielded(partial(jobs.return_result, taken))
        raise
    return DeliveredResponse(
        response,
        on_sent=partial(jobs.release_result, taken.record.id),
        on_unsent=partial(jobs.return_result, taken),
    )


class DeliveredResponse(Response):
    """`response`'s status, headers and body; `on_sent` runs only after all of it went out,
    `on_unsent` when it did not (the client left, or sending failed)."""

    def __init__(self, response: Response, on_sent: Callback, on_unsent: Callback) -> None:
        super().__init__(status_code=response.status_code)
        self.body = response.body
        self.raw_headers = response.raw_headers
        self.background = response.background
        self._on_sent = on_sent
        self._on_unsent = on_unsent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            sent = await self._send_all(receive, send)
        except BaseException:
            await _shielded(self._on_unsent)
            raise
        if not sent:
            log.info("client went away mid-download; the result is kept")
            await _shielded(self._on_unsent)
            return
        await self._on_sent()
        if self.background is not None:
            await self.background()

    async def _send_all(self, receive: Receive, send: Send) -> bool:
        """Send the whole response; False when the client went away before its end."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = bytes(self.body)
        for start in range(0, len(body), CHUNK_BYTES):
            await send(
                {
                    "type": "http.response.body",
                    "body": body[start : start + CHUNK_BYTES],
                    "more_body": True,
                }
            )
            if await _disconnected(receive):
                return False
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True


async def _shielded(callback: Callback) -> None:
    """Run `callback` even while the request is being cancelled; a failure is logged (the
    hold then ends on its own, and the result can be fetched again)."""
    with anyio.CancelScope(shield=True):
        try:
            await callback()
        except Exception:
            log.exception("could not give back a result that was not sent")


async def _disconnected(receive: Receive) -> bool:
    """Whether the server has already reported the client gone (never waits for news)."""
    while True:
        message = None
        with anyio.CancelScope() as scope:
            scope.cancel()
            message = await receive()
        if message is None:  # nothing pending: still connected
            return False
        if message["type"] == "http.disconnect":
            return True
        # a request body part nobody read (a GET's empty body): look again
