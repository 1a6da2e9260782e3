"""Client secrets: short-lived keys for one live session, minted by a normal key (OpenAI's
`POST /v1/realtime/client_secrets`), so that a browser page never holds a long-lived key.

A secret opens one session on `/v1/realtime` before it expires, as the key that minted it (its
client name, its owner id, the limits sessions count against), with the session configuration
it was minted with. Secrets live in this process's memory only, stored by digest: a restart
forgets them, and with several API replicas a secret works only on the replica that minted it
(route `/v1/realtime*` of one client to one replica); see docs/live-captions.md.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from whisperx_api.api.auth import CLIENT_SECRET_PREFIX, Client
from whisperx_api.errors import ClientSecretRefused, TooManyClientSecrets
from whisperx_api.realtime.session import new_id
from whisperx_api.realtime.session_config import SessionConfig

DEFAULT_SECONDS = 600
MIN_SECONDS = 10
MAX_SECONDS = 7200
# Spent and expired secrets are remembered this long past their expiry, to tell a client
# "already used" or "expired" rather than "unknown"; at most this many records in all.
_REMEMBER_SECONDS = 3600.0
_MAX_RECORDS = 20_000


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """What a secret stands for."""

    client: Client
    expires_at: float  # seconds since the epoch
    session: SessionConfig
    session_id: str  # the id its session will have (announced at minting)


@dataclass(slots=True)
class _Record:
    secret: ClientSecret
    used: bool = False


class ClientSecrets:
    """Mints and redeems secrets; at most `max_per_key` unused, unexpired ones per key."""

    def __init__(self, max_per_key: int, clock: Callable[[], float] = time.time) -> None:
        self._max_per_key = max_per_key
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # by digest, in minting order

    def mint(
        self, client: Client, seconds: int, session: SessionConfig
    ) -> tuple[str, ClientSecret]:
        """A new secret's value (shown once, never stored) and what it stands for."""
        now = self._clock()
        self._forget(now)
        held = sum(
            1
            for r in self._records.values()
            if r.secret.client.owner == client.owner and not r.used and r.secret.expires_at > now
        )
        if held >= self._max_per_key:
            raise TooManyClientSecrets(
                f"This key holds {held} unused client secrets, the most it may "
                "(REALTIME__MAX_CLIENT_SECRETS_PER_KEY); use them or let them expire."
            )
        value = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
        secret = ClientSecret(client, now + seconds, session, new_id("sess"))
        self._records[_digest(value)] = _Record(secret)
        return value, secret

    def check(self, value: str) -> ClientSecret:
        """The secret `value` names if it may still open a session (it stays unused)."""
        record = self._records.get(_digest(value))
        if record is None:
            raise ClientSecretRefused(
                "Unknown client secret: it was never minted here, or expired long ago "
                "(a restart forgets every secret). Mint a new one."
            )
        if record.used:
            raise ClientSecretRefused(
                "This client secret was already used to open a session; a secret opens one "
                "session. Mint a new one."
            )
        if record.secret.expires_at <= self._clock():
            raise ClientSecretRefused("This client secret has expired. Mint a new one.")
        return record.secret

    def redeem(self, value: str) -> ClientSecret:
        """`check`, then spend the secret: it opens no other session."""
        secret = self.check(value)
        self._records[_digest(value)].used = True
        return secret

    def _forget(self, now: float) -> None:
        """Drop records long past expiry; past the record limit, the oldest spent or expired."""
        stale = [
            d for d, r in self._records.items() if r.secret.expires_at + _REMEMBER_SECONDS <= now
        ]
        for digest in stale:
            del self._records[digest]
        if len(self._records) < _MAX_RECORDS:
            return
        done = [d for d, r in self._records.items() if r.used or r.secret.expires_at <= now]
        for digest in done[: len(self._records) - _MAX_RECORDS + 1]:
            del self._records[digest]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()
