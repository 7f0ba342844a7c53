"""The HTTP backend's clients against real servers on 127.0.0.1.

Our own clients (``httpx.Client``; ``httpx.AsyncClient`` on aiohttp's pool) keep
connections alive, bound requests in flight, decode chunked and gzip bodies, honour
``Connection: close``, speak TLS with ``verify`` / ``cert`` / ``SSL_CERT_FILE``, go through
proxies; clients you pass in keep their auth, event hooks and default headers.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from httpservers import Conn, answer_each, completion, response, serve

from storefront_sdk.exceptions import RetryableBackendError
from storefront_sdk.llm.base import ChatMessage, MultiChoice
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.testing.stub_server import StubOpenAIServer

Mode = Literal["sync", "async"]
BOTH = pytest.mark.parametrize("mode", ["sync", "async"])
SPEC = MultiChoice(("a", "b"), min_items=1, max_items=1)
MESSAGES = [ChatMessage(role="user", content="pick")]
GOOD = completion('{"items": ["b"]}')


def ask_n(llm: OpenAICompatibleLLM, mode: Mode, n: int = 1) -> list[Any]:
    if mode == "sync":
        try:
            return [llm.generate(MESSAGES, SPEC).value for _ in range(n)]
        finally:
            llm.close()

    async def go() -> list[Any]:
        try:
            return [(await llm.agenerate(MESSAGES, SPEC)).value for _ in range(n)]
        finally:
            await llm.aclose()

    return asyncio.run(go())


@BOTH
def test_keep_alive_reuses_one_connection(mode: Mode) -> None:
    with StubOpenAIServer(seed=1) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "stub")
        assert len(ask_n(llm, mode, 5)) == 5
        assert srv.connections == 1


def test_max_connections_bounds_requests_in_flight() -> None:
    with StubOpenAIServer(latency=0.1) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "stub", max_connections=2)

        async def go() -> int:
            try:
                rs = await asyncio.gather(*(llm.agenerate(MESSAGES, SPEC) for _ in range(6)))
                return len(rs)
            finally:
                await llm.aclose()

        assert asyncio.run(go()) == 6
        assert srv.max_in_flight == 2
        assert srv.connections == 2


@BOTH
def test_chunked_and_gzip_bodies_are_decoded(mode: Mode) -> None:
    def reply(n: int, request: bytes) -> bytes:
        if n % 2:  # chunked, in uneven pieces
            pieces = [GOOD[:10], GOOD[10:40], GOOD[40:]]
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in pieces) + b"0\r\n\r\n"
            return response(body, headers=("Transfer-Encoding: chunked",), length=False)
        return response(gzip.compress(GOOD), headers=("Content-Encoding: gzip",))

    with serve(answer_each(reply)) as srv:
        assert ask_n(OpenAICompatibleLLM(srv.base_url, "m"), mode, 2) == [["b"], ["b"]]
        assert srv.connections == 1


@BOTH
def test_cookies_a_server_sets_are_sent_back(mode: Mode) -> None:
    # Our clients skip the cookie parser for answers without Set-Cookie (a CPU saving);
    # a cookie that is set must still be stored, sent, and kept across answers without one.
    def reply(n: int, request: bytes) -> bytes:
        if n == 2:
            return response(GOOD, headers=("Set-Cookie: affinity=node-7; Path=/",))
        return response(GOOD)

    with serve(answer_each(reply)) as srv:
        assert ask_n(OpenAICompatibleLLM(srv.base_url, "m"), mode, 4) == [["b"]] * 4
    cookies = [
        line.lower()
        for request in srv.requests
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"cookie:")
    ]
    assert cookies == [b"cookie: affinity=node-7"] * 2  # requests 3 and 4, not 1 and 2
    assert all(b"affinity" not in r.split(b"\r\n\r\n")[0] for r in srv.requests[:2])


@BOTH
def test_connection_close_is_honoured(mode: Mode) -> None:
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(response(GOOD, headers=("Connection: close",)))

    with serve(handler) as srv:
        assert ask_n(OpenAICompatibleLLM(srv.base_url, "m"), mode, 3) == [["b"]] * 3
        assert srv.connections == 3


@BOTH
def test_broken_responses_are_retryable_errors(mode: Mode) -> None:
    def once(data: bytes) -> Any:
        def handler(conn: Conn) -> None:  # answer, then close
            if conn.read_request() is not None:
                conn.send(data)

        return handler

    short = once(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}")
    garbage = once(b"SPDY/9 nonsense\r\n\r\n")
    for handler in (short, garbage):
        with serve(handler) as srv:
            llm = OpenAICompatibleLLM(srv.base_url, "m", max_retries=0)
            with pytest.raises(RetryableBackendError):
                ask_n(llm, mode)
            assert len(srv.requests) == 1


def test_refused_connection_is_retryable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    for mode in ("sync", "async"):
        llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "m", max_retries=0)
        with pytest.raises(RetryableBackendError, match="cannot reach"):
            ask_n(llm, mode)  # type: ignore[arg-type]


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def ca() -> Any:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


def _server_tls(ca: Any, *, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


@BOTH
def test_https_verify_and_certificate_checks(
    mode: Mode, ca: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(answer_each(lambda n, r: response(GOOD)), tls=_server_tls(ca)) as srv:
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        assert ask_n(OpenAICompatibleLLM(srv.base_url, "m", verify=trusting), mode) == [["b"]]
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        assert ask_n(OpenAICompatibleLLM(srv.base_url, "m", verify=str(ca_file)), mode)
        with pytest.raises(RetryableBackendError, match=r"(?i)certificate"):
            ask_n(OpenAICompatibleLLM(srv.base_url, "m", max_retries=0), mode)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # honoured, as httpx does
        assert ask_n(OpenAICompatibleLLM(srv.base_url, "m"), mode) == [["b"]]


@BOTH
def test_client_certificate_is_presented(mode: Mode, ca: Any, tmp_path: Path) -> None:
    tls = _server_tls(ca, client_certs=True)
    with serve(answer_each(lambda n, r: response(GOOD)), tls=tls) as srv:
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        pem = tmp_path / "client.pem"
        ca.issue_cert("client@example").private_key_and_cert_chain_pem.write_to_path(str(pem))
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        llm = OpenAICompatibleLLM(srv.base_url, "m", verify=str(ca_file), cert=str(pem))
        assert ask_n(llm, mode) == [["b"]]
        with pytest.raises(RetryableBackendError):
            ask_n(OpenAICompatibleLLM(srv.base_url, "m", verify=trusting, max_retries=0), mode)


# -- clients you pass in, proxies ---------------------------------------------------------------


def test_your_clients_keep_auth_hooks_and_headers() -> None:
    seen: list[str] = []

    def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async def ahook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    with serve(answer_each(lambda n, r: response(GOOD))) as srv:
        client = httpx.Client(
            auth=("user", "pass"), headers={"X-Team": "recs"}, event_hooks={"request": [hook]}
        )
        llm = OpenAICompatibleLLM(srv.base_url, "m", http_client=client)
        assert llm.generate(MESSAGES, SPEC).value == ["b"]
        llm.close()
        assert not client.is_closed  # yours: not closed by the backend
        client.close()

        async def go() -> None:
            async with httpx.AsyncClient(
                auth=("user", "pass"), headers={"X-Team": "recs"}, event_hooks={"request": [ahook]}
            ) as aclient:
                llm = OpenAICompatibleLLM(srv.base_url, "m", http_client=aclient)
                assert (await llm.agenerate(MESSAGES, SPEC)).value == ["b"]
                await llm.aclose()
                assert not aclient.is_closed

        asyncio.run(go())
        assert seen == ["/v1/chat/completions"] * 2
        for request in srv.requests:
            head = request.split(b"\r\n\r\n")[0].lower()
            assert b"authorization: basic dxnlcjpwyxnz" in head and b"x-team: recs" in head


def _proxy() -> Any:
    """A forward proxy stand-in: answers absolute-form requests itself."""
    return answer_each(lambda n, r: response(GOOD) if b" http://" in r.split(b"\r\n")[0] else None)


@BOTH
def test_proxies_from_the_argument_and_the_environment(
    mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = "http://models.invalid:9/v1"  # never resolved: only the proxy can answer
    with serve(_proxy()) as proxy:
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        assert ask_n(OpenAICompatibleLLM(upstream, "m", proxy=proxy_url), mode) == [["b"]]
        for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        assert ask_n(OpenAICompatibleLLM(upstream, "m"), mode) == [["b"]]
        assert len(proxy.requests) == 2
        assert all(r.startswith(b"POST http://models.invalid:9/v1/") for r in proxy.requests)
