"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks enough of ``POST /v1/chat/completions`` for litellm and the OpenAI SDK: scripted
replies (content, HTTP errors with ``Retry-After``, malformed bodies, stalls past the client's
timeout, replies without token usage), a fixed latency, and a record of every request, so a
test can count what was called.

Any other ``POST`` path is an *agent endpoint* for the ``http`` target: it reads a case as
JSON (``{"id", "input", "contexts", ...}``) and answers ``{"answer", "contexts", "usage",
"model"}``, or a scripted ``Reply`` (``content`` as the answer, ``json`` as the whole body).
"""

from __future__ import annotations

import contextlib
import json
import random
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

    ``content`` is returned as the assistant message (or the agent's answer); ``status`` other
    than 200 returns an OpenAI-style error (with ``retry_after`` seconds in the header when
    given); ``raw`` is sent verbatim as the body (a malformed reply); ``json`` is sent as the
    whole JSON body; ``delay_s`` stalls before answering; ``usage=False`` leaves token usage
    out of the reply.
    """

    content: str | None = None
    status: int = 200
    retry_after: float | None = None
    raw: str | None = None
    delay_s: float = 0.0
    usage: bool = True
    json: Any = None


Responder = Callable[[dict[str, Any]], str]
"""Builds the reply content from the request body when no scripted reply is queued."""


def _default_responder(request: dict[str, Any]) -> str:
    messages = request.get("messages") or [{}]
    return f"echo: {str(messages[-1].get('content', ''))[:200]}"


def _agent_responder(request: dict[str, Any]) -> str:
    return f"echo: {str(request.get('input', ''))[:200]}"


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when a benchmark opens dozens at once.
    request_queue_size = 256


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer() as server:``; point clients at ``server.url``."""

    def __init__(
        self,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        agent_responder: Responder | None = None,
        *,
        faults: float = 0.0,
        stall_s: float = 5.0,
        seed: int = 0,
    ) -> None:
        """Configure the server; it serves once started (``start()`` or ``with``).

        Args:
            latency_s: seconds before every reply.
            responder: builds chat replies; the default echoes the last message.
            agent_responder: builds ``/agent`` replies; the default echoes the input.
            faults: share of unscripted requests that fail, evenly a 429 (``Retry-After:
                0.05``), a 500 or a stall of ``stall_s`` seconds (a client timeout).
            stall_s: how long a stalled request waits before it is answered.
            seed: seeds the fault draws, so a run is repeatable.
        """
        self.latency_s = latency_s
        self.faults = faults
        self.stall_s = stall_s
        self.faulted = 0
        """Requests answered with an injected fault so far."""
        self._random = random.Random(seed)
        self.responder = responder or _default_responder
        self.agent_responder = agent_responder or _agent_responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        """Request headers (names lower-cased), in the order of ``requests``."""
        self.max_in_flight = 0
        """Most requests being answered at the same time so far."""
        self._in_flight = 0
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
    def agent_url(self) -> str:
        """URL of the agent endpoint, for an ``http`` target."""
        return self.url.removesuffix("/v1") + "/agent"

    @property
    def calls(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def enqueue(self, *replies: Reply | str) -> None:
        """Queue replies, answered in order before the responder is used."""
        with self._lock:
            self._script.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def _next(self, request: dict[str, Any], headers: dict[str, str], agent: bool) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            if self._script:
                return self._script.popleft()
            if self.faults and self._random.random() < self.faults:
                self.faulted += 1
                return self._random.choice(
                    [
                        Reply(status=429, retry_after=0.05),
                        Reply(status=500),
                        Reply(content="late", delay_s=self.stall_s),
                    ]
                )
        try:
            responder = self.agent_responder if agent else self.responder
            return Reply(content=responder(request))
        except Exception as exc:  # a broken responder answers 500 instead of hanging the client
            return Reply(
                status=500, raw=json.dumps({"error": {"message": f"responder failed: {exc!r}"}})
            )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm on, the body
            # waits for the client's delayed ACK (~40 ms), which would swamp small latencies.
            disable_nagle_algorithm = True

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
                agent = not self.path.rstrip("/").endswith("/chat/completions")
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = outer._next(request, headers, agent)
                with outer._lock:
                    outer._in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer._in_flight)
                try:
                    time.sleep(outer.latency_s + reply.delay_s)
                    self._answer(request, reply, agent)
                finally:
                    with outer._lock:
                        outer._in_flight -= 1

            def _answer(self, request: dict[str, Any], reply: Reply, agent: bool) -> None:
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
                if reply.json is not None:
                    self._send(200, json.dumps(reply.json).encode("utf-8"))
                    return
                content = reply.content or ""
                if agent:
                    prompt = str(request.get("input", ""))
                    body: dict[str, Any] = {
                        "answer": content,
                        "contexts": request.get("contexts") or [],
                        "model": "gpt-4o-mini",
                    }
                else:
                    prompt = " ".join(
                        str(m.get("content", "")) for m in request.get("messages", [])
                    )
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
                    }
                if reply.usage:
                    body["usage"] = {
                        "prompt_tokens": _tokens(prompt),
                        "completion_tokens": _tokens(content),
                        "total_tokens": _tokens(prompt) + _tokens(content),
                    }
                self._send(200, json.dumps(body).encode("utf-8"))

        return Handler

    def start(self) -> FakeOpenAIServer:
        """Listen on a free port on 127.0.0.1."""
        server = _Server(("127.0.0.1", 0), self._handler())
        self._server = server
        # A short poll interval: shutting the server down waits for at most one poll.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
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
