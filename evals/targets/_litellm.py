"""litellm: a Jinja prompt template plus a model, called for every case.

The version hash covers the templates (and any template they include), the model and the
parameters, so a prompt change is a new version. Templates are rendered with
``StrictUndefined`` for every case before the first request: a typo is a user error naming
the template file, its line and the variable, not a run of garbled prompts.

A template is untrusted data (CI gates pull requests that change it), so it renders in Jinja's
immutable sandbox, and one that reaches for an attribute the sandbox forbids (``__class__``,
``__globals__``, ``mro`` …) is refused when it is loaded, naming the file and the line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.meta
import jinja2.nodes
import jinja2.sandbox

from evals._env import apply_offline_defaults
from evals.contract import Contract, LiteLLMTargetSpec, outside_problem
from evals.dataset import Case, Usage
from evals.errors import Problem, UserError, did_you_mean, display_path
from evals.llm import LLMCallError, LLMClient, RateLimiter
from evals.targets._base import AgentVersion, Output, config_hash
from evals.targets._live import LiveTarget, run_coroutine

__all__ = ["LiteLLMTarget", "PromptTemplate"]

_LOG = logging.getLogger(__name__)

TEMPLATE_VARIABLES = ("input", "contexts", "case", "params")
"""What every prompt template gets."""

_UNDEFINED = re.compile(r"'([^']+)' is undefined")
_NO_ATTRIBUTE = re.compile(r"'([^']+)' has no attribute '([^']+)'")


def _variables(case: Case, params: dict[str, Any]) -> dict[str, Any]:
    return {"input": case.input, "contexts": list(case.contexts), "case": case, "params": params}


_UNSAFE_NAMES = frozenset().union(
    jinja2.sandbox.UNSAFE_FUNCTION_ATTRIBUTES,
    jinja2.sandbox.UNSAFE_METHOD_ATTRIBUTES,
    jinja2.sandbox.UNSAFE_GENERATOR_ATTRIBUTES,
    jinja2.sandbox.UNSAFE_COROUTINE_ATTRIBUTES,
    jinja2.sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    {"mro"},
)
"""Attributes the sandbox forbids on some object, besides every name starting with ``_``."""


def _unsafe(name: str) -> bool:
    """Whether the sandbox forbids reading ``name`` (dunders, frames, code objects …)."""
    return name.startswith("_") or name in _UNSAFE_NAMES


def _refuse_unsafe(tree: jinja2.nodes.Template, shown: str) -> None:
    """Refuse a template that reaches for what the sandbox forbids, before anything renders.

    Raises:
        UserError: naming the file, the line and the attribute.
    """
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        name: object = None
        if isinstance(node, jinja2.nodes.Getattr):
            name = node.attr
        elif isinstance(node, jinja2.nodes.Getitem) and isinstance(node.arg, jinja2.nodes.Const):
            name = node.arg.value
        if isinstance(name, str) and _unsafe(name):
            raise UserError.single(
                shown,
                f"line {node.lineno}",
                f"reads '{name}', which templates may not touch (internal attributes could run "
                "code); use input, contexts, case.<field> and params.<name>",
            )


class PromptTemplate:
    """A Jinja template file, strict about undefined variables."""

    def __init__(self, path: Path, root: Path | None = None) -> None:
        """Load and check the template and every template it includes.

        Args:
            path: the template file.
            root: the project root every included template must stay inside (symlinks
                followed); ``None`` checks nothing.

        Raises:
            UserError: a syntax error, a missing or non-UTF-8 template, an include that leads
                outside the project, or a reach for what the sandbox forbids.
        """
        self.path = path
        self.root = root
        self.shown = display_path(path)
        environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(path.parent)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        try:
            self.sources = self._sources(environment, path.name)
            self.template = environment.get_template(path.name)
        except jinja2.TemplateSyntaxError as exc:
            where = display_path(Path(exc.filename)) if exc.filename else self.shown
            raise UserError.single(where, f"line {exc.lineno}", exc.message or str(exc)) from None
        except jinja2.TemplateNotFound as exc:
            raise UserError.single(
                self.shown, "", f"includes '{exc.name}', which is not in {path.parent}"
            ) from None
        except UnicodeDecodeError as exc:
            raise UserError.single(
                self.shown,
                f"byte {exc.start + 1}",
                "is not UTF-8 text (it or a template it includes); save it as UTF-8",
            ) from None

    def _sources(self, environment: jinja2.Environment, name: str) -> dict[str, str]:
        """This template's source and those of every template it includes, by name."""
        assert environment.loader is not None
        sources: dict[str, str] = {}
        todo = [name]
        while todo:
            current = todo.pop()
            if current in sources:
                continue
            source, filename, _ = environment.loader.get_source(environment, current)
            if self.root is not None and filename:
                problem = outside_problem(current, Path(filename), self.root)
                if problem is not None:
                    raise UserError.single(self.shown, "", f"includes {problem}")
            sources[current] = source
            tree = environment.parse(source, current, filename)
            _refuse_unsafe(tree, display_path(Path(filename)) if filename else current)
            referenced = jinja2.meta.find_referenced_templates(tree)
            todo.extend(r for r in referenced if r is not None)
        return sources

    def render(self, case: Case, params: dict[str, Any]) -> str:
        """The template filled in for one case.

        Raises:
            UserError: the template uses a variable or attribute that does not exist, or fails
                otherwise; the message names the file, the line and the variable.
        """
        try:
            return self.template.render(_variables(case, params))
        except jinja2.UndefinedError as exc:
            raise UserError(self._problem(exc, case, params)) from None
        except jinja2.exceptions.SecurityError as exc:
            raise UserError(
                Problem(self.shown, self._line(exc), f"refused by the template sandbox: {exc}")
            ) from None
        except Exception as exc:
            raise UserError(
                Problem(self.shown, self._line(exc), f"rendering case '{case.id}' failed: {exc}")
            ) from None

    def _line(self, exc: BaseException) -> str:
        line = None
        frame = exc.__traceback__
        while frame is not None:
            if frame.tb_frame.f_code.co_filename == self.template.filename:
                line = frame.tb_lineno
            frame = frame.tb_next
        return f"line {line}" if line is not None else ""

    def _problem(self, exc: jinja2.UndefinedError, case: Case, params: dict[str, Any]) -> Problem:
        text = exc.message or str(exc)
        missing = _UNDEFINED.search(text)
        attribute = _NO_ATTRIBUTE.search(text)
        if missing:
            name = missing.group(1)
            message = (
                f"'{name}' is undefined{did_you_mean(name, TEMPLATE_VARIABLES)}; a template gets "
                f"{', '.join(TEMPLATE_VARIABLES)}"
            )
        elif attribute:
            owner, name = attribute.groups()
            if "Case" in owner:
                known: Sequence[str] = list(Case.model_fields)
                what = "case"
            elif owner == "dict object":
                known = list(params) + list(case.metadata)
                what = "the dict"
            else:
                known, what = [], owner
            message = f"{what} has no attribute '{name}'{did_you_mean(name, known)}"
        else:
            message = text
        return Problem(self.shown, self._line(exc), f"{message} (rendering case '{case.id}')")


@dataclass(frozen=True)
class _Session:
    client: LLMClient
    messages: dict[str, list[dict[str, Any]]]


_WARM: set[str] = set()


def _warm_up(model: str) -> None:
    """Run litellm's first-call setup for ``model`` once, on a canned reply: nothing is sent.

    litellm builds its per-call machinery lazily, on the first call of a process (about 0.1 s
    of CPU): every forked worker of a sharded run would pay it again, all at once, with the
    run's clock going. A ``mock_response`` call runs that setup without a request, and
    ``no-log`` keeps it out of any logging callback a team configured. Best effort: a model
    litellm cannot resolve offline keeps the cost in its first real call, nothing more.
    """
    if model in _WARM:
        return
    _WARM.add(model)
    import litellm

    async def once() -> None:
        await litellm.acompletion(
            model=model,
            messages=[{"role": "user", "content": "warm-up"}],
            mock_response="warm-up",
            **{"no-log": True},
        )
        await _settle()

    try:
        run_coroutine(once())
    except Exception as exc:  # the warm-up only moves a cost; it must never stop a run
        _LOG.debug("litellm warm-up for %s skipped: %s", model, exc)


async def _settle(quiet_ticks: int = 10, limit_s: float = 1.0) -> None:
    """Let litellm finish a call's bookkeeping on this loop before the loop closes.

    litellm hands it to background tasks, a few loop turns after the call returns; one still
    queued when the loop closes is taken over by the next loop, with a warning. This waits,
    turn by turn, until the loop's tasks have not changed for ``quiet_ticks`` turns.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    seen: set[asyncio.Task[Any]] = set()
    quiet = 0
    while quiet < quiet_ticks and loop.time() < deadline:
        await asyncio.sleep(0.001)
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        quiet = quiet + 1 if tasks == seen else 0
        seen = tasks


def _count_tokens(model: str, messages: list[dict[str, Any]], text: str) -> Usage | None:
    """Tokens counted locally, for providers that report no usage."""
    apply_offline_defaults()
    import litellm

    try:
        prompt = litellm.token_counter(model=model, messages=messages)
        completion = litellm.token_counter(model=model, text=text, count_response_tokens=True)
    except Exception:  # an unknown tokenizer leaves the cost unknown, which the run reports
        return None
    return Usage(prompt_tokens=int(prompt), completion_tokens=int(completion))


class LiteLLMTarget(LiveTarget[_Session]):
    """A prompt template plus a model, through litellm (any provider, ``api_base`` included)."""

    kind = "litellm"

    def __init__(self, contract: Contract, spec: LiteLLMTargetSpec) -> None:
        super().__init__(spec)
        self._contract, self._spec = contract, spec
        self._prompt = self._template("evals.target.prompt", spec.prompt)
        self._system = self._template("evals.target.system", spec.system) if spec.system else None
        digest = config_hash(
            {
                "kind": self.kind,
                "model": spec.model,
                "params": spec.params,
                "prompt": self._prompt.sources,
                "system": self._system.sources if self._system else None,
            }
        )
        self._version = AgentVersion(contract.agent, digest[:12], digest)

    def _template(self, field: str, relative: str) -> PromptTemplate:
        path = self._contract.resolve(relative)
        if not path.is_file():
            raise UserError.single(
                display_path(self._contract.source),
                field,
                f"template file {display_path(path)} not found (paths are relative to the "
                "project root)",
            )
        return PromptTemplate(path, self._contract.root)

    def version(self) -> AgentVersion:
        """Hash of the templates, the model and the params."""
        return self._version

    def available_versions(self) -> list[str]:
        """Only the templates and settings checked out now."""
        return [self._version.label]

    def at_version(self, label: str) -> LiteLLMTarget:
        """A litellm target can only produce the prompt that is checked out."""
        if label != self._version.label:
            raise UserError.single(
                display_path(self._contract.source),
                "evals.target",
                f"version '{label}' is not the checked-out prompt and model "
                f"({self._version.label}); check out that prompt to evaluate it",
            )
        return self

    def messages(self, case: Case) -> list[dict[str, Any]]:
        """The chat messages sent for one case.

        Raises:
            UserError: a template does not render for this case.
        """
        params = dict(self._spec.params)
        messages = []
        if self._system is not None:
            messages.append({"role": "system", "content": self._system.render(case, params)})
        messages.append({"role": "user", "content": self._prompt.render(case, params)})
        return messages

    def check(self, cases: Sequence[Case]) -> None:
        """Render every case's prompt, so a template mistake surfaces before any call."""
        for case in cases:
            self.messages(case)

    def secret_env_names(self) -> list[str]:
        """The API key's variable, when the contract names one."""
        return [self._spec.api_key_env] if self._spec.api_key_env else []

    def preflight(self) -> None:
        """The API key variable must be set; litellm is imported and warmed now.

        Importing litellm takes seconds, and its first call builds much of its per-call
        machinery (provider settings, response models, logging objects). Paying both here
        keeps them out of the first case's latency and out of the run's throughput, and a run
        sharded over processes forks its workers after this, so they start warm.
        """
        name = self._spec.api_key_env
        if name and not os.environ.get(name):
            raise UserError.single(
                display_path(self._contract.source),
                "evals.target.api_key_env",
                f"environment variable {name} (the API key) is not set; export it before "
                "running (keys never go in the contract)",
            )
        apply_offline_defaults()
        import litellm  # noqa: F401

        _warm_up(self._spec.model)

    @asynccontextmanager
    async def session(
        self, cases: Sequence[Case], limiter: RateLimiter | None
    ) -> AsyncIterator[_Session]:
        """Render every prompt, then open one client for the run."""
        messages = {case.id: self.messages(case) for case in cases}
        spec = self._spec
        client = LLMClient(
            spec.model,
            api_base=spec.api_base,
            api_key_env=spec.api_key_env,
            params=spec.params,
            retry=self.retry,
            limiter=limiter,
        )
        yield _Session(client, messages)

    async def call(self, session: _Session, case: Case) -> Output:
        """One chat completion; usage as reported, or counted locally when it is not."""
        model = self._spec.model
        messages = session.messages[case.id]
        try:
            completion = await session.client.complete(messages)
        except LLMCallError as exc:
            return Output(
                case.id,
                None,
                model=model,
                error=str(exc),
                attempts=exc.attempts,
                retryable=exc.transient,
            )
        # litellm reports 0/0 when the provider sent no usage; no real prompt has 0 tokens.
        counted = not completion.prompt_tokens
        if counted:
            usage = _count_tokens(model, messages, completion.text)
        else:
            usage = Usage(
                prompt_tokens=completion.prompt_tokens or 0,
                completion_tokens=completion.completion_tokens or 0,
            )
        message = (completion.raw.get("choices") or [{}])[0].get("message") or {}
        tool_calls = message.get("tool_calls")
        return Output(
            case.id,
            completion.text,
            latency_s=completion.latency_s,
            usage=usage,
            model=model,
            attempts=completion.attempts,
            usage_counted=counted and usage is not None,
            tool_calls=tuple(tool_calls) if tool_calls else None,
        )
