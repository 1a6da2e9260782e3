"""`whisperx-api jobs submit|status|result|cancel`: argparse glue over `JobsClient`.

Made for scripts: stdout carries only the payload (a job id, status JSON, or the result bytes),
everything meant for people goes to stderr, and the exit code says what happened (see
`client.jobs` for the table). Defaults for `--server` and `--api-key` come from the composition
root (`cli.py`), which is the only place that reads the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self, TextIO

from whisperx_api.client.jobs import ClientError, JobsClient, SubmitOptions
from whisperx_api.domain.formats import OutputFormat

DEFAULT_SERVER = "http://127.0.0.1:8000"
USAGE_EXIT = 2
INTERRUPTED_EXIT = 130

JOBS_USAGE = (
    "jobs needs an action: submit FILE, status ID, result ID or cancel ID "
    "(see whisperx-api jobs --help)"
)
JOBS_USAGE = (
    "jobs needs an action: submit FILE, status ID, result ID or cancel ID "
    "(see whisperx-api jobs --help)"
)

ClientFactory = Callable[[str, str | None], JobsClient]


@dataclass(frozen=True)
class Streams:
    """Where payloads (bytes, for results as received) and messages go."""

    out: BinaryIO
    err: TextIO


Handler = Callable[[JobsClient, argparse.Namespace, Streams], int]


def add_jobs_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], *, server: str, api_key: str | None
) -> None:
    """Register `jobs` and its four subcommands on the top-level parser."""
    common = _common_options(server, api_key)
    jobs = sub.add_parser(
        "jobs",
        help="submit and manage jobs on a running server",
        description="Submit a file as a job on a running server, follow it, fetch its result "
        "or cancel it: whisperx-api jobs submit FILE | status ID | result ID | cancel ID.",
    )
    jobs.set_defaults(jobs_handler=None)
    commands = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    _add_submit(commands.add_parser("submit", parents=[common], help="upload a file as a job"))
    _id_command(commands, common, "status", _status, "print a job's status JSON")
    result = _id_command(commands, common, "result", _result, "fetch a finished job's result")
    result.add_argument("--output", "-o", type=Path, help="write here, not to stdout")
    _id_command(commands, common, "cancel", _cancel, "cancel a queued job")


def _id_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    handler: Handler,
    help_: str,
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, parents=[common], help=help_, description=help_)
    command.add_argument("job_id", metavar="ID", help="the job id `jobs submit` printed")
    command.set_defaults(jobs_handler=handler)
    return command


def _common_options(server: str, api_key: str | None) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", default=server, help=f"base URL (default: {server}; env WHISPERX_API_URL)"
    )
    common.add_argument(
        "--api-key", default=api_key, help="bearer token (default: env WHISPERX_API_KEY)"
    )
    return common


def _add_submit(submit: argparse.ArgumentParser) -> None:
    submit.add_argument("file", type=Path, help="audio or video file to transcribe")
    submit.add_argument(
        "--format",
        choices=[f.value for f in OutputFormat],
        metavar="FORMAT",
        help="result format: %(choices)s (default: the server's)",
    )
    submit.add_argument("--language", help="ISO-639-1 code (default: detect)")
    submit.add_argument("--model", help="model name (default: the server's)")
    submit.add_argument("--prompt", help="initial prompt")
    submit.add_argument(
        "--webhook-url", metavar="URL", help="the server POSTs a signed event here when it ends"
    )
    submit.add_argument("--wait", action="store_true", help="wait, then print the result")
    submit.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between status polls with --wait (default: %(default)s)",
    )
    submit.set_defaults(jobs_handler=_submit)


def run_jobs(
    args: argparse.Namespace, streams: Streams, connect: ClientFactory = JobsClient
) -> int:
    """Run the chosen subcommand; every client error becomes a stderr line and its exit code."""
    handler: Handler | None = args.jobs_handler
    if handler is None:
        _say(streams, JOBS_USAGE)
        return USAGE_EXIT
    try:
        with connect(args.server, args.api_key or None) as client:
            return handler(client, args, streams)
    except ClientError as exc:
        _say(streams, exc.message)
        return exc.exit_code
    except OSError as exc:
        _say(streams, f"{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        _say(streams, "interrupted (a submitted job keeps running on the server)")
        return INTERRUPTED_EXIT


def _submit(client: JobsClient, args: argparse.Namespace, streams: Streams) -> int:
    options = SubmitOptions(args.format, args.language, args.model, args.prompt, args.webhook_url)
    try:
        job_id = client.submit(args.file, options)
    except OSError as exc:
        _say(streams, f"cannot read {args.file}: {exc.strerror or exc}")
        return USAGE_EXIT
    if not args.wait:
        _emit(streams, job_id)
        return 0
    _say(streams, f"job {job_id} submitted")
    client.wait(job_id, args.poll_interval, ProgressReporter(streams.err, job_id))
    with client.result(job_id) as chunks:
        _copy(chunks, streams.out)
    return 0


def _status(client: JobsClient, args: argparse.Namespace, streams: Streams) -> int:
    _emit(streams, json.dumps(client.status(args.job_id)))
    return 0


def _cancel(client: JobsClient, args: argparse.Namespace, streams: Streams) -> int:
    _emit(streams, json.dumps(client.cancel(args.job_id)))
    return 0


def _result(client: JobsClient, args: argparse.Namespace, streams: Streams) -> int:
    if args.output is None:
        with client.result(args.job_id) as chunks:
            _copy(chunks, streams.out)
        return 0
    try:
        output = ReplacingFile(args.output)
    except OSError as exc:
        _say(streams, f"cannot write {args.output}: {exc.strerror or exc}")
        return USAGE_EXIT
    with output, client.result(args.job_id) as chunks:
        _copy(chunks, output.handle)
    return 0


class ReplacingFile:
    """A temp file beside `path`, renamed over it only if the `with` block succeeds.

    Fetching a result deletes it on the server, so the output must be known writable before
    the request, and a failed fetch must not leave an empty or truncated file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        self._temp = Path(temp)
        self.handle: BinaryIO = os.fdopen(fd, "wb")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.handle.close()
        if exc_type is None:
            self._temp.replace(self.path)
        else:
            self._temp.unlink(missing_ok=True)


class ProgressReporter:
    """One stderr line per change of status, queue position or whole percent of progress."""

    def __init__(self, stream: TextIO, job_id: str) -> None:
        self._stream = stream
        self._job_id = job_id
        self._last = ""

    def __call__(self, body: dict[str, Any]) -> None:
        line = describe(body)
        if line != self._last:
            self._last = line
            self._stream.write(f"job {self._job_id}: {line}\n")
            self._stream.flush()


def describe(body: dict[str, Any]) -> str:
    """`Queued (position 2)`, `Processing 40%`, `Completed`."""
    status = str(body.get("status", "unknown"))
    if body.get("queue_position") is not None:
        return f"{status} (position {body['queue_position']})"
    if body.get("progress") is not None:
        return f"{status} {int(float(body['progress']) * 100)}%"
    return status


def _copy(chunks: Iterator[bytes], sink: BinaryIO) -> None:
    for chunk in chunks:
        sink.write(chunk)
    sink.flush()


def _emit(streams: Streams, line: str) -> None:
    streams.out.write(f"{line}\n".encode())
    streams.out.flush()


def _say(streams: Streams, message: str) -> None:
    streams.err.write(f"whisperx-api: {message}\n")
    streams.err.flush()


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value
