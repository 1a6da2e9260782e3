"""Every example in the README and in docs/ is true: each fenced `sh`, `python` and `toml` block
runs against one real server (bundled base model) as a newcomer would paste it, with the server's
address and key and small recordings from tests/data put in place of the examples' own.

An example preceded by `<!-- not run: <why> -->` (it needs the internet, a microphone, Docker, a
Kafka broker, or starts a server that never returns) is checked for shape only: it parses, and
each of its curl calls names an endpoint and form fields that `/openapi.json` declares. Every
example, run or not, gets the shape check too."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

import whisperx_api
from tests.audio import DATA
from tests.known_voices import audio, cut, reference_turns, truth
from tests.realtime_client import pcm16
from tests.server import ServerProcess, start_server, stop_server
from whisperx_api.domain.audio import SAMPLE_RATE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(whisperx_api.__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KEY = "sk-doc-examples"
DOCUMENTED_SERVER = "http://127.0.0.1:8000"
KEY_PLACEHOLDER = "sk-..."
RUN_SECONDS = 300
LANGUAGES = {"sh": "sh", "bash": "sh", "python": "python", "toml": "toml"}
FENCE = re.compile(
    r"^(?:<!-- not run: (?P<reason>[^>]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
# The recordings the examples name, and the fixture each one is here.
RECORDINGS = {
    "lecture.mp3": "en_espeak.flac",
    "interview_fr.mp3": "fr_espeak.flac",
    "long-interview.mp3": "en_numbers.flac",
    "talk.mp3": "en_numbers.flac",
    "call.mp3": "en_numbers.flac",
    "call-stereo.flac": "conv2_stereo.flac",  # one party per channel
    "call.flac": "billing_call.flac",  # a card number, a phone number, an email address
    "mixed.flac": "languages.flac",  # English, German, French and Spanish sentences
}
# `meeting.mp3` is the first 11 s of conv2.flac: both speakers (turns of Ana, Ben, Ana), each
# voice's reference turn inside it, and half the decoding of the whole 24 s for the dozen
# examples that send it.
MEETING_SECONDS = 11.0
# The in-process `whisperx-api transcribe` examples transcribe English with the bundled English
# model; the server keeps base, for the examples in other languages.
CLI_MODEL = "tiny.en"


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    language: str
    body: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def examples() -> list[Example]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            language = LANGUAGES.get(match["lang"])
            if language is None:  # output, JSON shapes, diagrams: not something to run
                continue
            line = text.count("\n", 0, match.start("body"))
            name = str(page.relative_to(ROOT))
            found.append(Example(name, line, language, match["body"], match["reason"]))
    return found


EXAMPLES = examples()
RUNNABLE = [e for e in EXAMPLES if e.not_run is None]


def test_the_examples_are_found() -> None:
    pages = {e.page for e in EXAMPLES}
    assert {"README.md", "docs/getting-started.md", "docs/speakers.md"} <= pages
    assert {e.language for e in RUNNABLE} == {"sh", "python", "toml"}
    assert all(e.not_run for e in EXAMPLES if e.not_run is not None), "a reason is required"


# --- shape ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from whisperx_api.api.app import create_app
    from whisperx_api.config import JobsSettings, Settings, WhisperSettings

    root = tmp_path_factory.mktemp("schema")
    settings = Settings(
        jobs=JobsSettings(data_dir=root / "data"), whisper=WhisperSettings(cache_dir=root / "c")
    )
    schema: dict[str, Any] = create_app(settings).openapi()
    return schema


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_has_a_valid_shape(example: Example, openapi: dict[str, Any]) -> None:
    if example.language == "python":
        compile(example.body, example.id, "exec")
    elif example.language == "toml":
        tomllib.loads(example.body)
    else:
        result = subprocess.run(
            ["bash", "-n"], input=example.body, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        for url, fields in curl_calls(example.body):
            assert_declared(openapi, url, fields)


JSON_BODY = "<json>"  # stands in for the fields of a curl call that posts a JSON body


def curl_calls(script: str) -> Iterator[tuple[str, list[str]]]:
    """(URL, form field names) of every curl call in a shell example; a JSON body (`--json`,
    `-d`) counts as the one field `JSON_BODY`."""
    joined = script.replace("\\\n", " ")
    for line in joined.splitlines():
        if "curl " not in line:
            continue
        lexer = shlex.shlex(line[line.index("curl ") :], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = []
        for token in lexer:
            if token in {"|", ")", ";", "&&", ">", "||"}:
                break
            tokens.append(token)
        url = next(t for t in tokens if t.startswith("http"))
        fields = [
            value.split("=", 1)[0]
            for flag, value in itertools.pairwise(tokens)
            if flag in {"-F", "--form"}
        ]
        if any(t in {"--json", "-d", "--data"} for t in tokens):
            fields.append(JSON_BODY)
        yield url, fields


def assert_declared(schema: dict[str, Any], url: str, fields: list[str]) -> None:
    path = urlparse(url).path
    method = "post" if fields else "get"
    matches = [
        item
        for template, item in schema["paths"].items()
        if re.fullmatch(re.sub(r"\{[^}]+\}", r"[^/]+", template), path)
    ]
    if not matches:  # served, but not part of the schema (like /metrics)
        assert path in {"/metrics"}, f"{url}: no such endpoint"
        return
    assert method in matches[0], f"{method.upper()} {path} is not an operation"
    if not fields:
        return
    content = matches[0][method]["requestBody"]["content"]
    if fields == [JSON_BODY]:
        assert "application/json" in content, f"{path} takes no JSON body"
        return
    body = content["multipart/form-data"]["schema"]
    declared = set(body["properties"])
    unknown = [f for f in fields if f.split("[", 1)[0] not in declared]
    assert unknown == [], f"{path} declares no {unknown}"


# --- running -------------------------------------------------------------------------------


@dataclass
class Sandbox:
    server: ServerProcess
    workdir: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("examples")
    cache = root / "cache"
    server = start_server(
        {
            "API_KEY": KEY,
            "WHISPER_TMP_FILES": str(root / "data"),
            "WHISPER__CACHE_DIR": str(cache),
            "WHISPER__MODEL": "base",
        },
        root / "server.log",
    )
    try:
        workdir = root / "work"
        workdir.mkdir()
        bin_dir = root / "bin"
        bin_dir.mkdir()
        make_commands(bin_dir, workdir)
        make_recordings(workdir)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "API_KEY": KEY,
            "WHISPERX_API_URL": server.base_url,
            "WHISPERX_API_KEY": KEY,
            "WHISPER__CACHE_DIR": str(cache),
            "WHISPER__MODEL": CLI_MODEL,
            "HF_HUB_OFFLINE": "1",
            # The examples run elsewhere than the repository root: this checkout's sources first.
            "PYTHONPATH": os.pathsep.join([str(SOURCES), *absolute_python_path()]),
        }
        yield Sandbox(server, workdir, env)
    finally:
        stop_server(server)


def absolute_python_path() -> list[str]:
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return [str(Path(entry).resolve()) for entry in entries if entry]


def make_commands(bin_dir: Path, workdir: Path) -> None:
    """`whisperx-api` (also as `.venv/bin/whisperx-api`, where `make run` puts it) runs this
    checkout; `curl` fails on an HTTP error, so an example that gets a 4xx does not pass."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is missing: run `make install-system` (as root)")
    scripts = {
        "whisperx-api": f'exec "{sys.executable}" -m whisperx_api.cli "$@"',
        "curl": f'exec "{curl}" --fail-with-body "$@"',
    }
    venv_bin = workdir / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for folder in (bin_dir, venv_bin):
        for name, command in scripts.items():
            if folder == venv_bin and name == "curl":
                continue
            path = folder / name
            path.write_text(f"#!/bin/sh\n{command}\n")
            path.chmod(path.stat().st_mode | stat.S_IXUSR)


def make_recordings(workdir: Path) -> None:
    for name, fixture in RECORDINGS.items():
        shutil.copyfile(DATA / fixture, workdir / name)
    (workdir / "call.pcm").write_bytes(pcm16(DATA / "en_numbers.flac", 24_000))
    source = audio("conv2")
    write_wav(workdir / "meeting.mp3", source.samples[: int(MEETING_SECONDS * SAMPLE_RATE)])
    references = reference_turns(truth("conv2"))
    assert all(turn.end <= MEETING_SECONDS for turn in references.values()), references
    for name, voice in zip(("ana", "ben"), sorted(references), strict=True):
        write_wav(workdir / f"{name}.wav", cut(source, references[voice]))


def write_wav(path: Path, samples: np.ndarray[Any, np.dtype[np.float32]]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def localized(body: str, sandbox: Sandbox) -> str:
    return body.replace(DOCUMENTED_SERVER, sandbox.server.base_url).replace(KEY_PLACEHOLDER, KEY)


@pytest.mark.parametrize("example", RUNNABLE, ids=lambda e: e.id)
def test_example_runs_against_a_real_server(example: Example, sandbox: Sandbox) -> None:
    body = localized(example.body, sandbox)
    if example.language == "toml":
        result = serve_with_config(body, sandbox)
        # Loaded and past the exposure check; the next startup check (asked for here, so that
        # nothing binds) stops it before it listens.
        assert "refusing to listen" not in result.stderr, result.stderr
        assert "HTTP_WORKER_NUMBER=4" in result.stderr, result.stderr
        return
    if example.language == "python":
        command = [sys.executable, "-c", body]
    else:
        command = ["bash", "-c", "set -eo pipefail\n" + body]
    result = subprocess.run(
        command,
        cwd=sandbox.workdir,
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    if "known_speaker_names" in body or "known_speaker_ids" in body:  # voices name speakers
        assert "Ana" in result.stdout
        assert "Ben" in result.stdout


def serve_with_config(toml: str, sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    folder = sandbox.workdir / "conf"
    folder.mkdir(exist_ok=True)
    (folder / "whisper_api.conf").write_text(toml, encoding="utf-8")
    env = {**sandbox.env, "HTTP_WORKER_NUMBER": "4", "WHISPER_TMP_FILES": str(folder / "data")}
    for name in ("API_KEY", "WHISPERX_API_KEY", "WHISPER__MODEL"):  # the file's model counts
        env.pop(name)
    return subprocess.run(
        [sys.executable, "-m", "whisperx_api.cli", "serve"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_server_answered_every_example(sandbox: Sandbox) -> None:
    """The sandbox's server is alive after all of them (no example took it down)."""
    answer = httpx.get(f"{sandbox.server.base_url}/health", timeout=10)
    assert answer.status_code == 200
