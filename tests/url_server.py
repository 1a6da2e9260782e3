"""A real HTTP server on loopback for `audio_url` tests, and a listener that proves silence."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Routes:
    """What the server answers: bodies by path, an oversized and a slow body, and redirect
    chains: `/redirect/N` redirects N + 1 times before it reaches `/audio.wav`."""

    bodies: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    big_bytes: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    hits: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # extra, by path
    accept_encodings: list[str] = field(default_factory=list)


def _handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            routes.hits.append(self.path)
            routes.hosts.append(self.headers.get("Host", ""))
            routes.accept_encodings.append(self.headers.get("Accept-Encoding", ""))
            if self.path.startswith("/redirect/"):
                left = int(self.path.rsplit("/", 1)[1])
                target = "/audio.wav" if left == 0 else f"/redirect/{left - 1}"
                self._send(302, b"", "text/plain", {"Location": target})
            elif self.path == "/big":
                self._send(200, b"\0" * routes.big_bytes, "audio/wav", {})
            elif self.path == "/big-chunked":
                self._chunked(b"\0" * routes.big_bytes)
            elif self.path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"RIFF")
                self.wfile.flush()
                routes.release.wait(60)
            elif self.path in routes.bodies:
                body, media = routes.bodies[self.path]
                self._send(200, body, media, routes.headers.get(self.path, {}))
            else:
                self._send(404, b"not found", "text/plain", {})

        def _send(self, status: int, body: bytes, media: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _chunked(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 16384):
                piece = body[start : start + 16384]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

    return Handler


@contextmanager
def serving(routes: Routes) -> Iterator[str]:
    """Serve `routes` on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(routes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        routes.release.set()
        server.shutdown()
        server.server_close()


@contextmanager
def silent_listener(family: socket.AddressFamily, host: str) -> Iterator[tuple[int, socket.socket]]:
    """A listening socket nobody accepts on: a connection attempt would queue in its backlog."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock.getsockname()[1], sock
    finally:
        sock.close()


def connections_made(sock: socket.socket) -> int:
    """How many connections reached the listener's backlog."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1
