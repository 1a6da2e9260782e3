"""`whisperx-api serve | worker | transcribe FILE | jobs ... | live FILE|-`: the composition root
for the CLI."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from whisperx_api.client.commands import DEFAULT_SERVER, Streams, add_jobs_parser, run_jobs
from whisperx_api.client.live import add_live_parser, run_live
from whisperx_api.config import Settings
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions
from whisperx_api.domain.transcript import Task
from whisperx_api.errors import ConfigError, WhisperXApiError
from whisperx_api.memory import fix_malloc_thresholds
from whisperx_api.settings_loader import load_settings

log = logging.getLogger("whisperx_api")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `whisperx-api` console script."""
    args = _parser().parse_args(argv)
    if args.command == "jobs":  # a client of some server: this machine's server config is moot
        return run_jobs(args, Streams(sys.stdout.buffer, sys.stderr))
    if args.command == "live":
        return run_live(args, sys.stdout, sys.stderr)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"whisperx-api: configuration error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    fix_malloc_thresholds()  # before any model loads, so unloading one returns its memory
    try:
        result: int = args.handler(args, settings)
    except (ConfigError, WhisperXApiError) as exc:
        print(f"whisperx-api: {exc}", file=sys.stderr)
        return 2
    return result


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level != "debug":
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whisperx-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="bind address (default: WHISPER_API_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: WHISPER_API_PORT or 8000)")
    serve.set_defaults(handler=_serve)
    worker = sub.add_parser(
        "worker", help="MODE=kafka: consume jobs from Kafka and run them, one at a time"
    )
    worker.set_defaults(handler=_worker)
    transcribe = sub.add_parser("transcribe", help="transcribe one file and print the result")
    transcribe.add_argument("file", type=Path)
    transcribe.add_argument("--format", default="text", choices=[f.value for f in OutputFormat])
    transcribe.add_argument("--model", default="", help="model name (default: configured)")
    transcribe.add_argument("--language", default=None)
    transcribe.add_argument("--translate", action="store_true", help="translate to English")
    transcribe.add_argument("--no-progress", action="store_true", help="no progress bar")
    transcribe.set_defaults(handler=_transcribe)
    server = os.environ.get("WHISPERX_API_URL") or DEFAULT_SERVER
    api_key = os.environ.get("WHISPERX_API_KEY") or None
    add_jobs_parser(sub, server=server, api_key=api_key)
    add_live_parser(sub, server=server, api_key=api_key)
    return parser


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
            "MAX_CONCURRENT_JOBS, or use MODE=kafka with several workers to scale out."
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

    if settings.mode != "kafka":
        raise ConfigError("'whisperx-api worker' needs MODE=kafka (and KAFKA__*, S3__* settings)")
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
    from whisperx_api.formatters import render
    from whisperx_api.pipeline.registry import default_registry, transcription_backend_name
    from whisperx_api.pipeline.runner import PipelineRunner
    from whisperx_api.pipeline.stage import StageContext
    from whisperx_api.runtime.embedded import segment_rules

    fmt = OutputFormat(args.format)
    backend = default_registry().transcription(transcription_backend_name(settings))(settings)
    runner = PipelineRunner(
        backend,
        settings.limits.max_audio_seconds,
        segment_rules=segment_rules(settings),
        max_decode_seconds=settings.limits.max_decode_seconds,
    )
    options = TranscriptionOptions(
        model=args.model,
        task=Task.TRANSLATE if args.translate else Task.TRANSCRIBE,
        language=args.language,
        word_timestamps=fmt not in (OutputFormat.TEXT, OutputFormat.TXT, OutputFormat.JSON),
    )
    bar = None if args.no_progress else ProgressBar(sys.stderr)
    try:
        transcript = runner.run(args.file, options, StageContext(on_progress=bar))
    finally:
        backend.close()
        if bar is not None:
            bar.finish()
    sys.stdout.write(render(transcript, fmt, SubtitleOptions()).body)
    return 0


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
