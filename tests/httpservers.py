"""Scripted raw-socket HTTP servers on 127.0.0.1 for the HTTP tests (well-behaved or hostile).

A handler gets a :class:`Conn` per accepted connection and decides everything: read a
request, answer, trickle bytes, never answer, close mid-way. Every server runs on its own
thread pool and stops (closing every connection) when its ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

Handler = Callable[["Conn"], None]


class Conn:
    """One accepted connection: read requests, send bytes, notice the end of the test."""

    def __init__(self, server: RawServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.rfile = sock.makefile("rb")

    @property
    def stopped(self) -> bool:
        return self.server.stop_event.is_set()

    def read_request(self) -> bytes | None:
        """One request (head and Content-Length body), or None when the client closed."""
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            try:
                byte = self.rfile.read(1)
            except OSError:
                return None
            if not byte:
                return None
            head += byte
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + (self.rfile.read(length) if length else b"")
        with self.server.lock:
            self.server.requests.append(request)
        return request

    def send(self, data: bytes) -> bool:
        """Send ``data``; False when the client has gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False when the server is stopping."""
        return not self.server.stop_event.wait(seconds)


class RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.handler = handler
        self.tls = tls
        self.lock = threading.Lock()
        self.requests: list[bytes] = []
        self.connections = 0
        self.stop_event = threading.Event()
        self.open: list[socket.socket] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/v1"


class _Handler(socketserver.BaseRequestHandler):
    server: RawServer

    def handle(self) -> None:
        sock = self.request
        if self.server.tls is not None:
            try:
                sock = self.server.tls.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                return
        with self.server.lock:
            self.server.connections += 1
            self.server.open.append(sock)
        with contextlib.suppress(OSError):
            self.server.handler(Conn(self.server, sock))
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    server = RawServer(handler, tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop_event.set()
        server.shutdown()
        server.server_close()
        with server.lock:
            for sock in server.open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        thread.join(timeout=5)


def response(
    body: bytes,
    *,
    status: str = "200 OK",
    headers: tuple[str, ...] = (),
    length: bool = True,
) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def completion(content: str, usage: Any = None) -> bytes:
    """A chat-completions answer carrying ``content`` (and ``usage`` when given)."""
    data: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
    }  # fmt: skip
    if usage is not None:
        data["usage"] = usage
    return json.dumps(data).encode()


def answer_each(reply: Callable[[int, bytes], bytes | None]) -> Handler:
    """A keep-alive handler answering request n with ``reply(n, request)`` (None: close)."""

    def handler(conn: Conn) -> None:
        while not conn.stopped:
            request = conn.read_request()
            if request is None:
                return
            with conn.server.lock:
                number = len(conn.server.requests)
            data = reply(number, request)
            if data is None or not conn.send(data):
                return

    return handler
