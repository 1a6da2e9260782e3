"""A webhook receiver on loopback for end-to-end tests: records every POST, answers as scripted.

Each path has its own script of status codes (the last one repeats), so one receiver serves
several jobs at once: `/ok` always answers 200, a path scripted `[500, 500, 200]` fails twice.
A path may also get a hostile reply (`Receiver.hostile`): a body written by a function of ours,
e.g. one that drips a byte at a time or a compression bomb.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

Reply = Callable[[BaseHTTPRequestHandler, int], None]  # writes status, headers and body

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test key: 24 random bytes, base64


@dataclass(frozen=True)
class Received:
    """One POST as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival
    answered: int

    def verified(self, secret: str = SECRET) -> dict[str, Any]:
        """The event, after `standardwebhooks` checked the signature (raises if it is wrong)."""
        event: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return event


@dataclass
class Receiver:
    """The running receiver: its base URL, the scripts and what came in."""

    base_url: str
    scripts: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    replies: dict[str, Reply] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)  # ends hostile replies

    def hostile(self, path: str, reply: Reply, script: Sequence[int] = (200,)) -> str:
        """A URL whose POSTs are answered by `reply` (given the scripted status)."""
        with self.lock:
            self.replies[path] = reply
        return self.url(path, script)

    def url(self, path: str, script: Sequence[int] = (200,)) -> str:
        """A URL on this receiver whose POSTs are answered with `script` in turn."""
        with self.lock:
            self.scripts[path] = list(script)
        return f"{self.base_url}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def answer(self, path: str) -> int:
        with self.lock:
            script = self.scripts.get(path, [404])
            return script.pop(0) if len(script) > 1 else script[0]


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver on a free loopback port, for the duration of the block."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder[0]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            status = receiver.answer(self.path)
            entry = Received(self.path, dict(self.headers.items()), body, time.time(), status)
            with receiver.lock:
                receiver.received.append(entry)
                reply = receiver.replies.get(self.path)
            if reply is not None:
                reply(self, status)
                return
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.daemon_threads = True
    try:
        yield holder[0]
    finally:
        holder[0].stop.set()
        server.shutdown()
        server.server_close()
