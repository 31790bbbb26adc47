"""Production traces of one agent: a summary row per trace, and a trace turned into a case.

A trace belongs to the agent of its root span (its earliest span without a parent; when the
parent of every span is elsewhere — an upstream service not sent here — its earliest span).
:func:`trace_summaries` reads, with one DuckDB query over the ``spans`` and ``work_items``
views, every such trace of a window: when it started, how long it took, its tokens and cost,
whether it ended in an error or was escalated, its route and tool path.
:func:`build_cases` reads the spans of the sampled traces and assembles each into a
:class:`~evals.dataset.Case` and the :class:`~evals.store.Output` the agent gave:

- the input: the root span's input text, else the first model call's (the last user message);
- the output: the root span's output text, else the last model call's;
- the passages: every retrieval span's documents (``gen_ai.retrieval.documents``,
  OpenInference ``retrieval.documents``), in order, each once;
- the tool calls: every ``execute_tool`` span, with its arguments, the agent that made it, its
  span id, and its depth (the ``invoke_agent`` spans above it, less the root agent's own);
- latency: the root span's duration; tokens and cost: the model calls' usage, priced per model.

A trace that cannot be judged at all (no input, or no output without an error) is skipped
with its reason; a trace without passages is kept but not judged for grounding.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from evals.contract import Price
from evals.dataset import Case, Usage
from evals.scorers import price_for
from evals.store import Output, ResultsStore

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "LLM_OPERATIONS",
    "QUERY_MEMORY",
    "TraceCase",
    "TraceSummary",
    "build_cases",
    "span_tree",
    "trace_cases",
    "trace_summaries",
]

LLM_OPERATIONS = ("chat", "text_completion", "generate_content")
"""Operations whose spans carry a model call's token usage."""

QUERY_MEMORY = "256MB"
"""DuckDB's memory for the window's queries; larger windows spill to disk instead of growing."""

_SLACK = "INTERVAL 1 HOUR"
"""How long after the window's end a trace's later spans are still read."""


@dataclass(frozen=True)
class TraceSummary:
    """One production trace, as the sampler and the window's statistics see it."""

    trace_id: str
    root_span_id: str
    start: datetime
    latency_s: float
    error: str | None
    """Why the trace ended in an error (its root span's status), else ``None``."""
    escalated: bool
    route: str
    tool_path: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    """``None`` when a model call's tokens have no price (or no model)."""
    work_item_id: str | None = None

    @property
    def outcome(self) -> str:
        """``error``, ``escalated`` or ``ok``."""
        return "error" if self.error is not None else "escalated" if self.escalated else "ok"

    def stratum(self, strata: Sequence[str]) -> tuple[str, ...]:
        """The trace's stratum under the contract's ``strata``."""
        return tuple(self.outcome if s == "outcome" else getattr(self, s) for s in strata)


def _json_key(name: str) -> str:
    return "'$.\"" + name.replace("'", "''").replace('"', '\\"') + "\"'"


@contextlib.contextmanager
def _connection(
    store: ResultsStore, db: duckdb.DuckDBPyConnection | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``db`` if given (left open), else a new connection to ``store``, closed after."""
    if db is not None:
        yield db
        return
    with store.connect() as own:
        yield own


def trace_summaries(
    store: ResultsStore,
    agent: str,
    since: datetime,
    until: datetime,
    *,
    route_attribute: str = "impactgate.route",
    prices: Mapping[str, Price] | None = None,
    default_model: str | None = None,
    db: duckdb.DuckDBPyConnection | None = None,
) -> tuple[list[TraceSummary], list[str]]:
    """Every trace of ``agent`` whose root span started in ``[since, until)``.

    ``db``, a connection from ``store.connect()``, is used instead of opening one (its views
    read every Parquet file's schema when they are made).

    Returns:
        The traces by start time, and notes for a reader (models without a price).
    """
    route = _json_key(route_attribute)  # JSON is parsed only where the name occurs
    llm = ", ".join(f"'{op}'" for op in LLM_OPERATIONS)
    sql = f"""
    WITH w AS (
        SELECT trace_id, span_id, parent_span_id, agent, start, "end", duration_s, status,
               status_message, error_type, operation, model, input_tokens, output_tokens,
               tool_name, work_item_id, attributes
        FROM spans
        WHERE date BETWEEN strftime($since, '%Y-%m-%d')
                       AND strftime($until + {_SLACK}, '%Y-%m-%d')
          AND start >= $since AND start < $until + {_SLACK}
    ),
    root_rows AS (
        SELECT trace_id, coalesce(
            arg_min({{'span_id': span_id, 'agent': agent, 'start': start,
                     'duration_s': duration_s, 'status': status,
                     'status_message': status_message, 'error_type': error_type,
                     'work_item_id': work_item_id}}, (start, span_id))
                FILTER (WHERE parent_span_id IS NULL),
            arg_min({{'span_id': span_id, 'agent': agent, 'start': start,
                     'duration_s': duration_s, 'status': status,
                     'status_message': status_message, 'error_type': error_type,
                     'work_item_id': work_item_id}}, (start, span_id))
        ) AS r
        FROM w GROUP BY trace_id
    ),
    mine AS (
        SELECT trace_id, r.span_id, r.agent, r.start, r.duration_s, r.status,
               r.status_message, r.error_type, r.work_item_id
        FROM root_rows
        WHERE r.agent = $agent AND r.start >= $since AND r.start < $until
    ),
    per_trace AS (
        SELECT w.trace_id,
               max(CASE WHEN contains(w.attributes, $route_name)
                        THEN json_extract_string(w.attributes, {route}) END) AS route,
               string_agg(DISTINCT w.agent, '+' ORDER BY w.agent)
                   FILTER (WHERE w.agent <> $agent) AS delegated,
               string_agg(DISTINCT w.tool_name, '+' ORDER BY w.tool_name)
                   FILTER (WHERE w.tool_name IS NOT NULL) AS tool_path,
               bool_or(CASE WHEN contains(w.attributes, 'impactgate.escalated')
                   THEN coalesce(try_cast(json_extract_string(w.attributes,
                       '$."impactgate.escalated"') AS BOOLEAN), false)
                   ELSE false END) AS escalated_attr,
               max(w.work_item_id) AS any_work_item
        FROM w JOIN mine USING (trace_id)
        GROUP BY w.trace_id
    ),
    usage AS (
        SELECT w.trace_id, w.model, sum(w.input_tokens) AS tin, sum(w.output_tokens) AS tout
        FROM w JOIN mine USING (trace_id)
        WHERE w.operation IN ({llm}) OR (w.operation IS NULL AND w.input_tokens IS NOT NULL)
        GROUP BY w.trace_id, w.model
    )
    SELECT m.trace_id, m.span_id, m.start, m.duration_s, m.status, m.status_message,
           m.error_type, coalesce(m.work_item_id, p.any_work_item) AS work_item_id,
           p.route, p.delegated, p.tool_path,
           p.escalated_attr OR coalesce(wi.escalated, false) AS escalated,
           u.models, u.tins, u.touts
    FROM mine m
    JOIN per_trace p USING (trace_id)
    LEFT JOIN (
        SELECT trace_id, list(model) AS models, list(coalesce(tin, 0)) AS tins,
               list(coalesce(tout, 0)) AS touts
        FROM usage GROUP BY trace_id
    ) u USING (trace_id)
    LEFT JOIN work_items wi ON wi.work_item_id = coalesce(m.work_item_id, p.any_work_item)
    ORDER BY m.start, m.trace_id
    """
    with _connection(store, db) as con:
        con.execute(f"SET memory_limit = '{QUERY_MEMORY}'")  # spills beyond it: flat in the window
        rows = con.execute(
            sql,
            {"since": since, "until": until, "agent": agent, "route_name": route_attribute},
        ).fetchall()
    overrides = dict(prices or {})
    priced: dict[str | None, tuple[float, float] | None] = {}
    unpriced: Counter[str] = Counter()
    out = []
    for (
        trace_id, span_id, start, duration, status, message, error_type, work_item,
        route_value, delegated, tool_path, escalated, models, tins, touts,
    ) in rows:  # fmt: skip
        cost: float | None = 0.0
        total_in = total_out = 0
        for model, tokens_in, tokens_out in zip(models or (), tins or (), touts or (), strict=True):
            total_in += tokens_in
            total_out += tokens_out
            name = model or default_model
            if name not in priced:
                found = price_for(name, overrides) if name else None
                priced[name] = (found[0], found[1]) if found else None
            price = priced[name]
            if price is None:
                unpriced[name or "(no model)"] += 1
                cost = None
            elif cost is not None:
                cost += tokens_in * price[0] + tokens_out * price[1]
        error = None
        if status == "error":
            error = error_type or message or "the trace's root span ended in an error"
        out.append(
            TraceSummary(
                trace_id=trace_id,
                root_span_id=span_id,
                start=start,
                latency_s=float(duration),
                error=error,
                escalated=bool(escalated),
                route=route_value or (f"via {delegated}" if delegated else "direct"),
                tool_path=tool_path or "no tools",
                input_tokens=int(total_in),
                output_tokens=int(total_out),
                cost_usd=cost,
                work_item_id=work_item,
            )
        )
    notes = [
        f"{count} trace(s) used '{model}', which has no price: their cost is unknown (add "
        f"evals.cost.prices.{model} to the contract)"
        for model, count in unpriced.most_common()
    ]
    return out, notes


@dataclass(frozen=True)
class TraceCase:
    """A sampled trace as a case and the output the agent gave, or why it was skipped."""

    summary: TraceSummary
    case: Case | None
    output: Output | None
    skipped: str | None = None
    """Why the trace cannot be judged at all (no input; no output and no error)."""
    no_passages: bool = False
    """No retrieval span returned passages: not judged for grounding."""
    spans: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """The trace's spans (masked as stored), for drill-down."""


_SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, agent, start, duration_s, status, "
    "status_message, operation, model, input_tokens, output_tokens, tool_name, "
    "tool_arguments, input_text, output_text, documents"
)


def build_cases(
    store: ResultsStore,
    summaries: Sequence[TraceSummary],
    *,
    tags: Mapping[str, Sequence[str]] | None = None,
    keep_spans: bool = False,
    db: duckdb.DuckDBPyConnection | None = None,
) -> list[TraceCase]:
    """Each summarised trace as a case and its recorded output, in the order given.

    Args:
        store: the results store holding the spans.
        summaries: the traces to build (from :func:`trace_summaries`).
        tags: extra tags per trace id (the sample's stratum, ``forced``).
        keep_spans: keep each trace's spans on the result (drill-down).
        db: a connection from ``store.connect()`` to use instead of opening one.
    """
    if not summaries:
        return []
    since = min(s.start for s in summaries)
    until = max(s.start for s in summaries)
    ids = [s.trace_id for s in summaries]
    with _connection(store, db) as con:
        con.register("_wanted", _id_table(ids))
        try:
            rows = con.execute(
                f"SELECT {_SPAN_COLUMNS} FROM spans JOIN _wanted USING (trace_id) "
                f"WHERE date BETWEEN strftime($since, '%Y-%m-%d') "
                f"AND strftime($until + INTERVAL 1 DAY, '%Y-%m-%d') "
                f"AND start >= $since ORDER BY trace_id, start, span_id",
                {"since": since, "until": until},
            ).fetchall()
        finally:
            con.unregister("_wanted")
    names = [c.strip() for c in _SPAN_COLUMNS.split(",")]
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_trace.setdefault(row[0], []).append(dict(zip(names, row, strict=True)))
    extra = tags or {}
    return [
        _assemble(s, by_trace.get(s.trace_id, []), list(extra.get(s.trace_id, ())), keep_spans)
        for s in summaries
    ]


def _id_table(ids: Sequence[str]) -> Any:
    import pyarrow as pa

    return pa.table({"trace_id": pa.array(list(ids), pa.string())})


def _assemble(
    summary: TraceSummary, spans: list[dict[str, Any]], tags: list[str], keep_spans: bool
) -> TraceCase:
    kept = spans if keep_spans else []
    by_id = {s["span_id"]: s for s in spans}
    root = by_id.get(summary.root_span_id)
    if root is None:
        return TraceCase(summary, None, None, "its root span is no longer stored", spans=kept)
    llm = [s for s in spans if s["operation"] in LLM_OPERATIONS]
    question = root["input_text"] or next((s["input_text"] for s in llm if s["input_text"]), None)
    if not question:
        question = next(
            (s["input_text"] for s in spans if s["operation"] == "retrieval" and s["input_text"]),
            None,
        )
    answer = root["output_text"] or next(
        (s["output_text"] for s in reversed(llm) if s["output_text"]), None
    )
    if not question or not question.strip():
        return TraceCase(summary, None, None, "no input text in the trace", spans=kept)
    if summary.error is None and (not answer or not answer.strip()):
        return TraceCase(summary, None, None, "no output text in the trace", spans=kept)
    passages: list[str] = []
    seen: set[str] = set()
    for span in spans:
        if span["operation"] == "retrieval":
            for document in span["documents"] or ():
                if document and document not in seen:
                    seen.add(document)
                    passages.append(document)
    calls = _tool_calls(spans, by_id, summary.root_span_id)
    counts = Counter(s["model"] for s in llm if s["model"])
    model = counts.most_common(1)[0][0] if counts else None
    usage = (
        Usage(prompt_tokens=summary.input_tokens, completion_tokens=summary.output_tokens)
        if llm
        else None
    )
    case = Case(
        id=summary.trace_id,
        input=question,
        contexts=passages,
        tags=[
            f"route:{summary.route}",
            f"tools:{summary.tool_path}",
            f"outcome:{summary.outcome}",
            *tags,
        ],
        metadata={
            "trace_id": summary.trace_id,
            "root_span_id": summary.root_span_id,
            "started_at": summary.start.isoformat(),
            "work_item_id": summary.work_item_id,
        },
    )
    output = Output(
        case_id=summary.trace_id,
        text=answer if summary.error is None else None,
        contexts=tuple(passages),
        latency_s=summary.latency_s,
        usage=usage,
        cost_usd=summary.cost_usd,
        model=model,
        error=f"the trace ended in an error: {summary.error}" if summary.error else None,
        tool_calls=tuple(calls) if calls else None,
    )
    return TraceCase(summary, case, output, None, not passages, kept)


def _tool_calls(
    spans: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], root_id: str
) -> list[dict[str, Any]]:
    """Every tool call of the trace, with its depth and the agent and span that made it."""
    calls = []
    for span in spans:
        if span["operation"] != "execute_tool" and not (
            span["operation"] is None and span["tool_name"]
        ):
            continue
        delegations = 0
        parent = span["parent_span_id"]
        hops = 0
        while parent is not None and hops < 10_000:
            above = by_id.get(parent)
            if above is None:
                break
            if above["operation"] == "invoke_agent":
                delegations += 1
            parent = above["parent_span_id"]
            hops += 1
        root = by_id[root_id]
        own = 1 if root["operation"] == "invoke_agent" else 0
        arguments: Any = span["tool_arguments"]
        if isinstance(arguments, str):
            # kept as text when it is not JSON: the tool_arguments rule reports it
            with contextlib.suppress(orjson.JSONDecodeError):
                arguments = orjson.loads(arguments)
        calls.append(
            {
                "name": span["tool_name"] or span["name"],
                "arguments": arguments,
                "depth": max(delegations - own, 0),
                "agent": span["agent"],
                "span_id": span["span_id"],
                "started_at": span["start"].isoformat(),
            }
        )
    return calls


def span_tree(spans: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A trace's spans in tree order, each with its depth.

    Parents come before their children, siblings by start: what a person reads to see who did
    what, when, with what input.
    """
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (s["start"], s["span_id"]))
    rows: list[dict[str, Any]] = []
    stack = [(span, 0) for span in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        rows.append(
            {
                "depth": depth,
                "span_id": span["span_id"],
                "name": span["name"],
                "agent": span["agent"],
                "operation": span["operation"],
                "duration_s": span["duration_s"],
                "status": span["status"],
                "status_message": span["status_message"],
                "tool_arguments": span["tool_arguments"],
                "input": span["input_text"],
                "output": span["output_text"],
            }
        )
        stack.extend((child, depth + 1) for child in reversed(children.get(span["span_id"], [])))
    return rows


def trace_cases(store: ResultsStore, trace_ids: Sequence[str]) -> dict[str, Case]:
    """The stored traces as cases, each with its span tree in ``metadata["trace"]``.

    Input and passages as stored (masked): the drill-down from a production failure to its
    trace.
    """
    if not trace_ids:
        return {}
    with store.connect() as db:
        db.register("_wanted", _id_table(list(dict.fromkeys(trace_ids))))
        rows = db.execute(
            f"SELECT {_SPAN_COLUMNS} FROM spans JOIN _wanted USING (trace_id) "
            "ORDER BY trace_id, start, span_id"
        ).fetchall()
    names = [c.strip() for c in _SPAN_COLUMNS.split(",")]
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_trace.setdefault(row[0], []).append(dict(zip(names, row, strict=True)))
    out = {}
    for trace_id, spans in by_trace.items():
        ids = {s["span_id"] for s in spans}
        root = next(s for s in spans if s["parent_span_id"] not in ids)
        llm = [s for s in spans if s["operation"] in LLM_OPERATIONS]
        question = root["input_text"] or next(
            (s["input_text"] for s in llm if s["input_text"]), None
        )
        passages = list(
            dict.fromkeys(
                d for s in spans if s["operation"] == "retrieval" for d in s["documents"] or () if d
            )
        )
        out[trace_id] = Case(
            id=trace_id,
            input=question if question and question.strip() else "(no input in the trace)",
            contexts=passages,
            metadata={"trace_id": trace_id, "trace": span_tree(spans)},
        )
    return out
