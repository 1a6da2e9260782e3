"""Optional dependencies: import them where a backend needs them, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from whisperx_api.errors import MissingExtra


def require(
    module: str, extra: str, *, feature: str | None = None, param: str | None = None
) -> ModuleType:
    """Import `module`, or raise `MissingExtra` naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(feature or f"The '{module}' package", extra, param=param) from exc
