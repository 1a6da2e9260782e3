"""CORS on every route and every error, for the origins in `SERVER__CORS_ORIGINS`."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from whisperx_api.api.errors import error_response
from whisperx_api.errors import CorsNotAllowed

ALLOWED_METHODS = ("OPTIONS", "POST", "GET", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type")
MAX_AGE_SECONDS = 86400


class Cors(CORSMiddleware):
    """Starlette's CORS middleware with two additions.

    A preflight names the methods its path serves in `Allow`, and a refused preflight (an origin,
    method or header not allowed) is a 400 in OpenAI's envelope that carries no CORS header.
    """

    def __init__(self, app: ASGIApp, origins: Sequence[str], routes: Sequence[BaseRoute]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            max_age=MAX_AGE_SECONDS,
        )
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets pass straight through
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _is_preflight(scope, headers):
            response = self._preflight(scope, headers)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _preflight(self, scope: Scope, headers: Headers) -> Response:
        answer = self.preflight_response(request_headers=headers)
        if answer.status_code != 200:
            reason = bytes(answer.body).decode()
            refused = error_response(CorsNotAllowed(f"{reason}."))
            refused.headers["Vary"] = "Origin"
            return refused
        methods = self._path_methods(scope)
        if methods:
            answer.headers["Allow"] = ", ".join(methods)
        return answer

    def _path_methods(self, scope: Scope) -> list[str]:
        """The methods some route serves on this path; OPTIONS (this answer) first."""
        served = [
            m for m in ALLOWED_METHODS if m != "OPTIONS" and self._serves({**scope, "method": m})
        ]
        return ["OPTIONS", *served] if served else []

    def _serves(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is Match.FULL for route in self.routes)


def _is_preflight(scope: Scope, headers: Headers) -> bool:
    return (
        scope["method"] == "OPTIONS"
        and "origin" in headers
        and "access-control-request-method" in headers
    )
