"""`whisperx-api serve | worker | transcribe FILE | jobs ... | live FILE|-`.

The composition root of the command line: the only place that reads the environment. Every
mistake a user can make here ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from whisperx_api import __version__
from whisperx_api.client.commands import DEFAULT_SERVER, Streams, add_jobs_parser, run_jobs
from whisperx_api.client.live import add_live_parser, run_live
from whisperx_api.config import Settings
from whisperx_api.domain.cleanup import Redaction
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.errors import ConfigError, InvalidRequest, WhisperXApiError
from whisperx_api.memory import fix_malloc_thresholds
from whisperx_api.settings_loader import config_path, load_settings

if TYPE_CHECKING:
    from whisperx_api.domain.job import JobSpec

log = logging.getLogger("whisperx_api")


DESCRIPTION = (
    "Self-hosted speech-to-text with an OpenAI-compatible API: run the server or a worker, "
    "transcribe a file here, or drive a running server's jobs and live sessions."
)
USAGE_EXIT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `whisperx-api` console script."""
    args = _parser().parse_args(argv)
    if args.command == "jobs":  # a client of some server: this machine's server config is moot
        return run_jobs(args, Streams(sys.stdout.buffer, sys.stderr))
    if args.command == "live":
        return run_live(args, sys.stdout, sys.stderr)
    try:
        _announce_config_file()
        settings = load_settings()
    except ConfigError as exc:
        _say(f"configuration error: {exc}")
        return USAGE_EXIT
    _configure_logging(settings.log_level)
    fix_malloc_thresholds()  # before any model loads, so unloading one returns its memory
    try:
        result: int = args.handler(args, settings)
    except (ConfigError, WhisperXApiError) as exc:
        _say(str(exc))
        return USAGE_EXIT
    except OSError as exc:  # an unreadable file, a full disk, a port already taken
        _say(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    return result


def _announce_config_file() -> None:
    """Say which TOML file is read (a `whisper_api.conf` in the working directory counts), so
    that a stray one never changes the model or the port unnoticed."""
    path = config_path(os.environ, None, Path.cwd())
    if path is not None:
        _say(f"reading settings from {path.resolve()}")


def _say(message: str) -> None:
    """One line on stderr, with the program's name."""
    text = " ".join(message.split()) if "\n" not in message else message
    print(f"whisperx-api: {text}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line (what is wrong, and where to read more), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level != "debug":
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="whisperx-api", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Subcommand parsers are OneLineParsers too; the helpers only need ArgumentParser's API.
    sub: argparse._SubParsersAction[Any] = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    serve = sub.add_parser(
        "serve",
        help="run the HTTP server",
        description="Run the HTTP server (settings: environment, then whisper_api.conf).",
    )
    serve.add_argument("--host", help="bind address (default: WHISPER_API_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, help="port, 1-65535 (default: WHISPER_API_PORT or 8000)"
    )
    serve.set_defaults(handler=_serve)
    worker = sub.add_parser(
        "worker",
        help="MODE=distributed: run queued jobs from Kafka",
        description="Consume jobs from Kafka and run them, one at a time, until SIGTERM; needs "
        "MODE=distributed and the KAFKA__* and S3__* settings.",
    )
    worker.set_defaults(handler=_worker)
    transcribe = sub.add_parser(
        "transcribe",
        help="transcribe one file here and print the result",
        description="Transcribe one file in this process with the server's own pipeline "
        "(alignment, diarization with --diarize, segmentation, formats) and print the result "
        "as the server would send it.",
    )
    transcribe.add_argument("file", type=Path, help="audio or video file")
    transcribe.add_argument(
        "--format",
        default="text",
        choices=[f.value for f in OutputFormat],
        metavar="FORMAT",
        help="%(choices)s (default: %(default)s)",
    )
    transcribe.add_argument("--model", default="", help="model name (default: the configured)")
    transcribe.add_argument("--language", default=None, help="ISO-639-1 code (default: detect)")
    transcribe.add_argument("--prompt", default=None, help="initial prompt")
    transcribe.add_argument("--translate", action="store_true", help="translate to English")
    transcribe.add_argument("--diarize", action="store_true", help="find who spoke when")
    transcribe.add_argument("--min-speakers", type=int, default=None, metavar="N")
    transcribe.add_argument("--max-speakers", type=int, default=None, metavar="N")
    transcribe.add_argument("--no-progress", action="store_true", help="no progress bar")
    transcribe.add_argument(
        "--replace",
        action="append",
        default=[],
        type=_replacement,
        metavar="FROM=TO",
        help="replace a word or phrase (case-insensitive, whole words); repeatable",
    )
    transcribe.add_argument(
        "--redact",
        action="append",
        default=[],
        choices=[kind.value for kind in Redaction],
        help="hide personal data of this kind in the result; repeatable",
    )
    transcribe.set_defaults(handler=_transcribe)
    server = os.environ.get("WHISPERX_API_URL") or DEFAULT_SERVER
    api_key = os.environ.get("WHISPERX_API_KEY") or None
    add_jobs_parser(sub, server=server, api_key=api_key)
    add_live_parser(sub, server=server, api_key=api_key)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from whisperx_api.api.app import create_app

    server = settings.server.model_copy(
        update={
            "host": args.host or settings.server.host,
            "port": args.port or settings.server.port,
        }
    )
    settings = settings.model_copy(update={"server": server})
    _refuse_open_exposure(settings)
    workers = settings.server.worker_number
    if workers > 1:
        raise ConfigError(
            f"HTTP_WORKER_NUMBER={workers}: this server runs one job engine per process and "
            "shares models between requests; run one HTTP worker (0 or 1) and raise "
            "MAX_CONCURRENT_JOBS, or use MODE=distributed with several workers to scale out."
        )
    # uvicorn re-raises the signal that stopped it once shutdown is done; with the default
    # SIGTERM handler that would turn a clean, graceful exit into death by signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        create_app(settings),
        host=server.host,
        port=server.port,
        timeout_keep_alive=int(server.keepalive),
        log_level=settings.log_level,
        # Live-session events up to REALTIME__MAX_EVENT_BYTES are read and answered; up to
        # twice that they are read and refused with an error event; past it, the socket closes.
        ws_max_size=2 * settings.realtime.max_event_bytes,
        access_log=False,  # the app logs each request once, with the client's name (AccessLog)
    )
    return 0


def _refuse_open_exposure(settings: Settings) -> None:
    """No server reachable from other machines without keys, unless that was asked for."""
    host = settings.server.host
    if settings.auth_enabled or settings.enable_authorization is False or _is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host} without authentication: anyone who reaches this port "
        "could use the server. Set API_KEY (or API_KEYS_FILE), listen on 127.0.0.1, or set "
        "ENABLE_AUTHORIZATION=false to serve without keys on purpose."
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run one distributed worker until SIGTERM or SIGINT."""
    import asyncio

    from whisperx_api.runtime.extras import require_distributed_extra

    if settings.mode != "distributed":
        raise ConfigError("'whisperx-api worker' needs MODE=distributed (and KAFKA__*, S3__*)")
    require_distributed_extra()
    from whisperx_api.distributed.runtime import prepare_worker

    if settings.worker.metrics_port is not None:
        from whisperx_api.metrics import serve_worker_metrics

        serve_worker_metrics(settings.worker.metrics_host, settings.worker.metrics_port)

    async def work() -> None:
        worker = await prepare_worker(settings)
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, worker.request_stop)
        await worker.run()

    asyncio.run(work())
    return 0


def _transcribe(args: argparse.Namespace, settings: Settings) -> int:
    """The server's pipeline in this process: the same form checks, the same runner built by
    the same function, the same renderer; only the queue is missing."""
    from whisperx_api.formatters import render
    from whisperx_api.pipeline.registry import default_registry
    from whisperx_api.pipeline.stage import StageContext
    from whisperx_api.runtime.embedded import build_models, build_runner

    spec = transcribe_spec(args)
    if not args.file.is_file():
        why = "not a file" if args.file.exists() else "no such file"
        raise InvalidRequest(f"cannot read {args.file}: {why}")
    runner = build_runner(settings, default_registry())
    bar = None if args.no_progress else ProgressBar(sys.stderr)
    try:
        # The server's submit-time model check; whoever runs this command may download.
        build_models(settings, runner).admit(spec.options.model, may_download=True)
        options = runner.check(spec.options)
        runner.probe(args.file, options)
        transcript = runner.run(args.file, options, StageContext(on_progress=bar))
    finally:
        runner.close()
        if bar is not None:
            bar.finish()
    sys.stdout.write(render(transcript, spec.response_format, spec.subtitles).body)
    return 0


def _replacement(text: str) -> tuple[str, str]:
    source, equals, target = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"{text!r} is not FROM=TO")
    return source, target


def transcribe_spec(args: argparse.Namespace) -> JobSpec:
    """The job the server would run for the same options sent as a form: parsed and checked by
    the server's own form models, so defaults and refusals cannot differ. `verbose_json` asks
    for words and segments, as a request with both timestamp granularities does."""
    from starlette.datastructures import FormData

    from whisperx_api.api.forms import parse_form
    from whisperx_api.api.schemas import TranscriptionForm, TranslationForm

    fields: list[tuple[str, Any]] = [("response_format", args.format), ("model", args.model)]
    if args.format == OutputFormat.VERBOSE_JSON:
        fields += [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")]
    optional = {"prompt": args.prompt, "language": args.language}
    if args.diarize or args.min_speakers is not None or args.max_speakers is not None:
        optional.update(diarize="true", min_speakers=args.min_speakers)
        optional.update(max_speakers=args.max_speakers)
    fields += [(k, str(v)) for k, v in optional.items() if v is not None]
    if args.replace:
        fields.append(("replacements", json.dumps(dict(args.replace))))
    fields += [("redact[]", kind) for kind in args.redact]
    if args.translate:
        if args.diarize or args.language:
            raise InvalidRequest("--translate takes neither --language nor --diarize")
        return parse_form(TranslationForm, FormData(fields)).to_spec(None)
    return parse_form(TranscriptionForm, FormData(fields)).to_spec(None)


class ProgressBar:
    """A one-line text bar on stderr, redrawn as the pipeline reports progress."""

    def __init__(self, stream: TextIO, width: int = 40) -> None:
        self._stream = stream
        self._width = width
        self._shown = -1

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent == self._shown:
            return
        self._shown = percent
        filled = int(fraction * self._width)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r[{bar}] {percent:3d}%")
        self._stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self._shown >= 0:
            self._stream.write("\n")
            self._stream.flush()


if __name__ == "__main__":
    raise SystemExit(main())
