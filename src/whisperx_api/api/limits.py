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
        self.max_body = max_file_size + FORM_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _too_large(send, self.max_body)
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
                raise PayloadTooLarge(
                    f"The request body is larger than the limit of {self.max_body} bytes."
                )
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if not started:
                await _too_large(send, self.max_body)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        envelope(
            f"The request body is larger than the limit of {limit} bytes.",
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
