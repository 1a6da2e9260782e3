"""`GET /metrics`: Prometheus' text format; keyed like the API unless `METRICS__PUBLIC=true`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whisperx_api import metrics
from whisperx_api.api.deps import get_runtime, require_client
from whisperx_api.config import Settings

router = APIRouter(tags=["metrics"])
log = logging.getLogger(__name__)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """This process's series, with the job store's queue counts read now."""
    settings: Settings = request.app.state.settings
    if not settings.metrics.public:
        require_client(request)
    try:
        counts = await get_runtime(request).jobs.counts()
    except Exception:  # the store is down: serve the rest, the gauges keep their last value
        log.warning("metrics: the job store could not be read for the queue gauges")
    else:
        metrics.set_queue(counts.queued, counts.processing)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
