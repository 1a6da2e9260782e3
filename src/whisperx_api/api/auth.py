"""API keys: one key and/or a JSON key file reloaded on change; constant-time comparison.

A key is a client's or an admin's. Admin keys (`ADMIN_API_KEY`, or a keys-file entry
`{"name": ..., "admin": true}`) may also load and unload models; see docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from whisperx_api.errors import AuthenticationFailed, ClientSecretRefused, KeyFileError

log = logging.getLogger(__name__)

_Signature = tuple[int, int, int, int]  # mtime_ns, size, inode, device
CLIENT_SECRET_PREFIX = "ek_"  # noqa: S105 (a prefix, not a secret); minted by POST /v1/realtime/client_secrets; live sessions only


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
    """Known keys; `identify` maps a bearer token to its client or refuses it.

    The keys file is read at startup (an unreadable or invalid file raises `KeyFileError`, a
    startup error) and again whenever its stat signature changes. A reload that fails keeps the
    last good key set in force and logs the error once per change; the signature is recorded
    only after a successful parse, so the fixed file is picked up on the next request.
    """

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
        self._signature: _Signature | None = None  # of the file as last parsed successfully
        self._last_failure: tuple[_Signature | None, str] | None = None  # logged once
        self._lock = threading.Lock()
        signature = _signature(keys_file) if keys_file is not None else None
        self._keys: dict[str, KeyHolder] = self._read_keys()
        self._signature = signature

    def identify(self, authorization: str | None) -> Client:
        """Check an `Authorization` header value."""
        if not self.enabled:
            return ANONYMOUS
        token = _bearer(authorization)
        if token is None:
            raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.")
        holder = self._match(token)
        if holder is None and token.startswith(CLIENT_SECRET_PREFIX):
            raise ClientSecretRefused(
                "A client secret (ek_...) opens a live session on /v1/realtime and nothing "
                "else; send an API key to this endpoint."
            )
        if holder is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return Client(name=holder.name, owner=owner_of(token), admin=holder.admin)

    def holds(self, owner: str) -> bool:
        """Whether a key with this owner id is still configured (a removed key's client
        secrets die with it)."""
        return any(hmac.compare_digest(owner_of(key), owner) for key in self._current_keys())

    def _match(self, token: str) -> KeyHolder | None:
        keys = self._current_keys()
        found = None
        for key, holder in keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                found = holder
        return found

    def _current_keys(self) -> dict[str, KeyHolder]:
        if self._file is not None and _signature(self._file) != self._signature:
            self._reload(self._file)
        return self._keys

    def _reload(self, path: Path) -> None:
        """Replace the key set from the changed file, or keep the last good one and log why."""
        with self._lock:
            signature = _signature(path)  # taken before the read: a later write reloads again
            if signature == self._signature:
                return  # another request reloaded it meanwhile
            try:
                keys = self._read_keys()
            except KeyFileError as exc:
                if self._last_failure != (signature, str(exc)):
                    self._last_failure = (signature, str(exc))
                    log.error("%s; the last good key set stays in force", exc)
                return
            self._keys = keys
            self._signature = signature
            self._last_failure = None
            log.info("API keys file reloaded: %d key(s)", len(keys))

    def _read_keys(self) -> dict[str, KeyHolder]:
        keys = {self._single: KeyHolder("default")} if self._single else {}
        if self._file is not None:
            keys.update(_read_key_file(self._file))
        if self._admin:
            keys[self._admin] = KeyHolder("admin", admin=True)
        if not all(_encodable(key) for key in keys):
            raise KeyFileError(
                "API_KEY, ADMIN_API_KEY and API_KEYS_FILE keys must be valid Unicode text "
                "(one holds an unpaired surrogate, e.g. undecodable bytes)"
            )
        return keys


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
    broken = [k for k, v in holders.items() if not _encodable(k) or (v and not _encodable(v.name))]
    if broken:
        raise KeyFileError(
            f"API_KEYS_FILE: {path} holds {len(broken)} key(s) or name(s) that are not valid "
            "Unicode text (an unpaired surrogate such as \\udc80); fix or remove them"
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


def _encodable(text: str) -> bool:
    """False for text UTF-8 cannot encode (a lone surrogate, which JSON's \\u escapes allow):
    such a key would fail every comparison with a 500 instead of being refused here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _signature(path: Path) -> _Signature | None:
    """What changes when the file is edited or replaced (None: it cannot be read now)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def owner_of(token: str) -> str:
    """The owner id of everything a key stores (its jobs and saved voices); never the key."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]
