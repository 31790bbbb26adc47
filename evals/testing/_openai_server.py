"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks enough of ``POST /v1/chat/completions`` for litellm and the OpenAI SDK: scripted
replies (content, HTTP errors with ``Retry-After``, malformed bodies, stalls past the client's
timeout), a fixed latency, and a record of every request, so a test can count what was called.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "Reply"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``content`` is returned as the assistant message; ``status`` other than 200 returns an
    OpenAI-style error (with ``retry_after`` seconds in the header when given); ``raw`` is sent
    verbatim as the body (a malformed reply); ``delay_s`` stalls before answering.
    """

    content: str | None = None
    status: int = 200
    retry_after: float | None = None
    raw: str | None = None
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], str]
"""Builds the reply content from the request body when no scripted reply is queued."""


def _default_responder(request: dict[str, Any]) -> str:
    messages = request.get("messages") or [{}]
    return f"echo: {str(messages[-1].get('content', ''))[:200]}"


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer() as server:``; point clients at ``server.url``."""

    def __init__(self, latency_s: float = 0.0, responder: Responder | None = None) -> None:
        self.latency_s = latency_s
        self.responder = responder or _default_responder
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for ``api_base`` (ends in ``/v1``)."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def enqueue(self, *replies: Reply | str) -> None:
        """Queue replies, answered in order before the responder is used."""
        with self._lock:
            self._script.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def _next(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        try:
            return Reply(content=self.responder(request))
        except Exception as exc:  # a broken responder answers 500 instead of hanging the client
            return Reply(
                status=500, raw=json.dumps({"error": {"message": f"responder failed: {exc!r}"}})
            )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, b'{"object": "list", "data": [{"id": "fake", "object": "model"}]}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(
                        400,
                        b'{"error": {"message": "invalid JSON", "type": "invalid_request_error"}}',
                    )
                    return
                reply = outer._next(request)
                time.sleep(outer.latency_s + reply.delay_s)
                if reply.raw is not None:
                    self._send(reply.status, reply.raw.encode("utf-8"))
                    return
                if reply.status != 200:
                    error = {
                        "error": {
                            "message": f"scripted HTTP {reply.status}",
                            "type": "server_error",
                        }
                    }
                    headers = (
                        {"Retry-After": f"{reply.retry_after:g}"}
                        if reply.retry_after is not None
                        else {}
                    )
                    self._send(reply.status, json.dumps(error).encode(), headers)
                    return
                content = reply.content or ""
                prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
                body = {
                    "id": f"chatcmpl-{len(outer.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": _tokens(prompt),
                        "completion_tokens": _tokens(content),
                        "total_tokens": _tokens(prompt) + _tokens(content),
                    },
                }
                self._send(200, json.dumps(body).encode("utf-8"))

        return Handler

    def start(self) -> FakeOpenAIServer:
        """Listen on a free port on 127.0.0.1."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
