"""Transcription by an external WhisperX command line (`WHISPER_CMD`, docs/configuration.md).

Older whisper-api servers ran `whisperx.sh` (a wrapper that activates WhisperX's own
virtualenv and calls the `whisperx` CLI) once per job and read the file it wrote. This backend
does the same, so a deployment can keep WhisperX, torch and its models in an environment of
their own: each job writes its audio to a private temp directory, runs the command there,
reads `<stem>.json` back and deletes the directory.

Every flag passed is one the real CLI defines (`whisperx/__main__.py` in m-bain/whisperX).
Quirks of that CLI that shape this module:

- `--compute_type` accepts only float16, float32 and int8 (plus `default` in recent releases),
  so our finer CTranslate2 types are mapped to the nearest of those.
- `--hotwords` exists only in releases since late 2025; it is passed only when a client asks
  for hotwords, so an older CLI fails that job loudly instead of ignoring the request.
- Its JSON `language` is the language it was *given*, or "en" when it detected one itself.
- Words its aligner could not time (numbers, symbols) carry no `start`/`end`; they are given
  the span between their timed neighbours here, so every `Word` has times.

The command loads its model afresh on every run, so nothing stays in this process's memory:
`loaded_models()` is always empty and load/unload are no-ops; `load_count` counts runs.

The command is a separate program that sees only what it needs: a minimal environment (never
the server's keys, tokens or cloud credentials unless `WHISPER__CMD_ENV` names them), a time
limit, and arguments checked at submit (a NUL byte or an oversized prompt is a 400, not three
failed runs). Its stderr goes to the server log; clients learn only that the command failed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Transcript, Word
from whisperx_api.errors import BackendError, InvalidValue
from whisperx_api.pipeline.catalog import OPENAI_ALIAS, plain_name
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.workdirs import make_workdir, record_child, sweep_orphans

log = logging.getLogger(__name__)

AUDIO_STEM = "audio"
STDERR_NAME = "whisperx.stderr"
STDERR_TAIL_CHARS = 500
_WAV_CHUNK = 1 << 20  # samples converted to int16 at a time, so a long file never doubles in RAM
_HUB_CACHE_DIR = re.compile(r"^models--Systran--faster-whisper-(?P<name>.+)$")
_CLI_COMPUTE_TYPES = {
    "float16": "float16",
    "bfloat16": "float16",
    "float32": "float32",
    "int8": "int8",
    "int8_float16": "int8",
    "int8_float32": "int8",
    "int8_bfloat16": "int8",
    "int16": "int8",
}
# What the command inherits from the server's environment (plus `LC_*` and `inherit_env`).
BASE_ENVIRONMENT = (
    "PATH",
    "HOME",
    "TMPDIR",
    "TEMP",
    "TMP",
    "LANG",
    "LANGUAGE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "TORCH_HOME",
    "XDG_CACHE_HOME",
)
# Longest client text passed as one argument; far above Whisper's 224-token prompt window, far
# below the kernel's 128 KiB limit on one argument.
MAX_ARGUMENT_CHARS = 4096


@dataclass(frozen=True, slots=True)
class CommandConfig:
    """How to run the command; per-request `device`/`device_index` override the defaults."""

    cmd: str
    default_model: str
    device: str = "auto"
    device_index: int = 0
    compute_type: str = "default"
    batch_size: int = 8
    chunk_size: int = 30
    threads: int = 0
    models_dir: Path | None = None
    output_dir: Path | None = None
    poll_seconds: float = 0.2
    timeout_seconds: float = 3600.0
    inherit_env: tuple[str, ...] = ()  # variable names passed on beyond `BASE_ENVIRONMENT`


class WhisperXCommandBackend:
    """Runs `WHISPER_CMD` per job and turns its JSON into a `Transcript`."""

    def __init__(self, config: CommandConfig) -> None:
        self._config = config
        self._command = _command_prefix(config.cmd)
        self._runs: dict[str, int] = {}
        self._lock = threading.Lock()
        sweep_orphans(config.output_dir)  # what a server killed mid-job left running

    def available_models(self) -> list[str]:
        """The default plus the models found in `models_dir`; the CLI may fetch others."""
        return sorted({self._config.default_model, *_models_in(self._config.models_dir)})

    def resolve_model(self, name: str) -> str:
        """A plain name goes through to the CLI, which resolves (or rejects) it itself; a path
        never does (`plain_name`), except the configured default."""
        name = name.strip()
        if not name or name in (OPENAI_ALIAS, self._config.default_model):
            return self._config.default_model
        return plain_name(name)

    def check_device(self, device: str | None, device_index: int | None) -> None:
        """Nothing to check here: the command runs elsewhere and reports a bad device itself."""

    def check_options(self, options: TranscriptionOptions) -> None:
        """Refuse client text the command cannot take as an argument."""
        check_arguments(options)

    def loaded_models(self) -> list[str]:
        """Always empty: the command loads its model per run, in its own process."""
        return []

    def load_model(self, name: str) -> str:
        """A no-op (nothing to preload across runs); returns the canonical name."""
        return self.resolve_model(name)

    def unload_model(self, name: str) -> str:
        """A no-op (nothing stays loaded); returns the canonical name."""
        return self.resolve_model(name)

    def load_count(self, name: str) -> int:
        """How many runs loaded `name`: each run of the command loads its model once."""
        with self._lock:
            return self._runs.get(self.resolve_model(name), 0)

    def close(self) -> None:
        """Nothing is held between runs."""

    def transcribe(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        """Write a WAV, run the command on it, parse its JSON; the temp dir never outlives us."""
        check_arguments(options)  # a job submitted elsewhere (MODE=distributed) may not have been
        model = self.resolve_model(options.model)
        ctx.report(0.0)
        workdir = self._make_workdir()
        try:
            wav = workdir / f"{AUDIO_STEM}.wav"
            write_wav(wav, audio.samples)
            ctx.check_cancelled()
            self._count_run(model)
            self._run(self.command_line(wav, workdir, model, options), workdir, ctx)
            data = _read_json(workdir / f"{AUDIO_STEM}.json")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        transcript = parse_result(data, options, audio.duration)
        ctx.report(1.0)
        return transcript

    def command_line(
        self, wav: Path, out_dir: Path, model: str, options: TranscriptionOptions
    ) -> list[str]:
        """The argv for one run, in the real `whisperx` CLI's spelling."""
        device = options.device or self._config.device
        index = self._config.device_index if options.device_index is None else options.device_index
        argv = [*self._command, str(wav), f"--model={self._model_arg(model)}"]
        argv += ["--output_dir", str(out_dir), "--output_format", "json", "--verbose", "False"]
        if device != "auto":  # "auto": the CLI's own default (cuda when torch sees one)
            argv += ["--device", device]
        argv += ["--device_index", str(index)]
        compute_type = _cli_compute_type(self._config.compute_type, device)
        if compute_type is not None:
            argv += ["--compute_type", compute_type]
        return argv + self._decoding_flags(options)

    def _decoding_flags(self, options: TranscriptionOptions) -> list[str]:
        flags = ["--batch_size", str(options.batch_size or self._config.batch_size)]
        flags += ["--chunk_size", str(options.chunk_size or self._config.chunk_size)]
        flags += ["--task", options.task.value, "--temperature", str(options.temperature)]
        flags += ["--temperature_increment_on_fallback", "None"]  # no fallback, as faster-whisper
        optional = {
            "--language": options.language,
            "--initial_prompt": options.prompt,
            "--hotwords": options.hotwords,
            "--model_dir": str(self._config.models_dir) if self._config.models_dir else None,
            "--threads": str(self._config.threads) if self._config.threads > 0 else None,
        }
        # `--flag=value`: a client's prompt may itself start with "--"
        flags += [f"{flag}={value}" for flag, value in optional.items() if value]
        if options.suppress_numerals:
            flags.append("--suppress_numerals")
        if not options.word_timestamps:
            flags.append("--no_align")
        return flags

    def _model_arg(self, model: str) -> str:
        """A CTranslate2 model directory in `models_dir` goes by path; anything else by name."""
        models_dir = self._config.models_dir
        if models_dir is not None and "/" not in model and _is_model_dir(models_dir / model):
            return str(models_dir / model)
        return model

    def _make_workdir(self) -> Path:
        """A fresh 0700 directory under `output_dir` (created if needed), else the system temp."""
        return make_workdir(self._config.output_dir)

    def _count_run(self, model: str) -> None:
        with self._lock:
            self._runs[model] = self._runs.get(model, 0) + 1

    def _run(self, argv: Sequence[str], workdir: Path, ctx: StageContext) -> None:
        """Run to completion; on cancellation or past the time limit kill the whole process
        group (wrapper + python). The stderr tail goes to the log, never to the client."""
        stderr_path = workdir / STDERR_NAME
        config = self._config
        env = child_environment(os.environ, config.inherit_env)
        with stderr_path.open("wb") as stderr:
            proc = _start(argv, workdir, stderr, env)
            try:
                record_child(workdir, proc.pid)
                code = _wait(proc, ctx, config.poll_seconds, config.timeout_seconds)
            except BaseException:
                _kill_group(proc)
                raise
        if code is None:
            log.error(
                "the whisperx command ran past %g s and was killed; stderr: %s",
                config.timeout_seconds,
                stderr_tail(stderr_path),
            )
            raise BackendError(
                f"The transcription command did not finish within {config.timeout_seconds:g} s "
                "and was stopped."
            )
        if code != 0:
            log.error("%s", _failure_message(code, stderr_tail(stderr_path)))
            raise BackendError(_client_message(code))


def check_arguments(options: TranscriptionOptions) -> None:
    """400 for client text that cannot be one argument of a command line."""
    fields = {
        "prompt": options.prompt,
        "hotwords": options.hotwords,
        "language": options.language,
        "model": options.model,
    }
    for param, value in fields.items():
        if value is None:
            continue
        if "\x00" in value:
            raise InvalidValue(
                f"'{param}' contains a NUL character, which this server's transcription "
                "command cannot take.",
                param=param,
            )
        if len(value) > MAX_ARGUMENT_CHARS:
            raise InvalidValue(
                f"'{param}' is {len(value)} characters long; this server's transcription "
                f"command takes at most {MAX_ARGUMENT_CHARS}.",
                param=param,
            )


def child_environment(source: Mapping[str, str], inherit: Sequence[str]) -> dict[str, str]:
    """The part of `source` the command may see: `BASE_ENVIRONMENT`, `LC_*`, and `inherit`."""
    keep = {*BASE_ENVIRONMENT, *inherit}
    return {name: value for name, value in source.items() if name in keep or name[:3] == "LC_"}


def _command_prefix(cmd: str) -> list[str]:
    """An existing path is one argument even with spaces; otherwise split like a shell would."""
    if Path(cmd).expanduser().exists():
        return [str(Path(cmd).expanduser())]
    parts = shlex.split(cmd)
    if not parts:
        raise BackendError("WHISPER_CMD is empty")
    return parts


def _models_in(models_dir: Path | None) -> set[str]:
    """CTranslate2 model directories by name, and faster-whisper hub downloads by size name."""
    if models_dir is None or not models_dir.is_dir():
        return set()
    names: set[str] = set()
    for entry in models_dir.iterdir():
        hub = _HUB_CACHE_DIR.match(entry.name)
        if hub is not None and entry.is_dir():
            names.add(hub["name"])
        elif _is_model_dir(entry):
            names.add(entry.name)
    return names


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file()


def _cli_compute_type(compute_type: str, device: str) -> str | None:
    """The CLI's nearest type; None (its own default) when neither type nor device is known."""
    if compute_type in ("default", "auto"):
        if device == "auto":
            return None
        return "float16" if device == "cuda" else "int8"
    return _CLI_COMPUTE_TYPES.get(compute_type, "float32")


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> None:
    """16-bit mono PCM at `SAMPLE_RATE`, converted in chunks."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for start in range(0, len(samples), _WAV_CHUNK):
            chunk = np.clip(samples[start : start + _WAV_CHUNK], -1.0, 1.0) * 32767.0
            out.writeframes(chunk.astype("<i2").tobytes())


def _start(
    argv: Sequence[str], workdir: Path, stderr: BinaryIO, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(  # an argv list from configuration, never a shell
            list(argv),
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group, so a kill reaches its children
        )
    except (OSError, ValueError) as exc:
        log.error("WHISPER_CMD %r could not be started: %s", argv[0], exc)
        raise BackendError(
            "The transcription command could not be started; the server log says why."
        ) from exc


def _wait(
    proc: subprocess.Popen[bytes], ctx: StageContext, poll_seconds: float, timeout_seconds: float
) -> int | None:
    """The exit status, or None when the time limit passed first (the command still runs)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill_group(proc)
            return None
        try:
            return proc.wait(timeout=min(poll_seconds, remaining))
        except subprocess.TimeoutExpired:
            ctx.check_cancelled()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def stderr_tail(path: Path, lines: int = 5, limit: int = STDERR_TAIL_CHARS) -> str:
    """The last few non-empty lines of the command's stderr, at most `limit` characters."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 8 * limit))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    tail = " | ".join(kept)
    return tail if len(tail) <= limit else "..." + tail[-(limit - 3) :]


def _failure_message(code: int, tail: str) -> str:
    """For the log: how the command ended and the tail of its stderr."""
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return f"The whisperx command {how}" + (f": {tail}" if tail else "")


def _client_message(code: int) -> str:
    """For the client: how the command ended, nothing it printed."""
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return f"The transcription command {how}; the server log has the details."


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackendError(f"The whisperx command wrote no JSON output ({path.name})") from None
    except (OSError, UnicodeDecodeError) as exc:
        log.error("the whisperx JSON output could not be read: %s", exc)
        raise BackendError("The whisperx JSON output could not be read.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        log.error("the whisperx JSON output is not valid JSON: %s", exc)
        raise BackendError("The whisperx JSON output is not valid JSON.") from exc


def parse_result(data: Any, options: TranscriptionOptions, duration: float) -> Transcript:
    """WhisperX's `{"segments": [...], "language": ...}` as a `Transcript`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("segments"), list):
        raise BackendError("The whisperx JSON output has no 'segments' list")
    try:
        segments = _segments(data["segments"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"The whisperx JSON output has an unexpected shape: {exc!r}") from exc
    language = data.get("language")
    return Transcript(
        task=options.task,
        language=language if isinstance(language, str) and language else options.language or "",
        duration=duration,
        segments=segments,
    )


def _segments(raw: list[Any]) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    for item in raw:
        previous_end = segments[-1].end if segments else 0.0
        start = _time(item.get("start"), previous_end)
        end = max(start, _time(item.get("end"), start))
        segments.append(
            Segment(
                id=len(segments),
                start=start,
                end=end,
                text=str(item.get("text", "")).strip(),
                words=_words(item.get("words") or [], start, end),
                speaker=_speaker(item),
            )
        )
    return tuple(segments)


def _words(raw: list[Any], seg_start: float, seg_end: float) -> tuple[Word, ...]:
    """Runs of untimed words share the gap between their timed neighbours (or the segment's
    edges) evenly, so every word has a start and an end."""
    words: list[Word] = []
    pending: list[Mapping[str, Any]] = []
    for item in raw:
        if not _is_timed(item):
            pending.append(item)
            continue
        start = float(item["start"])
        words += _spread(pending, words[-1].end if words else seg_start, start)
        pending = []
        words.append(_word(item, start, float(item["end"])))
    words += _spread(pending, words[-1].end if words else seg_start, seg_end)
    return tuple(words)


def _spread(items: list[Mapping[str, Any]], left: float, right: float) -> list[Word]:
    step = max(0.0, right - left) / len(items) if items else 0.0
    return [_word(item, left + step * n, left + step * (n + 1)) for n, item in enumerate(items)]


def _is_timed(item: Mapping[str, Any]) -> bool:
    return _number(item.get("start")) is not None and _number(item.get("end")) is not None


def _word(item: Mapping[str, Any], start: float, end: float) -> Word:
    score = _number(item.get("score"))
    return Word(text=str(item["word"]), start=start, end=end, score=score, speaker=_speaker(item))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if np.isfinite(value) else None


def _time(value: Any, fallback: float) -> float:
    number = _number(value)
    return fallback if number is None else number


def _speaker(item: Mapping[str, Any]) -> str | None:
    speaker = item.get("speaker")
    return speaker if isinstance(speaker, str) and speaker else None
