"""A WebSocket client that floods the server with events and never reads a byte back.

Written on a raw socket with a tiny receive buffer, so the server's replies fill it (and then
the server's own send buffer) within moments, as a client that stopped reading would.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


def _frame(text: str) -> bytes:
    """One masked text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@contextmanager
def flooding(url: str, key: str, event: dict[str, object]) -> Iterator[threading.Event]:
    """Open a session at `url` (ws://) and send `event` over and over from a thread, reading
    nothing; yields an Event set once the server stops taking what is sent."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    nonce = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {key}\r\n\r\n"
    )
    sock.sendall(request.encode())
    answer = sock.recv(1024)  # the handshake only; nothing more is ever read
    assert answer.startswith(b"HTTP/1.1 101"), answer
    frame = _frame(json.dumps(event))
    blocked = threading.Event()
    stop = threading.Event()

    def flood() -> None:
        sock.settimeout(2.0)
        while not stop.is_set():
            try:
                sock.sendall(frame)
            except TimeoutError:
                blocked.set()  # the server stopped reading us (or closed)
            except OSError:
                blocked.set()
                return

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        yield blocked
    finally:
        stop.set()
        thread.join(10)
        sock.close()
