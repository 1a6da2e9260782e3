"""The exception tree: all of it in errors.py, one class per code, and each class's HTTP answer."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import whisperx_api
from whisperx_api import errors as e
from whisperx_api.api.errors import error_status

SRC = Path(whisperx_api.__file__).parent
# The HTTP client behind `whisperx-api jobs` has its own errors: it is a client of this API, and
# what it raises never reaches a server response.
CLIENT_PACKAGE = "whisperx_api.client"


def server_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(SRC)], prefix="whisperx_api.")]
    return [name for name in names if not name.startswith(CLIENT_PACKAGE)]


def test_every_exception_class_of_the_server_is_defined_in_errors_py() -> None:
    elsewhere = []
    for name in server_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name != e.__name__:
                elsewhere.append(f"{name}.{cls_name}")
    assert elsewhere == []


def test_errors_exports_exactly_its_tree() -> None:
    defined = {
        name
        for name, obj in vars(e).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == e.__name__
    }
    assert set(e.__all__) == defined | {"error_for_code"}
    for name in defined:
        assert name in (e.__doc__ or ""), f"{name} is missing from the drawn tree"


def test_each_error_code_belongs_to_one_class() -> None:
    owners: dict[str, list[str]] = {}
    for name in e.__all__:
        obj = getattr(e, name)
        code = vars(obj).get("code") if inspect.isclass(obj) else None
        if isinstance(code, str):
            owners.setdefault(code, []).append(name)
    assert {code: names for code, names in owners.items() if len(names) > 1} == {}


def test_no_code_is_assigned_outside_the_class_that_owns_it() -> None:
    """A code set on an instance (or passed as `code=`) instead of a subclass is refused."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "code":
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
            if isinstance(node, ast.Call) and any(k.arg == "code" for k in node.keywords):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


# Every class a client can meet, with what it answers: status, envelope type, code, param.
HTTP_ANSWERS: list[tuple[e.WhisperXApiError, int, str, str | None, str | None]] = [
    (e.InvalidRequest("x"), 400, "invalid_request_error", None, None),
    (
        e.InvalidValue("x", param="temperature"),
        400,
        "invalid_request_error",
        "invalid_value",
        "temperature",
    ),
    (e.CorsNotAllowed("x"), 400, "invalid_request_error", "cors_not_allowed", None),
    (e.InvalidAudio("x"), 400, "invalid_request_error", "invalid_audio", "file"),
    (e.AudioTooLong("x"), 400, "invalid_request_error", "audio_too_long", "file"),
    (e.ModelNotFound("x"), 400, "invalid_request_error", "model_not_found", "model"),
    (e.UnsupportedParameter("x"), 400, "invalid_request_error", "unsupported_parameter", None),
    (e.MissingExtra("X", "alignment"), 400, "invalid_request_error", "missing_extra", None),
    (e.MissingToken(), 400, "invalid_request_error", "missing_hf_token", "hf_token"),
    (e.TokenUnavailable(), 400, "invalid_request_error", "hf_token_unavailable", "hf_token"),
    (
        e.InvalidUrl("x", param="webhook_url"),
        400,
        "invalid_request_error",
        "invalid_url",
        "webhook_url",
    ),
    (e.UrlNotAllowed("x", param="url"), 400, "invalid_request_error", "url_not_allowed", "url"),
    (
        e.DownloadFailed("x", param="audio_url"),
        400,
        "invalid_request_error",
        "download_failed",
        "audio_url",
    ),
    (e.WebhooksDisabled("x"), 400, "invalid_request_error", "webhooks_disabled", None),
    (e.JobRejected("x", "not_found"), 400, "invalid_request_error", "not_found", None),
    (e.InvalidEvent("x"), 400, "invalid_request_error", "invalid_event", None),
    (
        e.UnknownEventType("x", param="type"),
        400,
        "invalid_request_error",
        "unknown_event_type",
        "type",
    ),
    (e.EventTooLarge("x"), 400, "invalid_request_error", "event_too_large", None),
    (e.InvalidBase64("x", param="audio"), 400, "invalid_request_error", "invalid_base64", "audio"),
    (
        e.BufferOverflow("x", param="audio"),
        400,
        "invalid_request_error",
        "input_audio_buffer_overflow",
        "audio",
    ),
    (e.CommitEmpty("x"), 400, "invalid_request_error", "input_audio_buffer_commit_empty", None),
    (e.SessionIdle("x"), 400, "invalid_request_error", "idle_timeout", None),
    (e.RealtimeUnavailable("x"), 400, "invalid_request_error", "realtime_unavailable", None),
    (e.TooManySessions("x"), 503, "server_overloaded", "too_many_sessions", None),
    (e.PayloadTooLarge("x"), 413, "invalid_request_error", "file_too_large", "file"),
    (e.AuthenticationFailed("x"), 401, "authentication_error", "invalid_api_key", None),
    (e.PermissionDenied("x"), 403, "permission_error", "admin_key_required", None),
    (e.NotFound("x"), 404, "not_found_error", "not_found", None),
    (e.ClientSecretRefused("x"), 401, "authentication_error", "invalid_client_secret", None),
    (e.TooManyClientSecrets("x"), 400, "invalid_request_error", "too_many_client_secrets", None),
    (e.TooManySpeakers("x"), 400, "invalid_request_error", "too_many_speakers", None),
    (e.Conflict("x"), 409, "conflict_error", "conflict", None),
    (e.JobNotReady("x"), 409, "conflict_error", "job_not_ready", None),
    (e.IllegalMove("x"), 409, "conflict_error", "conflict", None),
    (e.JobCancelled("x"), 409, "conflict_error", "job_cancelled", None),
    (e.Overloaded("x"), 503, "server_overloaded", "overloaded", None),
    (e.QueueUnavailable("x"), 503, "server_overloaded", "queue_unavailable", None),
    (e.ModelSlotsBusy("x"), 503, "server_overloaded", "model_slots_busy", None),
    (e.SyncTimeout("x", job_id="j"), 504, "timeout_error", "timeout", None),
    (e.BackendError("x"), 500, "server_error", "backend_error", None),
    (e.AttemptsExhausted("x"), 500, "server_error", "max_attempts", None),
    (e.CorruptModelFile(Path("m.bin"), "x"), 500, "server_error", "backend_error", None),
    (e.StorageError("x"), 500, "server_error", "storage_error", None),
    (e.StorageFull("x"), 507, "server_error", "insufficient_storage", None),
    (e.UnreadableJob("x"), 500, "server_error", "unreadable_job", None),
    (e.Unhealthy("x"), 503, "server_error", "unhealthy", None),
    (e.KafkaQueueError("x"), 500, "server_error", None, None),
    (e.CommitFailed("x"), 500, "server_error", None, None),
    (e.WorkerLost(), 500, "server_error", None, None),
    (e.WhisperXApiError("x"), 500, "server_error", None, None),
]


def test_the_answers_cover_every_class_of_the_tree() -> None:
    api_errors = {
        name
        for name in e.__all__
        if inspect.isclass(getattr(e, name)) and issubclass(getattr(e, name), e.WhisperXApiError)
    }
    assert {type(error).__name__ for error, *_ in HTTP_ANSWERS} == api_errors


@pytest.mark.parametrize(
    ("error", "status", "type_", "code", "param"),
    HTTP_ANSWERS,
    ids=[type(error).__name__ for error, *_ in HTTP_ANSWERS],
)
def test_each_class_answers_with_its_status_and_envelope(
    error: e.WhisperXApiError, status: int, type_: str, code: str | None, param: str | None
) -> None:
    answer, body = error_status(error)
    assert answer == status
    assert body["error"] == {"message": error.message, "type": type_, "param": param, "code": code}


@pytest.mark.parametrize(
    ("recorded", "cls", "status", "code", "param"),
    [
        (None, e.BackendError, 500, "backend_error", None),
        ("backend_error", e.BackendError, 500, "backend_error", None),
        ("max_attempts", e.AttemptsExhausted, 500, "max_attempts", None),
        ("invalid_audio", e.InvalidAudio, 400, "invalid_audio", "file"),
        ("audio_too_long", e.AudioTooLong, 400, "audio_too_long", "file"),
        ("model_not_found", e.ModelNotFound, 400, "model_not_found", "model"),
        ("missing_extra", e.JobRejected, 400, "missing_extra", None),
        ("not_found", e.JobRejected, 400, "not_found", None),
        ("a_third_party_code", e.JobRejected, 400, "a_third_party_code", None),
    ],
)
def test_a_failed_jobs_recorded_code_is_rebuilt_as_its_class(
    recorded: str | None, cls: type[e.WhisperXApiError], status: int, code: str, param: str | None
) -> None:
    error = e.error_for_code(recorded, "what the worker recorded")
    assert type(error) is cls
    assert error_status(error)[0] == status
    assert (error.message, error.code, error.param) == ("what the worker recorded", code, param)
