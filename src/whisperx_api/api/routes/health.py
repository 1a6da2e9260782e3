"""Liveness, never authenticated."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health")
@router.get("/healthcheck")
async def health() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "healthy"}
