"""Python: call ``module:function`` with each case, timed per call."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evals.contract import Contract, PythonTargetSpec
from evals.dataset import Case, Usage
from evals.errors import UserError, display_path
from evals.targets._base import AgentVersion, OnOutput, Output, Progress, Target, config_hash
from evals.targets._live import run_coroutine

__all__ = ["PythonTarget"]

_ASYNC_CONCURRENCY = 8


@contextmanager
def _on_path(root: Path) -> Iterator[None]:
    added = str(root) not in sys.path
    if added:
        sys.path.insert(0, str(root))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(root))


def _to_output(case: Case, result: Any, latency_s: float) -> Output:
    if isinstance(result, str):
        return Output(case.id, result, latency_s=latency_s)
    if isinstance(result, dict) and isinstance(result.get("output"), str):
        try:
            usage = Usage.model_validate(result["usage"]) if result.get("usage") else None
        except ValidationError as exc:
            return Output(case.id, None, latency_s=latency_s, error=f"invalid 'usage': {exc}")
        contexts = result.get("contexts")
        return Output(
            case.id,
            result["output"],
            contexts=tuple(str(c) for c in contexts) if contexts is not None else None,
            latency_s=latency_s,
            usage=usage,
            cost_usd=float(result["cost_usd"]) if result.get("cost_usd") is not None else None,
            model=result.get("model"),
        )
    return Output(
        case.id,
        None,
        latency_s=latency_s,
        error=(
            f"the function returned {type(result).__name__}; return a str, or a dict with "
            "'output' (and optional 'contexts', 'usage', 'cost_usd', 'model')"
        ),
    )


def _failure(case: Case, exc: BaseException, latency_s: float) -> Output:
    return Output(case.id, None, latency_s=latency_s, error=f"{type(exc).__name__}: {exc}")


class PythonTarget(Target):
    """A Python callable ``fn(case, **params) -> str | dict`` (sync or async)."""

    kind = "python"

    def __init__(self, contract: Contract, spec: PythonTargetSpec) -> None:
        self._contract, self._spec = contract, spec
        module_name, _, attribute = spec.function.partition(":")
        shown = display_path(contract.source)
        with _on_path(contract.root):
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise UserError.single(
                    shown,
                    "evals.target.function",
                    f"cannot import '{module_name}' from {display_path(contract.root)}: "
                    f"{type(exc).__name__}: {exc}",
                ) from None
        function = getattr(module, attribute, None)
        if not callable(function):
            raise UserError.single(
                shown, "evals.target.function", f"'{module_name}' has no function '{attribute}'"
            )
        self._function: Callable[..., Any] = function
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            source = ""
        digest = config_hash(
            {"kind": self.kind, "function": spec.function, "params": spec.params, "source": source}
        )
        self._version = AgentVersion(contract.agent, digest[:12], digest)

    def version(self) -> AgentVersion:
        """Hash of the function's module source and the params."""
        return self._version

    def available_versions(self) -> list[str]:
        """Only the code that is importable now."""
        return [self._version.label]

    def at_version(self, label: str) -> PythonTarget:
        """A Python target can only produce the code it imports."""
        if label != self._version.label:
            raise UserError.single(
                display_path(self._contract.source),
                "evals.target",
                f"version '{label}' is not the importable code ({self._version.label}); "
                "a Python target evaluates the code that is checked out",
            )
        return self

    def generate(
        self,
        cases: Sequence[Case],
        progress: Progress | None = None,
        on_output: OnOutput | None = None,
    ) -> list[Output]:
        """Call the function once per case; exceptions become recorded errors."""
        if inspect.iscoroutinefunction(self._function):
            return run_coroutine(self._generate_async(cases, progress, on_output))
        outputs = []
        for done, case in enumerate(cases, start=1):
            start = time.perf_counter()
            try:
                result = self._function(case, **self._spec.params)
            except Exception as exc:
                output = _failure(case, exc, time.perf_counter() - start)
            else:
                output = _to_output(case, result, time.perf_counter() - start)
            outputs.append(output)
            if on_output is not None:
                on_output(output)
            if progress is not None:
                progress(done)
        return outputs

    async def _generate_async(
        self, cases: Sequence[Case], progress: Progress | None, on_output: OnOutput | None
    ) -> list[Output]:
        gate = asyncio.Semaphore(_ASYNC_CONCURRENCY)
        finished = 0

        async def one(case: Case) -> Output:
            nonlocal finished
            async with gate:
                start = time.perf_counter()
                try:
                    call: Awaitable[Any] = self._function(case, **self._spec.params)
                    result = await call
                except Exception as exc:
                    output = _failure(case, exc, time.perf_counter() - start)
                else:
                    output = _to_output(case, result, time.perf_counter() - start)
            if on_output is not None:
                on_output(output)
            finished += 1
            if progress is not None:
                progress(finished)
            return output

        return list(await asyncio.gather(*(one(case) for case in cases)))
