"""Counts every HTTP request by its route template (`/transcription/{job_id}`), never its path.

A pure ASGI middleware, like the access log, so client disconnects stay visible to the routes.
Requests that match no route share one label, and unusual methods another, so scanning for URLs
cannot grow the series.
"""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import Scope

from whisperx_api import metrics
from whisperx_api.api.observe import ResponseObserver

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics(ResponseObserver):
    """Request counter and latency histogram per method, route template and status."""

    unanswered_status = 500  # what the client gets when the app raised

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
        metrics.HTTP_SECONDS.labels(method=method, route=route).observe(seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or one shared label for everything else."""
    route = scope.get("route")
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    return path if isinstance(path, str) and path else UNMATCHED
