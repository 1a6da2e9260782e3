"""A small synchronous client for the job endpoints (docs/jobs.md).

Every failure leaves as one of the errors below, each carrying the exit code the command line
returns for it, so scripts can tell "not ready yet" from "gone" from "server down":

    ClientError                 exit 1: the server refused (the message is the server's)
    ├── ConnectionFailed        exit 2: the server could not be reached or stopped answering
    ├── WrongState              exit 3: 409, the job is not in a state for this (not ready yet)
    ├── JobNotFound             exit 4: 404, no such job (or not yours, or already fetched)
    └── JobUnsuccessful         exit 1: a waited-for job ended Failed or Cancelled
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled"})
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class ClientError(Exception):
    """The server said no; `message` is its OpenAI-style error message when it sent one."""

    exit_code = 1

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ConnectionFailed(ClientError):
    """No HTTP answer at all: refused, unresolvable, timed out, dropped."""

    exit_code = 2


class WrongState(ClientError):
    """409: a result asked for before completion, or a cancel of a processing job."""

    exit_code = 3


class JobNotFound(ClientError):
    """404: unknown job, another key's job, or a result already delivered (and deleted)."""

    exit_code = 4


class JobUnsuccessful(ClientError):
    """A job waited on ended Failed or Cancelled instead of Completed."""


_BY_STATUS: dict[int, type[ClientError]] = {404: JobNotFound, 409: WrongState}


@dataclass(frozen=True)
class SubmitOptions:
    """The optional form fields of `POST /transcription`; None means "server default"."""

    response_format: str | None = None
    language: str | None = None
    model: str | None = None
    prompt: str | None = None
    webhook_url: str | None = None

    def form(self) -> dict[str, str]:
        """Form fields; always `sync=false`, so a DEFAULT_SYNC_MODE server still answers 202."""
        fields = {
            "response_format": self.response_format,
            "language": self.language,
            "model": self.model,
            "prompt": self.prompt,
            "webhook_url": self.webhook_url,
        }
        return {"sync": "false", **{k: v for k, v in fields.items() if v is not None}}


StatusCallback = Callable[[dict[str, Any]], None]


class JobsClient:
    """Submit, poll, fetch and cancel jobs on one server, authenticated with one key."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        with self._guard():
            self._http = httpx.Client(
                base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
            )
        self._sleep = sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def submit(self, path: Path, options: SubmitOptions) -> str:
        """Upload `path` (streamed from disk, never read whole) and return the new job's id."""
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as audio:
            files = {"file": (path.name, audio, content_type)}
            body = self._json("POST", "/transcription", data=options.form(), files=files)
        return str(body["job_id"])

    def status(self, job_id: str) -> dict[str, Any]:
        """`GET /transcription/{id}`: status, queue position, progress, error, attempts."""
        return self._json("GET", f"/transcription/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """`DELETE /transcription/{id}`: only a queued job can be cancelled."""
        return self._json("DELETE", f"/transcription/{job_id}")

    @contextmanager
    def result(self, job_id: str) -> Iterator[Iterator[bytes]]:
        """The result body's chunks as received; the server deletes the job once it is sent.

        Errors are raised before the caller sees any chunk, so a caller that opens its output
        inside the `with` never creates a file for a result that is not there.
        """
        with self._guard(), self._http.stream("GET", f"/transcription/{job_id}/result") as response:
            if response.is_error:
                response.read()
                raise _error_for(response)
            yield response.iter_bytes()

    def wait(
        self, job_id: str, poll_interval: float, on_status: StatusCallback | None = None
    ) -> dict[str, Any]:
        """Poll until the job is Completed; Failed or Cancelled raise `JobUnsuccessful`."""
        while True:
            body = self.status(job_id)
            if on_status is not None:
                on_status(body)
            if body.get("status") in TERMINAL_STATUSES:
                return _completed(job_id, body)
            self._sleep(poll_interval)

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        with self._guard():
            response = self._http.request(method, url, **kwargs)
        if response.is_error:
            raise _error_for(response)
        body = _decode_json(response)
        if not isinstance(body, dict):
            raise ClientError(f"unexpected answer from {method} {url}: {response.text[:200]}")
        return body

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn transport failures into `ConnectionFailed` naming the server."""
        try:
            yield
        except httpx.ConnectError as exc:
            raise ConnectionFailed(f"cannot reach server at {self.base_url}: {exc}") from exc
        except httpx.InvalidURL as exc:
            raise ConnectionFailed(f"invalid server URL {self.base_url!r}: {exc}") from exc
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise ConnectionFailed(f"connection to {self.base_url} failed: {detail}") from exc


def _completed(job_id: str, body: dict[str, Any]) -> dict[str, Any]:
    status = body.get("status")
    if status == "Completed":
        return body
    if status == "Failed":
        raise JobUnsuccessful(f"job {job_id} failed: {body.get('error') or 'no reason given'}")
    raise JobUnsuccessful(f"job {job_id} was cancelled")


def _decode_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClientError(f"server sent invalid JSON (HTTP {response.status_code})") from exc


def _error_for(response: httpx.Response) -> ClientError:
    """The error class for this status, carrying the server's own message."""
    cls = _BY_STATUS.get(response.status_code, ClientError)
    return cls(f"{error_message(response)} (HTTP {response.status_code})", response.status_code)


def error_message(response: httpx.Response) -> str:
    """`error.message` of OpenAI's envelope; otherwise the body text or the reason phrase."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    text = response.text.strip()
    return text[:500] if text else response.reason_phrase
