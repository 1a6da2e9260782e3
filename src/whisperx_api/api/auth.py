"""API keys: one key and/or a JSON key file reloaded on change; constant-time comparison.

A key is a client's or an admin's. Admin keys (`ADMIN_API_KEY`, or a keys-file entry
`{"name": ..., "admin": true}`) may also load and unload models; see README "Security".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from whisperx_api.errors import AuthenticationFailed, KeyFileError, WhisperXApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Client:
    """Who is calling: a name for logs and an owner id for job visibility (None without auth)."""

    name: str
    owner: str | None
    admin: bool = False


ANONYMOUS = Client(name="anonymous", owner=None)


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """What a key stands for: the client name logs show, and whether it is an admin's."""

    name: str
    admin: bool = False


class KeyRing:
    """Known keys; `identify` maps a bearer token to its client or refuses it."""

    def __init__(
        self,
        single_key: str | None,
        keys_file: Path | None,
        enabled: bool,
        admin_key: str | None = None,
    ) -> None:
        self.enabled = enabled
        self._single = single_key
        self._admin = admin_key
        self._file = keys_file
        self._mtime: float | None = None
        self._keys: dict[str, KeyHolder] = {}
        self._lock = threading.Lock()
        self._reload()

    def identify(self, authorization: str | None) -> Client:
        """Check an `Authorization` header value."""
        if not self.enabled:
            return ANONYMOUS
        token = _bearer(authorization)
        if token is None:
            raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.")
        holder = self._match(token)
        if holder is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return Client(name=holder.name, owner=_fingerprint(token), admin=holder.admin)

    def _match(self, token: str) -> KeyHolder | None:
        keys = self._current_keys()
        found = None
        for key, holder in keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                found = holder
        return found

    def _current_keys(self) -> dict[str, KeyHolder]:
        if self._file is not None and _mtime(self._file) != self._mtime:
            try:
                self._reload()
            except KeyFileError as exc:
                log.error("API keys file: %s", exc)
                raise WhisperXApiError("The server's API key configuration is broken.") from exc
        return self._keys

    def _reload(self) -> None:
        with self._lock:
            keys = {self._single: KeyHolder("default")} if self._single else {}
            if self._file is not None:
                self._mtime = _mtime(self._file)
                keys.update(_read_key_file(self._file))
            if self._admin:
                keys[self._admin] = KeyHolder("admin", admin=True)
            self._keys = keys


def _read_key_file(path: Path) -> dict[str, KeyHolder]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"API_KEYS_FILE: cannot read {path}: {exc}") from exc
    holders = (
        {k: _holder(v) for k, v in data.items() if isinstance(k, str) and k}
        if isinstance(data, dict)
        else {}
    )
    if not isinstance(data, dict) or len(holders) != len(data) or None in holders.values():
        raise KeyFileError(
            f'API_KEYS_FILE: {path} must be a JSON object {{"<key>": "<client name>"}}; an '
            'admin key\'s value is {"name": "<client name>", "admin": true}'
        )
    return {k: v for k, v in holders.items() if v is not None}


def _holder(value: object) -> KeyHolder | None:
    """A plain string names a client; `{"name": str, "admin": bool}` may make it an admin."""
    if isinstance(value, str):
        return KeyHolder(value)
    if (
        isinstance(value, dict)
        and set(value) <= {"name", "admin"}
        and isinstance(value.get("name"), str)
        and isinstance(value.get("admin", False), bool)
    ):
        return KeyHolder(value["name"], admin=value.get("admin", False))
    return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]
