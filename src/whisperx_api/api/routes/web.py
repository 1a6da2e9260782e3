"""`GET /`: the web page, plain files from the package, under a strict Content-Security-Policy.

The page is static and public (it holds no data and no key); everything it shows comes from the
public API with the key the user pastes, kept in the browser's session storage.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

WEB_DIR: Final = Path(str(files("whisperx_api") / "web"))
ASSETS_PATH: Final = "/web"

# Scripts, styles, images and fetches only from this origin; audio from the user's own file
# (a blob: URL); no plugins, frames, inline code or form posts elsewhere.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    "Cache-Control": "no-cache",
}
_RAW_HEADERS: Final = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

router = APIRouter(include_in_schema=False)


@router.get("/")
async def web_page() -> FileResponse:
    """The page itself."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


class _Assets(StaticFiles):
    """The page's scripts and styles, with the same headers as the page."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_RAW_HEADERS]
            await send(message)

        await super().__call__(scope, receive, with_headers)


def mount_web(app: FastAPI) -> None:
    """Serve `/` and its assets under `/web`."""
    app.include_router(router)
    app.mount(ASSETS_PATH, _Assets(directory=WEB_DIR), name="web")
