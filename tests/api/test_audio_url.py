"""`audio_url`: a real HTTP server on loopback serves the audio; the guard refuses private
targets before any connection is made."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.url_server import Routes, connections_made, serving, silent_listener
from whisperx_api import net_guard
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

OPENAI = "/v1/audio/transcriptions"
LIMIT = 200_000


@pytest.fixture
def routes(tmp_path: Path) -> Routes:
    return Routes(
        bodies={
            "/audio.wav": (tone_bytes(tmp_path, 2.0), "audio/wav"),
            "/long.wav": (tone_bytes(tmp_path, 5.0, "long.wav"), "audio/wav"),
            "/page.html": (b"<html><body>not audio</body></html>" * 20, "text/html"),
        },
        big_bytes=LIMIT + 50_000,
    )


@pytest.fixture
def base_url(routes: Routes) -> Iterator[str]:
    with serving(routes) as url:
        yield url


def open_settings(make_settings: Callable[..., Settings], **fetch: Any) -> Settings:
    return make_settings(
        fetch={"allow_private_networks": True, "read_timeout_seconds": 1.0, **fetch},
        limits={"max_file_size": LIMIT, "max_audio_seconds": 4.0},
    )


def assert_error(response: Any, status: int, code: str, param: str = "audio_url") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error


async def test_audio_url_is_downloaded_and_transcribed_on_every_endpoint(
    make_settings: Callable[..., Settings], base_url: str, routes: Routes
) -> None:
    backend = FakeTranscriber()
    app = fake_app(open_settings(make_settings), backend)
    url = f"{base_url}/audio.wav"
    async with running(app) as client:
        openai = await client.post(OPENAI, data={"audio_url": url})
        translated = await client.post("/v1/audio/translations", data={"audio_url": url})
        job = await client.post("/transcription", data={"audio_url": url, "sync": "true"})
        redirected = await client.post(OPENAI, data={"audio_url": f"{base_url}/redirect/2"})
    for response in (openai, translated, redirected):
        assert response.status_code == 200, response.text
        assert response.json()["text"] == "hello from the fake backend says goodbye"
    assert job.status_code == 200, job.text
    assert len(backend.calls) == 4
    assert routes.hits.count("/audio.wav") == 4


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/redirect/3", 400, "download_failed"),  # four redirects
        ("/big", 413, "file_too_large"),
        ("/big-chunked", 413, "file_too_large"),
        ("/slow", 400, "download_failed"),
        ("/page.html", 400, "invalid_audio"),
        ("/missing.wav", 400, "download_failed"),
        ("/long.wav", 400, "audio_too_long"),
    ],
)
async def test_bad_downloads_get_their_documented_error(
    make_settings: Callable[..., Settings],
    base_url: str,
    path: str,
    status: int,
    code: str,
) -> None:
    backend = FakeTranscriber()
    app = fake_app(open_settings(make_settings), backend)
    async with running(app) as client:
        response = await client.post(OPENAI, data={"audio_url": base_url + path})
    assert_error(response, status, code)
    assert backend.calls == []


async def test_redirects_count_against_their_own_limit(
    make_settings: Callable[..., Settings], base_url: str
) -> None:
    app = fake_app(open_settings(make_settings, max_redirects=1), FakeTranscriber())
    async with running(app) as client:
        one = await client.post(OPENAI, data={"audio_url": f"{base_url}/redirect/0"})
        two = await client.post(OPENAI, data={"audio_url": f"{base_url}/redirect/1"})
    assert one.status_code == 200, one.text
    assert_error(two, 400, "download_failed")


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({}, "file"),
        ({"audio_url": "ftp://example.com/a.wav"}, "audio_url"),
        ({"audio_url": "not a url"}, "audio_url"),
        ({"audio_url": "http://user:pw@example.com/a.wav"}, "audio_url"),
    ],
)
async def test_missing_or_malformed_source_is_refused(
    make_settings: Callable[..., Settings], data: dict[str, str], param: str
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(OPENAI, data=data, files={"x": ("x", b"")})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_file_and_audio_url_together_are_refused(
    make_settings: Callable[..., Settings], tmp_path: Path, base_url: str, routes: Routes
) -> None:
    app = fake_app(open_settings(make_settings), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(
            OPENAI,
            data={"audio_url": f"{base_url}/audio.wav"},
            files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "audio_url"


async def test_private_targets_are_refused_before_any_connection(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default settings: loopback, private, link-local and names resolving to them."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        table = {"loopback.test": ["127.0.0.1"], "mixed.test": ["93.184.216.34", "10.1.2.3"]}
        if host in table:
            return table[host]
        return await real_resolver(host, port)

    real_resolver = net_guard.system_resolver
    monkeypatch.setattr(net_guard, "system_resolver", resolver)
    backend = FakeTranscriber()
    app = fake_app(make_settings(), backend)
    with silent_listener(socket.AF_INET, "127.0.0.1") as (port4, listener4):
        urls = [
            f"http://127.0.0.1:{port4}/a.wav",
            f"http://localhost:{port4}/a.wav",
            f"http://loopback.test:{port4}/a.wav",
            f"http://mixed.test:{port4}/a.wav",
            "http://10.0.0.7/a.wav",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/a.wav",
            "http://[::ffff:127.0.0.1]/a.wav",
            "http://0.0.0.0/a.wav",
            "http://224.0.0.1/a.wav",
        ]
        async with running(app) as client:
            answers = [await client.post(OPENAI, data={"audio_url": u}) for u in urls]
        made = connections_made(listener4)
    for url, response in zip(urls, answers, strict=True):
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"]["code"] == "url_not_allowed", url
        assert response.json()["error"]["param"] == "audio_url"
    assert made == 0
    assert {"localhost", "loopback.test", "mixed.test"} <= set(asked)
    assert backend.calls == []


async def test_ipv6_loopback_listener_sees_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    with ExitStack() as stack:
        try:
            port, listener = stack.enter_context(silent_listener(socket.AF_INET6, "::1"))
        except OSError:  # no IPv6 loopback on this machine: the guard must still refuse [::1]
            port, listener = 9, None
        app = fake_app(make_settings(), FakeTranscriber())
        async with running(app) as client:
            response = await client.post(OPENAI, data={"audio_url": f"http://[::1]:{port}/a"})
        assert_error(response, 400, "url_not_allowed")
        if listener is not None:
            assert connections_made(listener) == 0


async def test_a_name_is_resolved_once_and_the_connection_goes_to_that_address(
    make_settings: Callable[..., Settings],
    base_url: str,
    routes: Routes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No rebinding: the server sees the name in Host, but the socket went to the checked IP."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(net_guard, "system_resolver", resolver)
    port = base_url.rsplit(":", 1)[1]
    app = fake_app(open_settings(make_settings), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(
            OPENAI, data={"audio_url": f"http://audio.invalid:{port}/audio.wav"}
        )
    assert response.status_code == 200, response.text
    assert asked == ["audio.invalid"]
    assert routes.hosts == [f"audio.invalid:{port}"]


def gzipped(data: bytes, layers: int) -> bytes:
    for _ in range(layers):
        data = gzip.compress(data, compresslevel=9)
    return data


@pytest.mark.parametrize(
    ("encoding", "layers", "status", "code"),
    [
        ("gzip, gzip", 2, 400, "download_failed"),  # stacked: refused before decoding
        ("br", 2, 400, "download_failed"),  # an encoding this server does not decode
        ("gzip", 1, 413, "file_too_large"),  # one layer, but it decodes past the limit
    ],
)
async def test_compressed_bodies_are_refused_or_counted_decoded(
    make_settings: Callable[..., Settings],
    base_url: str,
    routes: Routes,
    encoding: str,
    layers: int,
    status: int,
    code: str,
) -> None:
    routes.bodies["/bomb.wav"] = (gzipped(b"\0" * (LIMIT * 50), layers), "audio/wav")
    routes.headers["/bomb.wav"] = {"Content-Encoding": encoding}
    assert len(routes.bodies["/bomb.wav"][0]) < LIMIT
    app = fake_app(open_settings(make_settings), FakeTranscriber())
    async with running(app) as client:
        response = await client.post(OPENAI, data={"audio_url": f"{base_url}/bomb.wav"})
    assert_error(response, status, code)
    assert routes.accept_encodings == ["identity"]


async def test_a_gzipped_body_within_the_limit_is_decoded(
    make_settings: Callable[..., Settings], base_url: str, routes: Routes
) -> None:
    routes.bodies["/z.wav"] = (gzipped(routes.bodies["/audio.wav"][0], 1), "audio/wav")
    routes.headers["/z.wav"] = {"Content-Encoding": "gzip"}
    backend = FakeTranscriber()
    app = fake_app(open_settings(make_settings), backend)
    async with running(app) as client:
        response = await client.post(OPENAI, data={"audio_url": f"{base_url}/z.wav"})
    assert response.status_code == 200, response.text
    assert len(backend.calls) == 1


async def test_an_idn_host_is_a_clear_400(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(open_settings(make_settings, allow_private_networks=False), FakeTranscriber())
    async with running(app) as client:
        bad = await client.post(OPENAI, data={"audio_url": "http://\U0001f4a9.example/a.wav"})
        idn = await client.post(OPENAI, data={"audio_url": "http://bücher.invalid/a.wav"})
    assert_error(bad, 400, "url_not_allowed")
    assert_error(idn, 400, "url_not_allowed")  # encoded, then not resolvable
    assert "could not be resolved" in idn.json()["error"]["message"]
