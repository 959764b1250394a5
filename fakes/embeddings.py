"""A fake OpenAI-compatible embeddings endpoint: POST /v1/embeddings on 127.0.0.1, the real API shape.

Answers `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`
with deterministic bag-of-words vectors (texts sharing words are near), checks the bearer key,
and fails on demand the way OpenAI does: 429 with Retry-After and `{"error": {...}}` bodies, 5xx,
a wrong dimension, or a closed port ("down").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMENSION = 16


def bag_of_words(text: str, dimension: int = DIMENSION) -> list[float]:
    """A unit vector: each word adds 1 to a hashed coordinate."""
    vector = [0.0] * dimension
    for word in re.findall(r"\w+", text.lower()):
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % dimension] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def openai_error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FakeEmbeddings:
    """The server; `failures` holds the statuses the next requests get (then it answers normally)."""

    def __init__(self, api_key: str = "sk-fake-embeddings", dimension: int = DIMENSION) -> None:
        self.api_key = api_key
        self.dimension = dimension
        self.failures: deque[int] = deque()
        self.requests: list[dict[str, Any]] = []  # the JSON bodies received, in order
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to configure (MCP_HTTP_EMBEDDINGS_URL): the API root including /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeEmbeddings:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="fake-embeddings", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: clients get connection refused (the endpoint is down) until start() again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeEmbeddings:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def fail(self, *statuses: int) -> None:
        """The next requests answer these statuses, one each."""
        with self._lock:
            self.failures.extend(statuses)

    def answer(self, body: dict[str, Any], authorization: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(body)
            failure = self.failures.popleft() if self.failures else None
        if authorization != f"Bearer {self.api_key}":
            return 401, openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), {}
        if failure == 429:
            return 429, openai_error("Rate limit reached for requests", "requests", "rate_limit_exceeded"), {"retry-after": "0"}
        if failure is not None:
            return failure, openai_error("The server had an error while processing your request.", "server_error"), {}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs) or not body.get("model"):
            return 400, openai_error("'input' must be a string or a non-empty array of strings; 'model' is required", "invalid_request_error"), {}
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(text, self.dimension)} for i, text in enumerate(inputs)]
        tokens = sum(len(text.split()) for text in inputs)
        return 200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, {}


def _handler(fake: FakeEmbeddings) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            if self.path != "/v1/embeddings":
                self._send(404, openai_error(f"Invalid URL (POST {self.path})", "invalid_request_error"), {})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            except (ValueError, json.JSONDecodeError):
                self._send(400, openai_error("We could not parse the JSON body of your request.", "invalid_request_error"), {})
                return
            self._send(*fake.answer(body if isinstance(body, dict) else {}, self.headers.get("authorization")))

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

    return Handler
