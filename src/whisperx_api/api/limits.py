"""Upload size enforced while the body streams in, before anything is read whole."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whisperx_api.api.errors import envelope
from whisperx_api.errors import PayloadTooLarge

# Room for the form's other fields and multipart boundaries on top of the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024


class BodySizeLimit:
    """Answers 413 as soon as a request body passes the limit (by header or by count)."""

    def __init__(self, app: ASGIApp, max_file_size: int) -> None:
        self.app = app
        self.max_file_size = max_file_size
        self.max_body = max_file_size + FORM_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _too_large(send, self.max_file_size)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise PayloadTooLarge(too_large_message(self.max_file_size))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if not started:
                await _too_large(send, self.max_file_size)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large_message(max_file_size: int) -> str:
    """The limit a client can act on: the file size (the form's other fields get their own
    small allowance on top, which is no business of the client's)."""
    return f"The upload is larger than this server's file size limit of {max_file_size} bytes."


async def _too_large(send: Send, max_file_size: int) -> None:
    body = json.dumps(
        envelope(
            too_large_message(max_file_size),
            "invalid_request_error",
            "file",
            "file_too_large",
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
