"""A base for pure ASGI middlewares that look at each HTTP request once it has been answered.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which would hide client disconnects from
`Request.is_disconnected()` (sync waits rely on those to cancel queued jobs).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ResponseObserver:
    """Calls `observe` with each HTTP request's status and duration, errors included."""

    # The status recorded when the app raised before it started a response.
    unanswered_status = 0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = self.unanswered_status

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.observe(scope, status, time.perf_counter() - started)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """Record one answered request."""
        raise NotImplementedError
