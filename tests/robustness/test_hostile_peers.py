"""Hostile peers against a real server on loopback: remote servers, receivers, uploads and live
clients that try to exhaust its memory, freeze its event loop or hold a slot.

An attacker would host these peers publicly; here the server runs with
`FETCH__ALLOW_PRIVATE_NETWORKS=true` so that it reaches them on loopback. Each case asserts the
bound a tenant relies on: the server's resident memory (its peak, `VmHWM`, reset before the
attack), how long `/health` waits, when another tenant's webhook or session gets through, and
that every refusal is a clear 4xx, never a 500.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.audio import tone_bytes
from tests.bombs import many_packet_audio, stacked_gzip
from tests.job_client import job_status, submit_job, wait_for
from tests.robustness.conftest import KEY, Deployment, assert_error, cli_settings, make_deployment
from tests.url_server import Routes, serving
from tests.webhook_receiver import SECRET, Receiver, receiving
from tests.ws_flooder import flooding

pytestmark = pytest.mark.slow

GIB = 1024**3
MIB = 1024**2
BOMB_RSS_BOUND = 200 * MIB
FIELDS_RSS_BOUND = 100 * MIB
WEBHOOK_TIMEOUT = 3.0
JOB_SECONDS = 120.0  # one wait on job work on a loaded 2-core machine
POLL = 0.05


# -- the server and its peers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture(scope="module")
def routes() -> Routes:
    return Routes()


@pytest.fixture(scope="module")
def files(routes: Routes) -> Iterator[str]:
    with serving(routes) as url:
        yield url


@pytest.fixture(scope="module")
def open_server(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[Deployment]:
    """The bundled tiny.en model, allowed to reach loopback peers; short limits so that each
    attack settles in seconds."""
    deployment = make_deployment(
        tmp_path_factory.mktemp("hostile"),
        model_cache,
        FETCH__ALLOW_PRIVATE_NETWORKS="true",
        FETCH__READ_TIMEOUT_SECONDS="5",
        LIMITS__MAX_FILE_SIZE=str(400 * MIB),  # the default order: the field limits must hold
        WEBHOOKS__SECRET=SECRET,
        WEBHOOKS__TIMEOUT_SECONDS=str(WEBHOOK_TIMEOUT),
        WEBHOOKS__BACKOFF_SECONDS="0.2",
        WEBHOOKS__MAX_ATTEMPTS="2",
        REALTIME__MAX_SESSIONS="1",
        REALTIME__SEND_TIMEOUT="3",
        REALTIME__IDLE_TIMEOUT="30",
    )
    deployment.start()
    with deployment.client() as client:  # load the model now: memory is measured after it
        warm = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", tone_bytes(deployment.tmp.parent, 1.0, "warm.wav"))},
        )
        assert warm.status_code == 200, warm.text
    try:
        yield deployment
    finally:
        deployment.stop()


class PeakMemory:
    """The server's peak resident memory during a block, over what it held before it."""

    def __init__(self, pid: int) -> None:
        self._proc = Path(f"/proc/{pid}")
        self.growth = 0

    def _status(self, field: str) -> int:
        for line in (self._proc / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc status")

    def __enter__(self) -> PeakMemory:
        self._before = self._status("VmRSS")
        (self._proc / "clear_refs").write_text("5")  # VmHWM := current RSS
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = self._status("VmHWM") - self._before


def peak(deployment: Deployment) -> PeakMemory:
    return PeakMemory(deployment.server.process.pid)


# -- compression bombs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "layers", "status", "code"),
    [("gzip, gzip", 2, 400, "download_failed"), ("gzip", 1, 413, "file_too_large")],
)
def test_a_gzip_bomb_as_audio_url_is_a_clear_4xx_within_bounded_memory(
    open_server: Deployment,
    routes: Routes,
    files: str,
    encoding: str,
    layers: int,
    status: int,
    code: str,
) -> None:
    path = f"/bomb-{layers}.wav"
    routes.bodies[path] = (stacked_gzip(GIB, layers), "audio/wav")  # 1 GiB decoded
    routes.headers[path] = {"Content-Encoding": encoding}
    with peak(open_server) as memory, open_server.client() as client:
        response = client.post("/v1/audio/transcriptions", data={"audio_url": f"{files}{path}"})
    assert_error(response, status, "invalid_request_error", code, "audio_url")
    print(f"audio_url bomb ({encoding}): server RSS peak +{memory.growth / MIB:.1f} MB")
    assert memory.growth <= BOMB_RSS_BOUND


def bomb_reply(handler: BaseHTTPRequestHandler, status: int) -> None:
    body = stacked_gzip(GIB)
    handler.send_response(status)
    handler.send_header("content-encoding", "gzip, gzip")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def webhook_of(client: httpx.Client, job_id: str, check: Callable[[dict[str, Any]], bool]) -> Any:
    def settled() -> dict[str, Any] | None:
        webhook = job_status(client, job_id).get("webhook")
        return webhook if webhook and check(webhook) else None

    return wait_for(settled, f"job {job_id}'s webhook", JOB_SECONDS, POLL)


def test_a_gzip_bomb_as_webhook_reply_is_a_failed_attempt_within_bounded_memory(
    open_server: Deployment, receiver: Receiver, tmp_path: Path
) -> None:
    stacked_gzip(GIB)  # built before the attempt's deadline starts
    url = receiver.hostile("/bomb", bomb_reply, script=(500,))
    with peak(open_server) as memory, open_server.client() as client:
        job_id = submit_job(client, "a.wav", tone_bytes(tmp_path, 1.0), webhook_url=url)
        webhook = webhook_of(client, job_id, lambda w: w["attempts"] >= 2)
    assert webhook == {"attempts": 2, "last_status": 500, "delivered": False}
    print(f"webhook bomb reply: server RSS peak +{memory.growth / MIB:.1f} MB")
    assert memory.growth <= BOMB_RSS_BOUND


# -- a slow receiver ---------------------------------------------------------------------------


def drip_reply(stop: threading.Event) -> Callable[[BaseHTTPRequestHandler, int], None]:
    def reply(handler: BaseHTTPRequestHandler, status: int) -> None:
        handler.send_response(status)
        handler.send_header("content-length", "1000000")
        handler.end_headers()
        while not stop.wait(0.5):  # a byte every half second: no single read times out
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return

    return reply


def test_a_dripping_receiver_does_not_delay_another_jobs_webhook(
    open_server: Deployment, receiver: Receiver, tmp_path: Path
) -> None:
    audio = tone_bytes(tmp_path, 1.0)
    slow = receiver.hostile("/drip", drip_reply(receiver.stop))
    fast = receiver.url("/fast")
    with open_server.client() as client:
        submit_job(client, "slow.wav", audio, webhook_url=slow)
        wait_for(lambda: receiver.at("/drip") or None, "the dripping attempt", JOB_SECONDS, POLL)
        job_id = submit_job(client, "fast.wav", audio, webhook_url=fast)

        def completed() -> float | None:
            done = job_status(client, job_id)["status"] == "Completed"
            return time.time() if done else None

        completed_at = wait_for(completed, "the second job", JOB_SECONDS, POLL)
        [delivered] = wait_for(lambda: receiver.at("/fast") or None, "its webhook", 60, POLL)
    late = delivered.at - completed_at
    print(f"webhook {late:.2f} s after its job completed, beside a dripping receiver")
    assert late <= 15.0


# -- a decode bomb as a voice reference --------------------------------------------------------


def test_a_decode_bomb_voice_reference_never_holds_health_and_is_a_clear_400(
    open_server: Deployment, tmp_path: Path
) -> None:
    bomb = many_packet_audio(300_000)  # 2.4 MB of one-sample packets
    reference = "data:audio/x-matroska;base64," + base64.b64encode(bomb).decode()
    waits: list[float] = []
    done = threading.Event()

    def poll_health() -> None:
        with httpx.Client(base_url=open_server.server.base_url, timeout=30) as client:
            while not done.is_set():
                started = time.monotonic()
                assert client.get("/health").status_code == 200
                waits.append(time.monotonic() - started)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    try:
        with open_server.client() as client:
            response = client.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))},
                data={
                    "diarize": "true",
                    "known_speaker_names[]": list("ABCD"),
                    "known_speaker_references[]": [reference] * 4,
                },
            )
    finally:
        done.set()
        poller.join(60)
    message = assert_error(response, 400, "invalid_request_error", None, "known_speaker_references")
    assert "packets" in message
    print(f"/health during a decode-bomb reference: longest wait {max(waits):.3f} s")
    assert len(waits) >= 2
    assert max(waits) <= 2.0


# -- a live client that never reads -----------------------------------------------------------


@pytest.mark.anyio
async def test_a_flooding_client_that_never_reads_frees_its_slot(open_server: Deployment) -> None:
    url = open_server.server.base_url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    junk = {"type": "no.such.event", "pad": "x" * 2000}  # each earns an error event back
    with flooding(url, KEY, junk):
        started = time.monotonic()
        while True:
            assert time.monotonic() - started < 60, "the stalled session kept its slot"
            headers = {"Authorization": f"Bearer {KEY}"}
            async with connect(url, additional_headers=headers) as ws:
                with anyio.fail_after(60):
                    event = json.loads(await ws.recv())
            if event["type"] == "session.created":
                break
            assert event["error"]["code"] == "too_many_sessions", event
            await anyio.sleep(0.2)
    print(f"a new live client got session.created {time.monotonic() - started:.1f} s later")


# -- junk form fields --------------------------------------------------------------------------


def multipart_junk(boundary: str, fields: int, size: int) -> Iterator[bytes]:
    chunk = b"x" * MIB
    for index in range(fields):
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="junk{index}"\r\n\r\n'
        ).encode()
        for _ in range(size // MIB):
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def raw_post(base_url: str, path: str, headers: dict[str, str], body: Iterator[bytes]) -> bytes:
    """POST on a raw socket, reading the answer while still sending (the server may answer and
    stop reading long before the body ends); the raw response."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    answer = bytearray()

    def read() -> None:
        while chunk := sock.recv(65536):
            answer.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
        for piece in body:
            sock.sendall(piece)
    except OSError:
        pass  # the server closed its side after answering
    reader.join(60)
    sock.close()
    return bytes(answer)


def test_32_junk_fields_of_8_mib_are_a_4xx_within_bounded_memory(
    open_server: Deployment,
) -> None:
    boundary = "hostile-boundary"
    fields, size = 32, 8 * MIB
    total = sum(len(p) for p in multipart_junk(boundary, fields, MIB)) + fields * 7 * MIB
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(total),
    }
    with peak(open_server) as memory:
        answer = raw_post(
            open_server.server.base_url,
            "/v1/audio/transcriptions",
            headers,
            multipart_junk(boundary, fields, size),
        )
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 4"), answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"]["param"] == "junk0", body
    assert "LIMITS__MAX_FIELD_BYTES" in body["error"]["message"]
    print(f"32 junk 8-MiB fields: server RSS peak +{memory.growth / MIB:.1f} MB")
    assert memory.growth <= FIELDS_RSS_BOUND


# -- names, keys and addresses that once made 500s ---------------------------------------------


@pytest.fixture(scope="module")
def strict_server(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[tuple[Deployment, Path]]:
    """The fake command backend, private networks refused (the default), and a keys file."""
    root = tmp_path_factory.mktemp("hostile-strict")
    keys = root / "keys.json"
    keys.write_text(json.dumps({KEY: "robust"}), encoding="utf-8")
    deployment = make_deployment(
        root, model_cache, **cli_settings(API_KEYS_FILE=str(keys), WEBHOOKS__SECRET=SECRET)
    )
    deployment.start()
    try:
        yield deployment, keys
    finally:
        deployment.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://bücher.invalid/a.wav",  # encoded as IDNA, then not resolvable
        "http://\U0001f4a9.example/a.wav",  # not a name IDNA can encode
        "http://[2002:7f00:1::]:8080/a.wav",  # 6to4 around 127.0.0.1
        "http://[fec0::1]/a.wav",  # site-local
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 around the metadata address
    ],
)
@pytest.mark.parametrize("field", ["audio_url", "webhook_url"])
def test_hostile_urls_are_a_clear_400(
    strict_server: tuple[Deployment, Path], tmp_path: Path, url: str, field: str
) -> None:
    deployment, _ = strict_server
    with deployment.client() as client:
        if field == "audio_url":
            response = client.post("/v1/audio/transcriptions", data={"audio_url": url})
        else:
            response = client.post(
                "/transcription",
                files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
                data={"webhook_url": url},
            )
    # The form's syntax check words an unencodable name as `invalid_url`; the others fail when
    # the name is resolved or the address checked.
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", field), error
    assert error["code"] in {"invalid_url", "url_not_allowed"}, error


def test_a_keys_file_with_a_lone_surrogate_keeps_the_last_good_keys(
    strict_server: tuple[Deployment, Path],
) -> None:
    deployment, keys = strict_server
    keys.write_text('{"sk-new": "new", "sk-\\udc80": "mallory"}', encoding="utf-8")
    with deployment.client() as good, deployment.client("sk-new") as new:
        assert good.get("/v1/models").status_code == 200
        refused = new.get("/v1/models")
    assert_error(refused, 401, "authentication_error", "invalid_api_key", None)
    assert "not valid Unicode" in deployment.log.read_text()
