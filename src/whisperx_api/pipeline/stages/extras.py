"""Optional dependencies: import them where a backend needs them, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from whisperx_api.errors import InvalidRequest


class MissingExtra(InvalidRequest):
    """A feature was asked for whose optional dependencies (a pip extra) are not installed."""

    code = "missing_extra"

    def __init__(self, feature: str, extra: str, *, param: str | None = None) -> None:
        super().__init__(
            f"{feature} is not installed on this server: pip install 'whisperx-api[{extra}]'",
            param=param,
        )
        self.extra = extra


def require(
    module: str, extra: str, *, feature: str | None = None, param: str | None = None
) -> ModuleType:
    """Import `module`, or raise `MissingExtra` naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(feature or f"The '{module}' package", extra, param=param) from exc
