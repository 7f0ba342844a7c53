"""A real OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1 for tests (stdlib http.server).

It serves an :class:`~storefront_sdk.embeddings.Embedder` (the in-process model
in the tests), so the HTTP backend can be compared with the model it fronts.
``fail_next`` makes the next N requests answer 503 (retry tests).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from storefront_sdk.embeddings import Embedder


class EmbeddingServer:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.fail_next = 0
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                outer.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/embeddings":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    self._send(503, {"error": {"message": "busy"}})
                    return
                texts = body.get("input")
                if isinstance(texts, str):
                    texts = [texts]
                if not isinstance(texts, list):
                    self._send(400, {"error": {"message": "input must be a list"}})
                    return
                vecs = outer.embedder.embed(texts)
                data = [
                    {"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in reversed(list(enumerate(vecs)))  # out of order on purpose
                ]
                self._send(200, {"object": "list", "data": data, "model": body.get("model")})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> EmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
