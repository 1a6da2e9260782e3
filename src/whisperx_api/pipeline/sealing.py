"""Per-request secrets (a client's `hf_token`) sealed before a job spec is stored.

A job spec lives in the job store (SQLite, or S3 in the distributed mode) until the job is
swept, so a token in it would sit on disk for the whole retention. The runner seals the token
at submit time and opens it only when the job runs:

- with `SECRETS__KEY` set, the sealing key is derived from it (HKDF-SHA256), so a token sealed
  by one process opens in another (API replicas and Kafka workers share the setting) and after
  a restart;
- without it, an embedded server seals with a random key that exists only in its memory: what
  reaches the disk cannot be opened by anyone, and a job whose server restarted before it ran
  fails with `hf_token_unavailable` instead of running without the token.

Fernet (AES-128-CBC with HMAC-SHA256) authenticates what it opens, so a tampered or foreign
value is refused, never half-decrypted.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from whisperx_api.errors import TokenUnavailable

SEALED_PREFIX = "sealed:v1:"
_HKDF_INFO = b"whisperx-api job secrets v1"


class TokenSealer:
    """Seals and opens per-request tokens with one key."""

    def __init__(self, fernet_key: bytes, *, persistent: bool) -> None:
        self._fernet = Fernet(fernet_key)
        self.persistent = persistent  # False: the key dies with this process

    @classmethod
    def from_secret(cls, secret: str) -> TokenSealer:
        """A sealer keyed by a configured secret: the same secret opens it anywhere."""
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret.encode("utf-8")
        )
        return cls(base64.urlsafe_b64encode(derived), persistent=True)

    @classmethod
    def ephemeral(cls) -> TokenSealer:
        """A sealer whose random key lives in this process's memory only."""
        return cls(Fernet.generate_key(), persistent=False)

    def seal(self, token: str) -> str:
        """The token as it may be stored."""
        return SEALED_PREFIX + self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def open(self, value: str) -> str:
        """The token `seal` sealed; a value that was never sealed is returned as it is."""
        if not value.startswith(SEALED_PREFIX):
            return value
        try:
            return self._fernet.decrypt(value.removeprefix(SEALED_PREFIX)).decode("utf-8")
        except (InvalidToken, ValueError) as exc:
            raise TokenUnavailable from exc


def open_token(sealer: TokenSealer | None, value: str | None) -> str | None:
    """`sealer.open(value)`, where a sealed value and no sealer cannot be opened."""
    if value is None:
        return None
    if sealer is None:
        if value.startswith(SEALED_PREFIX):
            raise TokenUnavailable
        return value
    return sealer.open(value)
