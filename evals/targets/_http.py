"""HTTP: POST each case as JSON to an agent's endpoint and read the answer back by path.

Requests go through httpx on the run's event loop, with the same retry policy as model calls
(``evals.llm.call_with_retries``): 429, 5xx, timeouts, dropped connections and replies that are
not JSON are retried, honouring ``Retry-After``; other statuses fail at once. Header values
come from environment variables only and are redacted from everything recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from evals.contract import Contract, HttpTargetSpec
from evals.dataset import Case, Usage
from evals.errors import UserError, display_path
from evals.llm import CallError, Failure, RateLimiter, call_with_retries, parse_retry_after
from evals.targets._base import AgentVersion, Output, config_hash
from evals.targets._live import LiveTarget

__all__ = ["HttpTarget", "dig", "request_body"]

_EXCERPT = 120


class _StatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        text = response.text.strip().replace("\n", " ")
        super().__init__(f"HTTP {response.status_code}: {text[:_EXCERPT]}")
        self.status = response.status_code
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))


class _MalformedReply(Exception):
    pass


def _classify(exc: Exception) -> Failure:
    if isinstance(exc, _StatusError):
        transient = exc.status in (408, 429) or exc.status >= 500
        return Failure(transient, str(exc), exc.retry_after)
    if isinstance(exc, httpx.TimeoutException):
        return Failure(True, f"{type(exc).__name__}: the endpoint did not answer in time")
    if isinstance(exc, httpx.TransportError):
        return Failure(True, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, _MalformedReply):
        return Failure(True, str(exc))
    return Failure(False, f"{type(exc).__name__}: {exc}")


def dig(data: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path (``choices.0.message.content``) into parsed JSON.

    Returns:
        ``(found, value)``.
    """
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(current) <= index < len(current):
                return False, None
            current = current[index]
        else:
            return False, None
    return True, current


def request_body(case: Case, params: dict[str, Any]) -> dict[str, Any]:
    """What the endpoint receives for one case. Never the reference or a recorded answer."""
    return {
        "id": case.id,
        "input": case.input,
        "contexts": list(case.contexts),
        "tags": list(case.tags),
        "metadata": case.metadata,
        "params": params,
    }


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt = value.get("prompt_tokens", value.get("input_tokens"))
    completion = value.get("completion_tokens", value.get("output_tokens"))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    if prompt < 0 or completion < 0:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _contexts(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    passages = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("text", item.get("content", item.get("page_content")))
        if not isinstance(item, str):
            return None
        passages.append(item)
    return tuple(passages)


_POOL_SIZE = 16
"""Connections per httpx client. httpcore's pool walks all its connections for each of its
connections whenever it assigns a request, so its CPU per call grows with the square of its
size: measured here, about 1.2 ms a call at 32 connections and 4.5 ms at 64, against a
server answering in 200 ms. A run with more calls in flight spreads them over several
clients of at most this many connections."""


@dataclass
class _Session:
    clients: list[httpx.AsyncClient]
    limiter: RateLimiter | None
    busy: list[int]
    """Requests in flight on each client."""

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The client with the fewest requests in flight, held for one request.

        With at most ``concurrency`` requests in flight, none holds more than its share.
        """
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            yield self.clients[index]
        finally:
            self.busy[index] -= 1


class HttpTarget(LiveTarget[_Session]):
    """An agent behind an HTTP endpoint, one POST per case."""

    kind = "http"

    def __init__(self, contract: Contract, spec: HttpTargetSpec) -> None:
        super().__init__(spec)
        self._contract, self._spec = contract, spec
        digest = config_hash(
            {
                "kind": self.kind,
                "url": spec.url,
                "version": spec.version,
                "params": spec.params,
                "response": spec.response.model_dump(),
            }
        )
        self._version = AgentVersion(contract.agent, spec.version or digest[:12], digest)

    def version(self) -> AgentVersion:
        """The declared label, hashed with the URL, params and response paths."""
        return self._version

    def available_versions(self) -> list[str]:
        """Only what is deployed behind the URL now."""
        return [self._version.label]

    def at_version(self, label: str) -> HttpTarget:
        """An endpoint answers with whatever is deployed; no other version is reachable."""
        if label != self._version.label:
            raise UserError.single(
                display_path(self._contract.source),
                "evals.target.version",
                f"version '{label}' is not what the endpoint serves ({self._version.label}); "
                "deploy it and set 'version' to evaluate it",
            )
        return self

    def secret_env_names(self) -> list[str]:
        """Every header's variable."""
        return sorted(set(self._spec.headers.values()))

    def preflight(self) -> None:
        """Every header variable must be set before the first call."""
        missing = [
            f"{header} (${name})"
            for header, name in self._spec.headers.items()
            if not os.environ.get(name)
        ]
        if missing:
            raise UserError.single(
                display_path(self._contract.source),
                "evals.target.headers",
                f"environment variables not set for headers: {', '.join(missing)}; export "
                "them before running (header values never go in the contract)",
            )

    @asynccontextmanager
    async def session(
        self, cases: Sequence[Case], limiter: RateLimiter | None
    ) -> AsyncIterator[_Session]:
        """Connection pools for the run: ``concurrency`` connections in all (``_POOL_SIZE``)."""
        self.preflight()
        headers = {header: os.environ[name] for header, name in self._spec.headers.items()}
        pools = -(-self.concurrency // _POOL_SIZE)
        size = -(-self.concurrency // pools)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        headers=headers, timeout=httpx.Timeout(self.retry.timeout_s), limits=limits
                    )
                )
                for _ in range(pools)
            ]
            yield _Session(clients, limiter, [0] * pools)

    async def call(self, session: _Session, case: Case) -> Output:
        """POST the case; read the answer and its extras from the reply."""
        body = request_body(case, self._spec.params)
        latency = 0.0

        async def send() -> Any:
            nonlocal latency
            async with session.client() as client:
                start = time.perf_counter()
                response = await client.post(self._spec.url, json=body)
                latency = time.perf_counter() - start
            if response.status_code >= 400:
                raise _StatusError(response)
            try:
                return response.json()
            except ValueError:
                excerpt = response.text[:_EXCERPT].replace("\n", " ")
                raise _MalformedReply(f"the reply is not JSON: {excerpt!r}") from None

        try:
            data, attempts = await call_with_retries(
                send, self.retry, _classify, limiter=session.limiter
            )
        except CallError as exc:
            return Output(
                case.id,
                None,
                model=self._spec.model,
                error=str(exc),
                attempts=exc.attempts,
                retryable=exc.transient,
            )
        return self._read(case, data, latency, attempts)

    def _read(self, case: Case, data: Any, latency: float, attempts: int) -> Output:
        paths = self._spec.response

        def failed(message: str) -> Output:
            return Output(case.id, None, latency_s=latency, error=message, attempts=attempts)

        found, text = dig(data, paths.output)
        if not found:
            keys = sorted(data)[:12] if isinstance(data, dict) else type(data).__name__
            return failed(
                f"the reply has no '{paths.output}' (it has: {keys}); check response.output"
            )
        if not isinstance(text, str):
            return failed(f"'{paths.output}' in the reply is {type(text).__name__}, not text")
        contexts = None
        if paths.contexts is not None:
            found, value = dig(data, paths.contexts)
            contexts = _contexts(value) if found else None
            if found and contexts is None:
                return failed(f"'{paths.contexts}' in the reply is not a list of passages")
        usage = _usage(dig(data, paths.usage)[1]) if paths.usage else None
        cost: float | None = None
        if paths.cost_usd is not None:
            value = dig(data, paths.cost_usd)[1]
            cost = float(value) if isinstance(value, int | float) and value >= 0 else None
        model = self._spec.model
        if paths.model is not None:
            value = dig(data, paths.model)[1]
            model = value if isinstance(value, str) and value else model
        tool_calls = None
        if paths.tool_calls is not None:
            value = dig(data, paths.tool_calls)[1]
            if isinstance(value, list) and value:
                tool_calls = tuple(v if isinstance(v, dict) else {"value": v} for v in value)
        return Output(
            case.id,
            text,
            contexts=contexts,
            latency_s=latency,
            usage=usage,
            cost_usd=cost,
            model=model,
            attempts=attempts,
            tool_calls=tool_calls,
        )
