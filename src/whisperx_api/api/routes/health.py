"""Liveness, never authenticated: 503 once something the process needs has stopped."""

from typing import Any

from fastapi import APIRouter

from whisperx_api.api.deps import RuntimeDep
from whisperx_api.api.openapi import ErrorEnvelope
from whisperx_api.errors import Unhealthy

router = APIRouter(tags=["health"])


_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorEnvelope, "description": "A worker loop or the sweeper has stopped."}
}


@router.get("/health", responses=_UNHEALTHY)
@router.get("/healthcheck", responses=_UNHEALTHY)
async def health(runtime: RuntimeDep) -> dict[str, str]:
    """The process is up and its background loops (workers, retention sweeper) are running;
    otherwise 503 naming what stopped, so that an orchestrator restarts the process."""
    problems = runtime.problems()
    if problems:
        raise Unhealthy("Unhealthy: " + "; ".join(problems) + ".")
    return {"status": "healthy"}
