"""A response that runs a callback only once its whole body has been handed to the connection.

A job's result is deleted when it has been delivered, not when it has been read: if rendering
fails, or the client goes away mid-download, the result stays and can be fetched again.

Starlette's background tasks are no help here: they run after the last `send` even when the
client has gone (the server then drops writes silently). So the body goes out in chunks, and
before the final, empty chunk the response checks whether the connection reported a disconnect.
A client that drops once the server's socket buffers are full is noticed; bytes the kernel has
already accepted count as sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024

OnSent = Callable[[], Awaitable[None]]


class DeliveredResponse(Response):
    """`response`'s status, headers and body; `on_sent` runs only after all of it went out."""

    def __init__(self, response: Response, on_sent: OnSent) -> None:
        super().__init__(status_code=response.status_code)
        self.body = response.body
        self.raw_headers = response.raw_headers
        self.background = response.background
        self._on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                log.info("client went away mid-download; the result is kept")
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await self._on_sent()
        if self.background is not None:
            await self.background()


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
