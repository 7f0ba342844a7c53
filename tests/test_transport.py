"""The lean async HTTP/1.1 transport, against real servers on 127.0.0.1.

The stub OpenAI server covers keep-alive reuse and the connection limit; a scripted
raw-socket server covers what the stub never does: chunked and gzip bodies,
``Connection: close``, an idle connection closed by the server, a broken response
and a server that never answers.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from storefront_sdk.exceptions import BackendTimeoutError, RetryableBackendError
from storefront_sdk.llm.base import ChatMessage, MultiChoice
from storefront_sdk.llm.openai import OpenAICompatibleLLM, _env_proxy
from storefront_sdk.llm.transport import AsyncHTTP11Transport
from storefront_sdk.testing.stub_server import StubOpenAIServer

Script = Callable[[int, bytes], tuple[bytes, bool]]
"""(request number on the server, request bytes) -> (response bytes, close afterwards)."""


def _response(
    body: bytes, *, status: str = "200 OK", headers: tuple[str, ...] = (), length: bool = True
) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Scripted(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = script
        self.tls = tls
        self.requests = 0
        self.connections = 0
        self.lock = threading.Lock()


class _ScriptedHandler(socketserver.StreamRequestHandler):
    server: _Scripted

    def setup(self) -> None:
        if self.server.tls is not None:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                byte = self.rfile.read(1)
                if not byte:
                    return
                head += byte
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            request = head + (self.rfile.read(length) if length else b"")
            with self.server.lock:
                self.server.requests += 1
                number = self.server.requests
            reply, close = self.server.script(number, request)
            if reply:
                self.wfile.write(reply)
                self.wfile.flush()
            if close:
                return


@pytest.fixture
def scripted() -> Iterator[Callable[..., _Scripted]]:
    servers: list[_Scripted] = []

    def start(script: Script, tls: ssl.SSLContext | None = None) -> _Scripted:
        server = _Scripted(script, tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _url(server: _Scripted, path: str = "/v1/chat/completions") -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}{path}"


def _post(url: str, transport: AsyncHTTP11Transport, n: int = 1, **kw: Any) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, **kw) as client:
            return [await client.post(url, json={"i": i}) for i in range(n)]

    return asyncio.run(go())


def test_keep_alive_reuses_one_connection() -> None:
    with StubOpenAIServer(seed=1) as srv:
        responses = _post(srv.base_url + "/chat/completions", AsyncHTTP11Transport(), n=5)
        assert [r.status_code for r in responses] == [200] * 5
        assert srv.connections == 1


def test_max_connections_bounds_requests_in_flight() -> None:
    with StubOpenAIServer(latency=0.1) as srv:
        transport = AsyncHTTP11Transport(max_connections=2)

        async def go() -> list[int]:
            async with httpx.AsyncClient(transport=transport) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                url = srv.base_url + "/chat/completions"
                rs = await asyncio.gather(*(client.post(url, json=body) for _ in range(6)))
                return [r.status_code for r in rs]

        assert asyncio.run(go()) == [200] * 6
        assert srv.max_in_flight == 2
        assert srv.connections == 2


def test_chunked_and_gzip_bodies_are_decoded(scripted: Callable[[Script], _Scripted]) -> None:
    payload = json.dumps({"ok": True, "pad": "x" * 5000}).encode()
    packed = gzip.compress(payload)

    def script(n: int, request: bytes) -> tuple[bytes, bool]:
        if n == 1:  # chunked, in uneven pieces
            chunks = [payload[:10], payload[10:3000], payload[3000:]]
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
            return _response(body, headers=("Transfer-Encoding: chunked",), length=False), False
        return _response(packed, headers=("Content-Encoding: gzip",)), False

    server = scripted(script)
    responses = _post(_url(server), AsyncHTTP11Transport(), n=2)
    assert [r.json() for r in responses] == [json.loads(payload)] * 2
    assert server.connections == 1


def test_connection_close_is_honoured(scripted: Callable[[Script], _Scripted]) -> None:
    server = scripted(lambda n, r: (_response(b"{}", headers=("Connection: close",)), True))
    responses = _post(_url(server), AsyncHTTP11Transport(), n=3)
    assert [r.status_code for r in responses] == [200] * 3
    assert server.connections == 3


def test_idle_connection_closed_by_the_server_is_replaced(
    scripted: Callable[[Script], _Scripted],
) -> None:
    # The server drops the connection after each answer without saying so (as servers
    # do with idle keep-alive connections): the next request retries on a fresh one.
    server = scripted(lambda n, r: (_response(b'{"n": %d}' % n), True))

    async def go() -> list[Any]:
        async with httpx.AsyncClient(transport=AsyncHTTP11Transport()) as client:
            out = []
            for _ in range(3):
                out.append((await client.post(_url(server), json={})).json())
                await asyncio.sleep(0.05)  # let the close arrive
            return out

    assert asyncio.run(go()) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert server.connections == 3


def test_request_dropped_on_a_reused_connection_is_sent_again(
    scripted: Callable[[Script], _Scripted],
) -> None:
    # Request 2 arrives on the kept-alive connection, which the server then closes
    # without a byte of answer (it had timed the connection out): sent again, once.
    server = scripted(lambda n, r: (b"", True) if n == 2 else (_response(b'{"n": %d}' % n), False))
    responses = _post(_url(server), AsyncHTTP11Transport(), n=2)
    assert [r.json() for r in responses] == [{"n": 1}, {"n": 3}]
    assert server.connections == 2


def test_broken_response_is_a_protocol_error(scripted: Callable[[Script], _Scripted]) -> None:
    server = scripted(lambda n, r: (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}", True))
    with pytest.raises(httpx.RemoteProtocolError):
        _post(_url(server), AsyncHTTP11Transport())
    garbage = scripted(lambda n, r: (b"SPDY/9 nonsense\r\n\r\n", True))
    with pytest.raises(httpx.RemoteProtocolError):
        _post(_url(garbage), AsyncHTTP11Transport())


def test_read_timeout_and_refused_connection(scripted: Callable[[Script], _Scripted]) -> None:
    silent = scripted(lambda n, r: (b"", False))  # reads the request, never answers
    with pytest.raises(httpx.ReadTimeout):
        _post(_url(silent), AsyncHTTP11Transport(), timeout=0.3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(httpx.ConnectError):
        _post(f"http://127.0.0.1:{port}/x", AsyncHTTP11Transport())


def test_backend_maps_transport_errors(scripted: Callable[[Script], _Scripted]) -> None:
    """Through OpenAICompatibleLLM: a hang is a timeout error, a broken reply retryable."""
    silent = scripted(lambda n, r: (b"", False))
    host, port = silent.server_address[:2]
    spec = MultiChoice(("a", "b"), min_items=1, max_items=1)
    llm = OpenAICompatibleLLM(f"http://{host!s}:{port}/v1", "m", timeout=0.2, max_retries=0)
    with pytest.raises(BackendTimeoutError):
        asyncio.run(_ask(llm, spec))
    broken = scripted(lambda n, r: (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{", True))
    host, port = broken.server_address[:2]
    llm = OpenAICompatibleLLM(f"http://{host!s}:{port}/v1", "m", max_retries=0)
    with pytest.raises(RetryableBackendError):
        asyncio.run(_ask(llm, spec))


async def _ask(llm: OpenAICompatibleLLM, spec: MultiChoice) -> Any:
    try:
        return await llm.agenerate([ChatMessage(role="user", content="pick")], spec)
    finally:
        await llm.aclose()


def test_backend_uses_the_lean_transport_unless_a_proxy_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert not _env_proxy("http://10.0.0.5:8000/v1")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _env_proxy("http://10.0.0.5:8000/v1")
    monkeypatch.setenv("NO_PROXY", "10.0.0.5")
    assert not _env_proxy("http://10.0.0.5:8000/v1")

    async def kinds() -> tuple[Any, list[Any]]:
        llm = OpenAICompatibleLLM("http://proxied.example:8000/v1", "m")
        io = llm._async_io()
        try:
            return io.transport, io.clients
        finally:
            await llm.aclose()

    transport, clients = asyncio.run(kinds())
    assert transport is None and clients  # proxied: httpx's clients, which honour the proxy
    monkeypatch.setenv("NO_PROXY", "*")
    transport, clients = asyncio.run(kinds())
    assert isinstance(transport, AsyncHTTP11Transport) and not clients


def test_https_with_sni_and_certificate_checks(
    scripted: Callable[..., _Scripted], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS through the lean transport: a throwaway CA, a certificate for localhost."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    reply = {"choices": [{"message": {"content": '{"items": ["b"]}'}, "finish_reason": "stop"}]}
    server = scripted(lambda n, r: (_response(json.dumps(reply).encode()), False), server_tls)
    port = server.server_address[1]

    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    [ok] = _post(f"https://localhost:{port}/v1/chat/completions", AsyncHTTP11Transport(
        ssl_context=trusting))  # fmt: skip
    assert ok.json() == reply
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post(
            f"https://localhost:{port}/x",
            AsyncHTTP11Transport(ssl_context=ssl.create_default_context()),
        )

    # The backend's own context honours SSL_CERT_FILE, as httpx's does.
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    llm = OpenAICompatibleLLM(f"https://localhost:{port}/v1", "m", max_retries=0)
    result = asyncio.run(_ask(llm, MultiChoice(("a", "b"), min_items=1, max_items=1)))
    assert result.value == ["b"]
