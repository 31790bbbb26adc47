"""The Agent Impact Contract as a pydantic model.

One YAML file per agent (``policies/<agent>.yaml``) holds everything a person signs off on: the
outcomes the agent owns, its adoption target, the workflow metrics, its autonomy level with the
thresholds that gate each level, what happens on a breach, and how it is evaluated. The JSON
Schema committed beside the policies is generated from these classes (``impactgate schema``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from evals._urls import url_problem
from evals.contract._paths import outside_problem
from evals.contract._telemetry import Telemetry
from evals.errors import FieldError, UserError, did_you_mean, display_path
from evals.metrics import DRIFT_METRICS, METRICS, PRODUCTION_METRICS, Suite
from evals.vocab import (
    AGENT_PATTERN,
    LEVELS,
    SEVERITIES,
    JudgeTier,
    Level,
    Severity,
    level_rank,
)

__all__ = [
    "LEVELS",
    "SEVERITIES",
    "Adoption",
    "Autonomy",
    "CIConfig",
    "CalibrationConfig",
    "Channel",
    "Contract",
    "CostConfig",
    "EmailChannel",
    "Escalation",
    "Evals",
    "EventChannel",
    "GroundingConfig",
    "HttpResponseSpec",
    "HttpTargetSpec",
    "Level",
    "LevelPolicy",
    "LiteLLMTargetSpec",
    "Monitoring",
    "Outcome",
    "OutcomeMetric",
    "PolicyConfig",
    "Price",
    "ProductionConfig",
    "PythonTargetSpec",
    "ReplayTargetSpec",
    "RetryConfig",
    "Rollback",
    "RollbackHook",
    "Schedule",
    "Severity",
    "TargetSpec",
    "Threshold",
    "WebhookChannel",
    "Workflow",
    "WorkflowMetric",
    "level_rank",
    "window_days",
]


_WINDOW = r"^[1-9][0-9]*(d|w|mo)$"
_WINDOW_DAYS = {"d": 1, "w": 7, "mo": 30}


def window_days(window: str) -> int:
    """A window (``90d``, ``12w``, ``3mo``) in days; a month counts 30 days."""
    match = re.fullmatch(r"([1-9][0-9]*)(d|w|mo)", window)
    if match is None:
        raise ValueError(f"{window!r} is not a window like 90d, 12w or 3mo")
    return int(match.group(1)) * _WINDOW_DAYS[match.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


_HTTP = r"^https?://"
"""The start of every URL a contract writes; the whole URL is checked by ``url_problem``."""


def _checked_url(value: str | None) -> str | None:
    """``value`` when it is a usable http(s) URL (host, port, no spaces or control characters)."""
    if value is not None:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def metric_range(name: str) -> tuple[float | None, float | None]:
    """The values a gated metric can take, from its unit.

    Shares are in [0, 1], progress along the path from baseline to target is unbounded
    (negative: worse than the baseline), the rest is at least 0.
    """
    unit = METRICS[name].unit
    if unit == "progress":
        return (None, None)
    return (0.0, 1.0) if unit == "share" else (0.0, None)


def _out_of_range(name: str, value: float) -> str | None:
    low, high = metric_range(name)
    if low is None:
        return None
    if value < low or (high is not None and value > high):
        span = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        unit = "a share" if high is not None else f"in {METRICS[name].unit}"
        return f"{value:g} is out of range: '{name}' is {unit}, so a threshold must be {span}"
    return None


QUALITY_EXCLUDED: frozenset[str] = frozenset(
    name for name, spec in METRICS.items() if spec.suite in (None, "cost", "latency")
)
"""Metrics that say nothing about whether the answers are good: the error rate, cost and
latency. A level whose gates are only these is not gated on quality."""


# --- outcome, adoption, workflow ---------------------------------------------------------


class OutcomeMetric(_Model):
    """A business or customer metric with its before → after on one line."""

    name: str = Field(min_length=1)
    """What is measured, in the owner's words."""
    baseline: float
    """The value before the agent."""
    target: float
    """The value the agent is accountable for reaching."""
    unit: str = Field(min_length=1)
    """Unit of baseline and target (USD, %, hours, score...)."""
    window: str = Field(pattern=_WINDOW)
    """Measurement window: days, weeks or months, e.g. ``90d``, ``12w``, ``3mo``."""
    owner: str = Field(min_length=1)
    """Who owns the data behind the number (team or address)."""
    source: str | None = None
    """Where the number comes from (dashboard, table)."""
    query: str | None = Field(default=None, min_length=1)
    """DuckDB SQL that measures it (needs a ``telemetry`` block): one ``SELECT`` over
    ``work_items`` and ``spans`` (this agent's rows) or a table of ``telemetry.tables``,
    returning a ``day`` (date or time) and a ``value`` per row, a work item or a day. The
    scorecard averages the values over its window (a share when every value is 0 or 1) and
    per week. Without it the outcome is shown as planned, not measured."""


class Outcome(_Model):
    """The outcomes the agent owns: one or two business metrics and the customer metric."""

    business: list[OutcomeMetric] = Field(min_length=1, max_length=2)
    """One or two business metrics."""
    customer: OutcomeMetric
    """The customer metric."""


class Adoption(_Model):
    """How much of the eligible work should go through the agent."""

    measure: str = Field(min_length=1)
    """What counts as adoption (e.g. share of refund tickets answered by the agent)."""
    baseline: float = Field(default=0.0, ge=0, le=1)
    """Share today."""
    target: float = Field(ge=0, le=1)
    """Target share."""
    window: str = Field(pattern=_WINDOW)
    """Window in which the target should be reached."""
    owner: str = Field(min_length=1)
    """Who owns adoption."""
    query: str | None = Field(default=None, min_length=1)
    """DuckDB SQL returning ``day`` and ``value`` (1 adopted, 0 not) per eligible work item;
    default: the share of this agent's work items that a span of the agent names (handled by
    the agent). See ``OutcomeMetric.query``."""


class WorkflowMetric(_Model):
    """A workflow metric: where it is now and where the agent should take it."""

    baseline: float
    """Value before the agent."""
    target: float
    """Value the workflow should reach with the agent."""
    unit: str = "share"
    """Unit (``share`` for rates in [0, 1], ``h`` for hours...)."""

    @model_validator(mode="after")
    def _shares_in_range(self) -> WorkflowMetric:
        if self.unit == "share":
            found = [
                ((name,), f"{value:g} is not a share; a share is between 0 and 1")
                for name, value in (("baseline", self.baseline), ("target", self.target))
                if not 0 <= value <= 1
            ]
            if found:
                raise FieldError(*found)
        return self


class Workflow(_Model):
    """The workflow metrics of the slice the agent works in."""

    cycle_time: WorkflowMetric
    """Time from request to resolution."""
    automation_rate: WorkflowMetric
    """Share of requests resolved without a person."""
    escalation_rate: WorkflowMetric
    """Share of requests the agent hands to a person."""
    rework_rate: WorkflowMetric
    """Share of agent resolutions that had to be redone."""
    error_budget: float = Field(ge=0, le=1)
    """Largest share of golden cases that may end in an error (call or scoring) in one run;
    gated at every level as ``error_rate``."""
    observations: str | None = None
    """File of measured workflow metrics (CSV/JSONL: ``metric, value`` and ``n`` for rates or
    ``low, high`` for the rest; optional ``window``), relative to the project root. A promotion
    needs each metric measured and at least as good as its baseline: from the scorecard when
    the contract has a ``telemetry`` block, else (or for what it did not measure) from this
    file."""


# --- autonomy and trust --------------------------------------------------------------------


class Threshold(_Model):
    """A gate threshold with its direction: ``{min: 0.85}`` or ``{max: 0.05}``."""

    min: float | None = None
    """The metric must be at least this."""
    max: float | None = None
    """The metric must be at most this."""

    @model_validator(mode="after")
    def _one_direction(self) -> Threshold:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of 'min' or 'max', e.g. {min: 0.85}")
        return self

    @property
    def direction(self) -> Literal["min", "max"]:
        """``min`` when higher is better, ``max`` when lower is better."""
        return "min" if self.min is not None else "max"

    @property
    def bound(self) -> float:
        """The threshold value."""
        value = self.min if self.min is not None else self.max
        assert value is not None
        return value

    def __str__(self) -> str:
        return f"{'≥' if self.direction == 'min' else '≤'} {self.bound:g}"

    def is_stricter_or_equal(self, other: Threshold) -> bool:
        """Whether this threshold asks at least as much as ``other`` (same direction)."""
        if self.direction != other.direction:
            return False
        return self.bound >= other.bound if self.direction == "min" else self.bound <= other.bound


class LevelPolicy(_Model):
    """What an agent must show to hold one autonomy level."""

    gates: dict[str, Threshold] = Field(default_factory=dict)
    """Metric name (one of the gate metrics) → threshold. A level also inherits every gate of
    the levels below it."""
    human_approval: bool = False
    """Promotion into this level needs a person's approval as well as passing gates."""

    @field_validator("gates")
    @classmethod
    def _known_metrics(cls, gates: dict[str, Threshold]) -> dict[str, Threshold]:
        for name in gates:
            if name not in METRICS:
                raise ValueError(f"unknown metric '{name}'{did_you_mean(name, METRICS)}")
        return gates

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> LevelPolicy:
        found = []
        for name, threshold in self.gates.items():
            problem = _out_of_range(name, threshold.bound)
            if problem is not None:
                found.append((("gates", name, threshold.direction), problem))
        if found:
            raise FieldError(*found)
        return self


"""Breach severities: an inconclusive gate is medium, a failed gate high, a rollback critical."""


class _Channel(_Model):
    min_severity: Severity = "medium"
    """Only breaches at least this severe reach this channel: ``medium`` (a gate
    inconclusive), ``high`` (a gate failed) or ``critical`` (a rollback)."""


class WebhookChannel(_Channel):
    """POST a JSON incident (Slack-compatible ``text`` field included) to a URL."""

    kind: Literal["webhook"] = "webhook"
    """A webhook channel; a channel without ``kind`` is one."""
    url: str | None = Field(default=None, pattern=_HTTP)
    """The URL, when it is not a secret."""
    _url = field_validator("url")(_checked_url)
    url_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Name of the environment variable that holds the URL (for secret URLs)."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Seconds to wait for the receiver."""

    @model_validator(mode="after")
    def _one_source(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env'")
        return self


class EmailChannel(_Channel):
    """Send the incident by email through an SMTP server."""

    kind: Literal["email"]
    """An email channel."""
    to: list[str] = Field(min_length=1)
    """Recipients."""
    sender: str = Field(min_length=3)
    """The From address."""
    smtp_host: str = Field(min_length=1)
    """SMTP server host."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    """SMTP server port."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS (port 587); off for local relays."""
    username_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Environment variable holding the SMTP user name, when the server needs a login."""
    password_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Environment variable holding the SMTP password."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Seconds to wait for the server."""


class EventChannel(_Channel):
    """Emit a Prefect event (``impactgate.<kind>``) that a Prefect automation can act on."""

    kind: Literal["event"]
    """A Prefect event channel."""
    resource: str | None = None
    """Resource id of the event; default ``impactgate.agent.<agent>``."""


def _channel_kind(value: Any) -> str:
    """A channel without ``kind`` is a webhook (the first and most common channel)."""
    if isinstance(value, dict):
        return str(value.get("kind", "webhook"))
    return str(getattr(value, "kind", "webhook"))


Channel = Annotated[
    Annotated[WebhookChannel, Tag("webhook")]
    | Annotated[EmailChannel, Tag("email")]
    | Annotated[EventChannel, Tag("event")],
    Discriminator(_channel_kind),
]


class RollbackHook(_Model):
    """What makes a rollback real where the agent is served."""

    kind: Literal["python", "webhook"]
    """Call a Python function (``python``) or POST to a URL (``webhook``)."""
    function: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """``module:function`` called with one dict (agent, versions and levels before and after,
    reason, run id), importable from the project root (``kind: python``)."""
    url: str | None = Field(default=None, pattern=_HTTP)
    """URL that receives the same dict as a JSON POST (``kind: webhook``)."""
    _url = field_validator("url")(_checked_url)
    url_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Environment variable holding that URL, for secret URLs."""
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds to wait for the webhook."""

    @model_validator(mode="after")
    def _target(self) -> RollbackHook:
        if self.kind == "python" and (self.function is None or self.url or self.url_env):
            raise ValueError("a python hook needs 'function' (and no url)")
        if self.kind == "webhook" and (
            self.function is not None or (self.url is None) == (self.url_env is None)
        ):
            raise ValueError("a webhook hook needs exactly one of 'url' or 'url_env'")
        return self


class Escalation(_Model):
    """Who is told, and how, when the agent breaches its current level.

    A breach opens one incident per agent; the same breach the next night updates it without
    paging again, while new metrics or a higher severity page again. A clean run at the level
    the agent held when the incident opened closes it, so a rollback's incident stays open until
    the agent has earned its level back.
    """

    owner: str = Field(min_length=1)
    """Who is accountable for acting on a breach."""
    channels: list[Channel] = Field(default_factory=list)
    """Where incidents go besides the decisions table, the log and the Prefect UI."""
    on_inconclusive: bool = False
    """Escalate when a gate of the current level is inconclusive, not only when it fails."""


class Rollback(_Model):
    """What is rolled back when a metric breaches."""

    metrics: list[str] = Field(default_factory=list)
    """Metrics whose failure rolls the agent back instead of only escalating."""
    demote_to: Level
    """The level the agent drops to on rollback (never higher than its current level)."""
    known_good: str | None = None
    """Version to return to until a run has shown one passing; after that, the last version
    whose run passed every gate of its level."""
    hook: RollbackHook | None = None
    """Makes the rollback real where the agent is served (the ledger only records it)."""

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in METRICS:
                raise ValueError(f"unknown metric '{name}'{did_you_mean(name, METRICS)}")
        return names


class Autonomy(_Model):
    """The autonomy ladder: current level, the gates of each level, and breach handling.

    Levels are cumulative: ``constrained`` must meet its own gates and those of ``approval``
    and ``draft``, and a higher level may not loosen a threshold of a lower one. A breach is a
    ``fail`` of a gate of the agent's current level (or ``inconclusive``, with
    ``escalation.on_inconclusive``). If a breached metric is in ``rollback.metrics`` the agent
    is rolled back: the ledger re-pins the last good version and the level drops to the lower
    of the current one and ``rollback.demote_to``; otherwise the owner is escalated to. Both are
    recorded in the ``decisions`` table and sent to every channel.
    """

    level: Level
    """The level the agent holds when the contract is first registered."""
    levels: dict[Level, LevelPolicy]
    """Gates per level. Levels are cumulative: a level's gates include those below it."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    """Confidence level of every interval behind a verdict."""
    min_samples: int = Field(default=30, ge=1)
    """Fewest scored cases a gate needs before it can pass."""
    escalation: Escalation
    """Who is told and how."""
    rollback: Rollback
    """What is rolled back, to what, and the level it drops to."""

    def gates_for(self, level: Level) -> dict[str, Threshold]:
        """Effective gates of ``level``: its own plus those of every level below it."""
        gates: dict[str, Threshold] = {}
        for lower in LEVELS[: level_rank(level) + 1]:
            policy = self.levels.get(lower)
            if policy is not None:
                gates.update(policy.gates)
        return gates

    @model_validator(mode="after")
    def _ladder_is_monotone(self) -> Autonomy:
        found: list[tuple[tuple[str | int, ...], str]] = []
        seen: dict[str, tuple[Level, Threshold]] = {}
        for level in LEVELS:
            policy = self.levels.get(level)
            if policy is None:
                continue
            for name, threshold in policy.gates.items():
                if name in seen:
                    lower, before = seen[name]
                    if not threshold.is_stricter_or_equal(before):
                        found.append(
                            (
                                ("levels", level, "gates", name),
                                f"levels.{level}.gates.{name} ({threshold}) is looser than "
                                f"levels.{lower}.gates.{name} ({before}); a higher level must "
                                "ask at least as much",
                            )
                        )
                seen[name] = (level, threshold)
        for i, name in enumerate(self.rollback.metrics):
            if name not in seen:
                found.append(
                    (
                        ("rollback", "metrics", i),
                        f"rollback.metrics names '{name}', which no level gates; add it to a "
                        "level's gates",
                    )
                )
        if not any(name not in QUALITY_EXCLUDED for name in self.gates_for(self.level)):
            quality = ", ".join(n for n in METRICS if n not in QUALITY_EXCLUDED)
            where: tuple[str | int, ...] = (
                ("levels", self.level) if self.level in self.levels else ("levels",)
            )
            found.append(
                (
                    where,
                    f"level '{self.level}' has no quality gate: error_rate, cost and latency "
                    "gates alone cannot show that the answers are good, so a quality gate is "
                    f"a gate on any other metric ({quality}); add one to '{self.level}' or a "
                    "level below it",
                )
            )
        if found:
            raise FieldError(*found)
        return self


# --- evals ---------------------------------------------------------------------------------


class ReplayTargetSpec(_Model):
    """Outputs recorded earlier, per agent version: in the dataset or in a side file.

    The version is the label plus a hash of the recordings, so re-recording is a new version.
    """

    kind: Literal["replay"]
    """Replay recorded outputs; nothing is called."""
    version: str = Field(min_length=1, max_length=64)
    """The recorded version that is deployed now."""
    outputs: str | None = None
    """Side file of recorded outputs (``case_id, version, output`` + optional ``latency_s,
    usage, cost_usd, model, contexts, error``), relative to the project root. Without it the
    dataset's own ``output`` column is the recording of ``version``."""


class PythonTargetSpec(_Model):
    """A Python callable, called as ``fn(case, **params)`` for each case, sync or async.

    It returns the answer as a string, or a dict with ``output`` and optional ``contexts``,
    ``usage``, ``cost_usd`` and ``model``. The version is a hash of the module's source and the
    params, so any change to the code is a new version.
    """

    kind: Literal["python"]
    """Call a Python function in the project."""
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """``package.module:function``, importable from the project root."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed to the function; part of the version hash."""


_ENV = r"^[A-Z_][A-Z0-9_]*$"


class RetryConfig(_Model):
    """How hard a live target tries each case before recording it as an error."""

    attempts: int = Field(default=4, ge=1, le=20)
    """Total attempts per case, the first included. Timeouts, HTTP 429 and 5xx, dropped
    connections and malformed replies are retried; other errors are not."""
    base_delay_s: float = Field(default=0.5, ge=0, le=60)
    """Wait before the second attempt; it doubles with each retry, plus up to 25% jitter."""
    max_delay_s: float = Field(default=30.0, gt=0, le=600)
    """Longest wait between attempts, a server's ``Retry-After`` included."""
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Seconds one attempt may take before it is abandoned (and retried)."""


class _LiveTargetSpec(_Model):
    """What every target that calls something per case shares."""

    concurrency: int = Field(default=8, ge=1, le=1024)
    """Cases in flight at once, across every process."""
    requests_per_minute: int | None = Field(default=None, ge=1)
    """Most requests started per minute, retries included; no limit when absent."""
    processes: int = Field(default=1, ge=1, le=64)
    """Worker processes the calls are spread over, each with its own event loop and an equal
    share of ``concurrency`` and ``requests_per_minute`` (the provider never sees more than
    they allow). One (the default) calls from the run's own process; more help when the
    client's own work per call (litellm: milliseconds of CPU) saturates one event loop. With
    a Dask or Ray task runner the shards run on its workers instead (docs/deploy.md)."""
    retry: RetryConfig = Field(default_factory=RetryConfig)
    """Attempts, backoff and the per-attempt timeout."""
    cache: bool = True
    """Reuse outputs of this exact version for unchanged cases, so a rerun calls nothing."""

    @model_validator(mode="after")
    def _processes_share_the_limits(self) -> _LiveTargetSpec:
        found = []
        if self.processes > self.concurrency:
            found.append(
                (
                    ("processes",),
                    f"{self.processes} processes cannot share a concurrency of "
                    f"{self.concurrency} (each needs at least one call in flight); lower "
                    f"'processes' to at most {self.concurrency} or raise 'concurrency'",
                )
            )
        rpm = self.requests_per_minute
        if rpm is not None and self.processes > rpm:
            found.append(
                (
                    ("processes",),
                    f"{self.processes} processes cannot share requests_per_minute {rpm} (each "
                    f"needs at least one request a minute); lower 'processes' to at most {rpm}",
                )
            )
        if found:
            raise FieldError(*found)
        return self


_LITELLM_RESERVED = {
    "api_key": "put the key in an environment variable and name it in 'api_key_env'",
    "api_base": "use the target's 'api_base' field",
    "model": "use the target's 'model' field",
    "messages": "the prompt template renders the messages",
    "stream": "streaming is not supported; answers are read whole",
    "timeout": "use 'retry.timeout_s'",
    "num_retries": "use 'retry.attempts'",
    "max_retries": "use 'retry.attempts'",
}


class LiteLLMTargetSpec(_LiveTargetSpec):
    """A prompt template plus a model, called through litellm for each case."""

    kind: Literal["litellm"]
    """Call a model through litellm (see ``docs/targets.md``)."""
    model: str = Field(min_length=1)
    """litellm model id, e.g. ``openai/gpt-4o-mini`` or ``anthropic/claude-haiku-4-5``."""
    prompt: str = Field(min_length=1)
    """Jinja template of the user message, relative to the project root. It gets ``input``,
    ``contexts``, ``case`` and ``params``; an unknown variable is an error."""
    system: str | None = Field(default=None, min_length=1)
    """Jinja template of the system message (same variables), relative to the project root."""
    params: dict[str, Any] = Field(default_factory=dict)
    """litellm parameters (``temperature``, ``max_tokens``...), also given to the templates as
    ``params``. The version hash covers them, the templates and the model."""
    api_base: str | None = Field(default=None, pattern=_HTTP)
    """Base URL of the provider or an OpenAI-compatible server (not part of the version)."""
    api_key_env: str | None = Field(default=None, pattern=_ENV)
    """Environment variable holding the API key; its value is redacted from everything
    recorded. Without it litellm reads the provider's usual variable."""
    _api_base = field_validator("api_base")(_checked_url)

    @field_validator("params")
    @classmethod
    def _no_reserved_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, fix in _LITELLM_RESERVED.items():
            if name in params:
                raise ValueError(f"'{name}' cannot be a param: {fix}")
        return params


class HttpResponseSpec(_Model):
    """Where the parts of an answer are in the endpoint's JSON reply (dotted paths)."""

    output: str = Field(default="output", min_length=1)
    """Path to the answer text, e.g. ``answer`` or ``choices.0.message.content``."""
    contexts: str | None = None
    """Path to the list of passages the agent retrieved (strings, or objects with ``text``)."""
    usage: str | None = None
    """Path to token usage: an object with ``prompt_tokens``/``completion_tokens`` (or
    ``input_tokens``/``output_tokens``)."""
    tool_calls: str | None = None
    """Path to the list of tool calls the agent made (kept with the output)."""
    cost_usd: str | None = None
    """Path to the cost the endpoint reports, in USD."""
    model: str | None = None
    """Path to the model name the endpoint reports (prices its usage)."""


class HttpTargetSpec(_LiveTargetSpec):
    """An agent behind an HTTP endpoint: each case is POSTed as JSON, the answer read back.

    The body is ``{"id", "input", "contexts", "tags", "metadata", "params"}``; a case's
    ``reference`` and recorded outputs are never sent.
    """

    kind: Literal["http"]
    """POST each case to an HTTP endpoint (see ``docs/targets.md``)."""
    url: str = Field(pattern=_HTTP)
    """The endpoint that answers one case per POST."""
    _url = field_validator("url")(_checked_url)
    version: str | None = Field(default=None, min_length=1, max_length=64)
    """Label of what is deployed behind the URL (a release, a commit). The version hash covers
    it with the URL, params and response paths: the endpoint's code is invisible to us, so a
    new deployment needs a new label, or cached outputs of the old one are reused."""
    headers: dict[str, Annotated[str, Field(pattern=_ENV)]] = Field(default_factory=dict)
    """Header name → environment variable holding its value (``Authorization: AGENT_TOKEN``).
    Values never go in contracts and are redacted from everything recorded."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Sent as ``params`` in every request body; part of the version hash."""
    response: HttpResponseSpec = Field(default_factory=HttpResponseSpec)
    """Where the answer, contexts, usage, tool calls, cost and model are in the reply."""
    model: str | None = None
    """Model behind the endpoint, to price reported token usage when the reply names none."""


TargetSpec = Annotated[
    ReplayTargetSpec | PythonTargetSpec | LiteLLMTargetSpec | HttpTargetSpec,
    Field(discriminator="kind"),
]


class CalibrationConfig(_Model):
    """Fit the grounding judge's operating point on the owner's labels (docs/calibration.md)."""

    labels: str | None = None
    """A label file (CSV or JSONL, as ``impactgate labels export`` writes it and a person
    fills in), relative to the project root; default: the agent's labels in the results store
    (``impactgate labels import``)."""
    objective: Literal["balanced", "false_alarm_budget"] = "balanced"
    """``balanced``: the threshold that maximises balanced accuracy on the labels;
    ``false_alarm_budget``: the one that catches the most unsupported answers while flagging
    at most ``budget`` of the supported ones."""
    budget: float | None = Field(default=None, ge=0, lt=1)
    """With ``false_alarm_budget``: the largest share of supported answers that may be
    flagged."""

    @model_validator(mode="after")
    def _budget_for_objective(self) -> CalibrationConfig:
        if self.objective == "false_alarm_budget" and self.budget is None:
            raise ValueError(
                "objective 'false_alarm_budget' needs 'budget', e.g. 0.1 to flag at most 10% "
                "of supported answers"
            )
        if self.objective == "balanced" and self.budget is not None:
            raise ValueError("'budget' applies to objective 'false_alarm_budget' only")
        return self


class GroundingConfig(_Model):
    """The judge behind the grounding, hallucination and rag suites."""

    judge: JudgeTier = "offline"
    """``offline``: the bundled embedding model plus text evidence (no keys, no downloads);
    ``nli``: a CrossEncoder NLI model; ``llm``: a model through litellm judging each claim;
    ``ragas``: ragas's Faithfulness through litellm."""
    support_threshold: float | None = Field(default=None, gt=0, lt=1)
    """A claim counts as supported when its support probability is at least this; default:
    the offline judge's calibrated threshold at ``operating_point``, 0.5 for NLI."""
    operating_point: Literal["balanced", "low_false_alarm"] = "balanced"
    """Offline judge: ``balanced`` maximises balanced accuracy on the calibration data;
    ``low_false_alarm`` flags at most 20% of supported answers there (for answers that
    paraphrase their sources freely)."""
    model: str | None = None
    """``nli``: CrossEncoder id or local path; ``llm``/``ragas``: litellm model id."""
    api_base: str | None = Field(default=None, pattern=_HTTP)
    """Base URL of an OpenAI-compatible endpoint (``llm``/``ragas``)."""
    _api_base = field_validator("api_base")(_checked_url)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Environment variable holding the API key (keys never go in contracts)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Extra litellm parameters (e.g. ``max_tokens``)."""
    concurrency: int = Field(default=8, ge=1, le=256)
    """Judge calls in flight at once (``llm``/``ragas``)."""
    cache: bool = True
    """Cache model replies so a rerun costs nothing (``llm``/``ragas``)."""
    repeats: int = Field(default=1, ge=1, le=10)
    """How many times the LLM judge scores each answer (``llm`` only): its noise is measured
    and folded into every interval. Offline and NLI judges are deterministic and score once."""
    labels: str | None = None
    """The owner's grounding labels kept beside the contract (a label file as ``impactgate
    labels export`` writes it and a person fills in), relative to the project root: every run
    measures ``judge_agreement`` on them at the judge's own threshold. Default: the agent's
    labels in the results store (``impactgate labels import``). To *fit* the threshold on a
    file, name it in ``calibration.labels`` instead."""
    calibration: CalibrationConfig | None = None
    """Fit the support threshold on the owner's labels at every run (it replaces
    ``support_threshold``); the run records the labels hash, their number and the judge's
    fingerprint. Without it, the labels (``labels``, else the results store's) are still used
    to measure ``judge_agreement`` at the judge's own threshold."""

    @model_validator(mode="after")
    def _model_for_tier(self) -> GroundingConfig:
        if self.judge == "offline" and self.model is not None:
            raise ValueError("the offline judge takes no 'model'; use judge: nli, llm or ragas")
        if self.judge != "offline" and self.operating_point != "balanced":
            raise ValueError("'operating_point' applies to the offline judge only")
        if self.judge != "offline" and not self.model:
            raise ValueError(f"judge '{self.judge}' needs 'model'")
        if self.repeats > 1 and self.judge != "llm":
            raise ValueError(
                "'repeats' applies to judge: llm (the other judges are deterministic or ragas-driven)"
            )
        if self.calibration is not None and self.support_threshold is not None:
            raise ValueError(
                "give 'support_threshold' or 'calibration', not both: a calibration fits the "
                "threshold on your labels"
            )
        if "api_key" in self.params:
            raise ValueError(
                "put the API key in an environment variable and name it in 'api_key_env'"
            )
        if self.labels is not None and self.calibration is not None:
            raise ValueError(
                "give the label file once: 'calibration.labels' to fit the threshold on it, or "
                "'labels' to measure the judge's agreement at its own threshold"
            )
        return self


class PolicyConfig(_Model):
    """The rule packs the policy suite applies, and this agent's exceptions."""

    rule_packs: list[str] = Field(default_factory=lambda: ["policies/rules/default.yaml"])
    """Rule pack files, relative to the project root."""
    allow: list[str] = Field(default_factory=list)
    """Values the agent may echo: exact strings, or ``*@domain`` for a whole email domain."""
    deny: list[str] = Field(default_factory=list)
    """Extra phrases this agent must never say (case-insensitive, whole words)."""
    disable: list[str] = Field(default_factory=list)
    """Rule ids of the packs that do not apply to this agent (e.g. ``injection.input`` for a
    golden set of red-team prompts)."""
    canaries: list[str] = Field(default_factory=list)
    """Secret marker strings planted in this agent's prompts; ``leakage`` rules flag any of
    them in an output."""
    system_prompt: str | None = Field(default=None, min_length=1)
    """The agent's system prompt file, relative to the project root; ``leakage`` rules flag a
    long verbatim run of it in an output."""
    tools: list[str] | None = None
    """Tool names the agent may call (``tool_allowlist`` rules)."""
    max_tool_depth: int | None = Field(default=None, ge=0)
    """Deepest recursion or delegation level a tool call may have (``tool_limits`` rules);
    0 means the agent may not delegate."""
    max_tool_calls: int | None = Field(default=None, ge=1)
    """Most tool calls the agent may make for one case (``tool_limits`` rules)."""
    tool_schemas: dict[str, str] = Field(default_factory=dict)
    """Tool name → JSON Schema file of its arguments, relative to the project root
    (``tool_arguments`` rules)."""


class Price(_Model):
    """A user-supplied price for a model that litellm's bundled table lacks."""

    input_per_mtok: float = Field(ge=0)
    """USD per million prompt tokens."""
    output_per_mtok: float = Field(ge=0)
    """USD per million completion tokens."""


class CostConfig(_Model):
    """How a case's cost is priced when the target did not record one."""

    model: str | None = None
    """Model to price token usage with when an output does not name its model."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """Prices that override or extend litellm's bundled table."""


class Schedule(_Model):
    """When the nightly deployment runs this contract."""

    cron: str = "0 2 * * *"
    """Five-field cron expression."""
    timezone: str = "UTC"
    """IANA time zone of the cron expression."""

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str) -> str:
        if len(cron.split()) != 5 or not re.fullmatch(r"[\d*/,\-\sA-Za-z]+", cron):
            raise ValueError(f"'{cron}' is not a five-field cron expression like '0 2 * * *'")
        return cron


Stratum = Literal["route", "tool_path", "outcome"]
STRATA: tuple[Stratum, ...] = ("route", "tool_path", "outcome")
"""What a production sample can be stratified by."""


class Monitoring(_Model):
    """How a production gate checked every night raises an alarm: anytime-valid evidence.

    Each night's sample adds an e-value to an e-process over the monitoring period
    (``evals.metrics.monitor``); a gate fails only when the evidence of a breach reaches
    ``1 / alpha``, so the chance of any false escalation of an unchanged agent over ``horizon``
    nights is at most ``alpha`` — not ``alpha`` per night.
    """

    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """Chance of any false alarm over the whole period that is tolerated."""
    horizon: int = Field(default=365, ge=1, le=3650)
    """Nights the guarantee covers; a breach may start on any of them."""
    breach: float = Field(default=0.10, gt=0, lt=1)
    """Size of the breach to detect, in the metric's share: a rate gate ``max: 0.15`` is tested
    against a rate of 0.25, a mean gate ``min: 0.85`` against a mean of 0.75."""


class ProductionConfig(_Model):
    """Online evals: judge a sample of the agent's production traces like a golden run.

    Every run (``impactgate run --source production``, and the nightly after its golden run)
    takes the traces whose root span is this agent's and started in the last ``window``, keeps
    every trace that ended in an error or was escalated, and draws ``n`` of the others, seeded
    and stratified (``strata``) in proportion to the traffic. Each sampled trace becomes a case
    (input, retrieved passages, output, tool calls, latency, tokens, cost) judged by the same
    suites, judges and rule packs; the run is stored with ``source: production``. Error rate,
    cost and latency come from every trace of the window, not the sample.
    """

    n: int = Field(default=200, ge=1, le=100_000)
    """Traces judged per run (the proportional sample; errors and escalations come on top)."""
    window: str = Field(default="1d", pattern=r"^[1-9][0-9]*(h|d|w)$")
    """How far back a run looks: hours, days or weeks (``1d``, ``12h``, ``1w``)."""
    seed: int = 0
    """Seeds the sample; each window end draws its own sample from it."""
    strata: list[Stratum] = Field(default_factory=lambda: list(STRATA))
    """What the sample is stratified by: ``route`` (the ``route_attribute``, else the agents the
    trace delegated to), ``tool_path`` (the tools called), ``outcome`` (ok, escalated, error)."""
    route_attribute: str = Field(default="impactgate.route", min_length=1)
    """Span attribute naming the route a request took."""
    max_cost_usd: float | None = Field(default=None, ge=0)
    """Most USD the run's LLM-tier judging may cost (estimated from the text each judged trace
    sends the judge); fewer traces are judged when the estimate would pass it."""
    required_from: Level | None = None
    """The lowest level that needs production evidence as well as golden: a promotion to it (or
    above) needs a passing production run at that level's gates. ``None``: golden only."""
    monitoring: Monitoring = Field(default_factory=Monitoring)
    """Anytime-valid nightly verdicts on the sampled metrics."""
    coverage: bool = True
    """Measure ``golden_coverage`` in each production run: every input of the window and the
    golden inputs embedded with the bundled sentence-embedding model (a few seconds)."""
    coverage_threshold: float = Field(default=0.75, gt=0, lt=1)
    """Cosine similarity at which a golden input covers a production input
    (``golden_coverage``)."""

    def requires(self, level: Level) -> bool:
        """Whether holding ``level`` needs production evidence as well as golden."""
        return self.required_from is not None and level_rank(level) >= level_rank(
            self.required_from
        )

    @field_validator("strata")
    @classmethod
    def _unique_strata(cls, strata: list[str]) -> list[str]:
        if len(set(strata)) != len(strata):
            raise ValueError("a stratum is listed twice")
        return strata


class Evals(_Model):
    """How the agent is evaluated: dataset, target, suites, judges, schedule."""

    dataset: str = Field(min_length=1)
    """Golden dataset (JSONL, CSV or Parquet), relative to the project root: ``id`` and
    ``input`` per case, optionally ``contexts``, ``reference``, ``tags``, ``output``, ``usage``
    (or ``prompt_tokens``/``completion_tokens``), ``latency_s``, ``cost_usd``, ``model`` and
    ``metadata``."""
    target: TargetSpec
    """How outputs are produced for each case."""
    suites: list[Suite] = Field(min_length=1)
    """Suites to run, each at most once; ``rag`` (answer relevance and correctness, context
    precision and recall) needs a ``reference`` on every case."""
    grounding: GroundingConfig = Field(default_factory=GroundingConfig)
    """Grounding and hallucination judge settings."""
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    """Policy suite settings."""
    cost: CostConfig = Field(default_factory=CostConfig)
    """Cost suite settings."""
    schedule: Schedule = Field(default_factory=Schedule)
    """Nightly schedule."""
    production: ProductionConfig | None = None
    """Online evals on production traces (sampling, budget, monitoring); ``None``: golden
    runs only."""
    store_outputs: Literal["masked", "raw", "none"] = "masked"
    """What the results store keeps of outputs, explanations and evidence: ``masked`` (personal
    data and secrets found by the personal-data and secret rules of ``policy.rule_packs``
    replaced by masked forms, whatever suites run), ``raw`` (only when the data may be kept),
    or ``none`` (outputs left out; explanations and evidence masked)."""

    @field_validator("suites")
    @classmethod
    def _unique(cls, suites: list[Suite]) -> list[Suite]:
        duplicates = sorted({s for s in suites if suites.count(s) > 1})
        if duplicates:
            raise ValueError(f"suites listed twice: {', '.join(duplicates)}")
        return suites


class CIConfig(_Model):
    """How changes to this agent are gated in CI (``impactgate ci``)."""

    tolerance: dict[str, float] = Field(default_factory=dict)
    """Metric name → the largest worsening against the baseline that is not a regression, in the
    metric's unit (default 0: any worsening shown with confidence is a regression)."""
    compare: list[str] | None = None
    """Metrics compared with the baseline; default: the gated metrics of the agent's level."""
    min_samples: int | None = Field(default=None, ge=1)
    """Fewest paired cases a comparison needs; default: ``autonomy.min_samples``."""

    @field_validator("tolerance")
    @classmethod
    def _known_tolerances(cls, tolerance: dict[str, float]) -> dict[str, float]:
        for name, value in tolerance.items():
            if name not in METRICS:
                raise ValueError(f"unknown metric '{name}'{did_you_mean(name, METRICS)}")
            if value < 0:
                raise ValueError(f"tolerance of '{name}' must be >= 0, got {value}")
            high = metric_range(name)[1]
            if high is not None and value > high:
                raise ValueError(
                    f"tolerance of '{name}' must be at most {high:g} (it is a share), got {value:g}"
                )
        return tolerance

    @field_validator("compare")
    @classmethod
    def _known_compared(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            if name not in METRICS:
                raise ValueError(f"unknown metric '{name}'{did_you_mean(name, METRICS)}")
        return names


# --- the contract ------------------------------------------------------------------------


class Contract(_Model):
    """An Agent Impact Contract for one agent-owned workflow slice."""

    agent: str = Field(pattern=AGENT_PATTERN)
    """Agent name: lower-case letters, digits and dashes; the file is ``policies/<agent>.yaml``."""
    description: str = Field(min_length=1)
    """The workflow slice the agent owns, in a sentence."""
    owner: str = Field(min_length=1)
    """Who signs the contract."""
    outcome: Outcome
    """Business and customer outcomes the agent is accountable for."""
    adoption: Adoption
    """Adoption target."""
    workflow: Workflow
    """Workflow metrics and the error budget."""
    autonomy: Autonomy
    """Autonomy level, gates per level, escalation and rollback."""
    evals: Evals
    """Dataset, target, suites, judges and schedule."""
    ci: CIConfig = Field(default_factory=CIConfig)
    """Regression gating of changes against a baseline."""
    telemetry: Telemetry | None = None
    """Production telemetry the scorecard measures outcomes, adoption and the workflow from;
    without it those blocks are plans, and gates on their metrics cannot pass."""

    _source: Path | None = PrivateAttr(default=None)
    _root: Path | None = PrivateAttr(default=None)
    _places: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)
    """A path as written → where it is written (``file:line``) and its field, for messages."""
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)
    """Dotted field → its line in the file, for the fields checks beyond loading report on."""

    def where(self, field: str) -> str:
        """``file:line`` of a field of the loaded file (the file alone when the line is unknown)."""
        shown = display_path(self.source)
        line = self._lines.get(field)
        return f"{shown}:{line}" if line else shown

    @model_validator(mode="after")
    def _gates_have_suites(self) -> Contract:
        found = []
        for level, policy in self.autonomy.levels.items():
            for name in policy.gates:
                suite = METRICS[DRIFT_METRICS.get(name, name)].suite
                production = self.evals.production
                if name in PRODUCTION_METRICS and (
                    production is None or (name == "golden_coverage" and not production.coverage)
                ):
                    found.append(
                        (
                            ("autonomy", "levels", level, "gates", name),
                            f"the gate on '{name}' is measured by production runs; add "
                            "'evals.production'"
                            + (" (with coverage on)" if name == "golden_coverage" else "")
                            + " to the contract",
                        )
                    )
                if suite is not None and suite not in self.evals.suites:
                    found.append(
                        (
                            ("autonomy", "levels", level, "gates", name),
                            f"the gate on '{name}' needs the '{suite}' suite, which is not "
                            f"enabled; add '{suite}' to evals.suites",
                        )
                    )
                problem = self._telemetry_problem(name)
                if problem is not None:
                    found.append((("autonomy", "levels", level, "gates", name), problem))
        if found:
            raise FieldError(*found)
        return self

    def _telemetry_problem(self, name: str) -> str | None:
        """Why a gate on a telemetry metric could never be measured, or ``None``."""
        spec = METRICS[name]
        if spec.source != "telemetry":
            return None
        if self.telemetry is None:
            return (
                f"the gate on '{name}' is measured from production telemetry; add a "
                "'telemetry' block with its sources (docs/scorecard.md)"
            )
        outcome = self.outcome
        unmeasured = {
            "business_outcome_progress": [m.name for m in outcome.business if m.query is None],
            "customer_outcome_progress": [] if outcome.customer.query else [outcome.customer.name],
        }.get(name, [])
        if unmeasured:
            return (
                f"the gate on '{name}' needs a 'query' on every outcome it covers; "
                f"add one to: {', '.join(unmeasured)}"
            )
        return None

    def path_fields(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every path the contract writes, with its location: ``(loc, path as written)``.

        Datasets, recordings, prompt templates, rule packs, the system prompt, tool schemas,
        observations, and a local NLI model folder. All of them are relative to the project
        root and must stay inside it (``evals.contract._paths``).
        """
        evals = self.evals
        found: list[tuple[tuple[str | int, ...], str]] = [(("evals", "dataset"), evals.dataset)]
        for name in ("outputs", "prompt", "system"):
            value = getattr(evals.target, name, None)
            if isinstance(value, str):
                found.append((("evals", "target", name), value))
        found += [
            (("evals", "policy", "rule_packs", i), p) for i, p in enumerate(evals.policy.rule_packs)
        ]
        if evals.policy.system_prompt is not None:
            found.append((("evals", "policy", "system_prompt"), evals.policy.system_prompt))
        found += [
            (("evals", "policy", "tool_schemas", tool), p)
            for tool, p in evals.policy.tool_schemas.items()
        ]
        if self.workflow.observations is not None:
            found.append((("workflow", "observations"), self.workflow.observations))
        if self.telemetry is not None:
            found += [
                (("telemetry", "sources", i, "path"), source.path)
                for i, source in enumerate(self.telemetry.sources)
                if source.kind == "files" and not any(c in source.path for c in "*?[")
            ]
            found += [(("telemetry", "tables", n), p) for n, p in self.telemetry.tables.items()]
        calibration = evals.grounding.calibration
        if calibration is not None and calibration.labels is not None:
            found.append((("evals", "grounding", "calibration", "labels"), calibration.labels))
        if evals.grounding.labels is not None:
            found.append((("evals", "grounding", "labels"), evals.grounding.labels))
        model = evals.grounding.model
        if evals.grounding.judge == "nli" and model is not None and self._local_model(model):
            found.append((("evals", "grounding", "model"), model))
        return found

    def local_model(self) -> Path | None:
        """The NLI judge's model folder resolved against the project root, if it names one."""
        grounding = self.evals.grounding
        model = grounding.model
        if grounding.judge != "nli" or model is None or not self._local_model(model):
            return None
        return self.resolve(str(Path(model).expanduser()))

    def _local_model(self, model: str) -> bool:
        """Whether an NLI ``model`` names a folder rather than a model id on the hub."""
        return model.startswith(("/", ".", "~")) or (self.root / model).exists()

    @property
    def source(self) -> Path:
        """The YAML file this contract was loaded from."""
        if self._source is None:
            raise RuntimeError("contract was not loaded from a file")
        return self._source

    @property
    def root(self) -> Path:
        """The project root its relative paths are resolved against."""
        if self._root is None:
            raise RuntimeError("contract was not loaded from a file")
        return self._root

    def resolve(self, relative: str) -> Path:
        """Resolve a path written in the contract against the project root.

        Raises:
            UserError: the path leads outside the project (``..``, an absolute path or a
                symlink) and ``IMPACTGATE_ALLOW_PATHS_OUTSIDE`` does not allow its folder.
        """
        path = Path(relative)
        path = path if path.is_absolute() else self.root / path
        problem = outside_problem(relative, path, self.root)
        if problem is not None:
            where, field = self._places.get(relative, (display_path(self.source), "path"))
            raise UserError.single(where, field, problem)
        return path

    def gates(self, level: Level) -> dict[str, Threshold]:
        """Effective gates of ``level``, the error budget included as ``error_rate``."""
        budget = Threshold(max=self.workflow.error_budget)
        gates = self.autonomy.gates_for(level)
        explicit = gates.get("error_rate")
        if explicit is None or not explicit.is_stricter_or_equal(budget):
            gates["error_rate"] = budget
        return gates
