"""A results store with a history, written the way the nightly flow writes it, and the report's
reading of it: runs, decisions, open incidents, failing cases, candidate vs baseline.

``write_history`` runs the example agents' real contracts, datasets, recorded outputs and the
real policy, cost and latency scorers, aggregates and gates with the engine, applies the real
escalation and rollback actions on a real ledger and commits through ``ResultsStore``; only
the grounding judge is replaced by a word-overlap stand-in (the embedding model takes ~20 s
to load) whose evidence has the real judges' shape. The benchmark uses it too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evals.actions import breaches_from, escalate, recover, rollback
from evals.contract import Contract, load_contract
from evals.dataset import Case
from evals.errors import UserError
from evals.judges import content_words, split_sentences
from evals.report import compare_runs, failing_cases, load_agents
from evals.report._data import (
    DecisionView,
    MetricRow,
    RunView,
    SampleView,
    incidents,
    mask_spans,
    read_samples,
)
from evals.runs import RunInfo, RunResult, code_version, generate, new_run_id, prepare, summarize
from evals.scorers import Score
from evals.store import ResultsStore, ledger_for
from evals.store import _parquet as parquet_module
from evals.targets import Output, Target
from tests.helpers import CASES, CONTRACT, make_project, recordings, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


# --- the history builder ----------------------------------------------------------------------


def _claims(text: str, contexts: Sequence[str]) -> list[dict[str, object]]:
    known = {w for c in contexts for w in content_words(c)}
    claims = []
    for sentence in split_sentences(text):
        words = content_words(sentence)
        missing = [w for w in words if w not in known]
        share = 1 - len(missing) / len(words) if words else 1.0
        best = max(contexts, key=lambda c: len(set(content_words(c)) & set(words)), default="")
        supported = share >= 0.6
        claims.append(
            {
                "text": sentence,
                "supported": supported,
                "probability": round(share, 4),
                "evidence": best,
                "verdict": "supported" if supported else "unsupported",
                "reasons": [f"support {share:.2f} (threshold 0.6)"]
                + ([f"words not in the contexts: {', '.join(missing)}"] if missing else []),
                "features": {"word_share": share},
            }
        )
    return claims


def grounding_scores(cases: Sequence[Case], outputs: Sequence[Output]) -> dict[str, list[Score]]:
    """Faithfulness and hallucination by word overlap, with claim evidence like the judges'."""
    faithfulness, hallucination = [], []
    for case, output in zip(cases, outputs, strict=True):
        if output.text is None:
            faithfulness.append(Score.failed(output.error or "no output"))
            hallucination.append(Score.failed(output.error or "no output"))
            continue
        claims = _claims(output.text, output.contexts_for(case))
        bad = [c for c in claims if not c["supported"]]
        evidence = {"judge": "word-overlap (test)", "claims": claims, "skipped": []}
        share = 1 - len(bad) / len(claims) if claims else 1.0
        why = (
            f"{len(bad)} of {len(claims)} claims not supported: "
            + "; ".join(f'"{c["text"]}"' for c in bad)
            if bad
            else f"all {len(claims)} claims supported by the contexts"
        )
        faithfulness.append(Score(share, not bad, why, evidence))
        hallucination.append(Score(1.0 if bad else 0.0, not bad, why, evidence))
    return {"faithfulness": faithfulness, "hallucination": hallucination}


def rag_scores(cases: Sequence[Case], outputs: Sequence[Output]) -> dict[str, list[Score]]:
    """Stand-ins for the rag suite's measured (never pass/fail) scores."""
    scores: dict[str, list[Score]] = {}
    for name in ("answer_relevance", "answer_correctness", "context_precision", "context_recall"):
        scores[name] = [
            Score(0.6 + (hash((name, c.id)) % 30) / 100, None, f"{name} (test stand-in)")
            for c in cases
        ]
    return scores


@dataclass
class Plan:
    """One agent's scripted history: the version declared each night."""

    agent: str
    versions: list[str | None]
    """Declared version per night; ``None`` keeps the target's own version."""


@dataclass
class History:
    """What ``write_history`` wrote."""

    results: Path
    runs: dict[str, list[str]] = field(default_factory=dict)
    """Agent → run ids, oldest first."""
    ci_run: str | None = None
    baseline_run: str | None = None


def _scripted(nights: int) -> list[Plan]:
    deploy = max(1, nights // 2)
    return [
        Plan("billing-assistant", [None] * nights),
        # A prompt change (v2) shipped half-way makes answers "more helpful" and ungrounded.
        Plan("returns-concierge", ["v1"] * deploy + ["v2"] * (nights - deploy)),
        # v2 repeats customers' personal data: rolled back to v1 and demoted the night it ships.
        Plan("account-support", ["v1"] * deploy + ["v2"] * (nights - deploy)),
    ]


class Agent:
    """An agent made ready once: its contract, plan, and outputs and scores per version."""

    def __init__(self, contract: Path) -> None:
        self.contract: Contract = load_contract(contract)
        self.plan = prepare(self.contract)
        self.cases = list(self.plan.dataset.cases)
        self._outputs: dict[str, tuple[Target, list[Output], dict[str, list[Score]]]] = {}

    def at(self, version: str) -> tuple[Target, list[Output], dict[str, list[Score]]]:
        if version not in self._outputs:
            target = self.plan.target
            if version != target.version().label:
                target = target.at_version(version)
            outputs = generate(target, self.cases)
            scores = grounding_scores(self.cases, outputs)
            for name in ("policy_violation", "cost"):
                scores[name] = self.plan.scorers[name](self.cases, outputs)
            if "rag" in self.contract.evals.suites:
                scores |= rag_scores(self.cases, outputs)
            self._outputs[version] = (target, outputs, scores)
        return self._outputs[version]


def _jitter(outputs: list[Output], rng: random.Random) -> list[Output]:
    return [
        replace(o, latency_s=round(o.latency_s * rng.uniform(0.8, 1.25), 4))
        if o.latency_s is not None
        else o
        for o in outputs
    ]


def run_night(
    agent: Agent,
    results: Path,
    started: datetime,
    declared: str | None,
    rng: random.Random,
    trigger: str = "nightly",
    version: str | None = None,
    act: bool = True,
) -> RunResult:
    """One evaluate-agent flow run, as flows/evaluate.py does it, without Prefect."""
    contract = agent.contract
    ledger = ledger_for(results)
    declared = declared or agent.plan.target.version().label
    entry, _ = ledger.sync(
        contract.agent, declared, contract.autonomy.level, contract.autonomy.rollback.known_good,
        f"policies/{contract.agent}.yaml",
    )  # fmt: skip
    target, outputs, scores = agent.at(version or entry.active_version)
    outputs = _jitter(outputs, rng)
    scores = dict(scores) | {"latency": agent.plan.scorers["latency"](agent.cases, outputs)}
    info = RunInfo(
        run_id=new_run_id(started),
        agent=contract.agent,
        version=target.version(),
        dataset=contract.evals.dataset,
        dataset_hash=agent.plan.dataset.content_hash,
        trigger=trigger,  # type: ignore[arg-type]
        level=entry.level,
        started_at=started,
        finished_at=started + timedelta(seconds=40),
        code_version=code_version(),
    )
    ordered = {name: scores[name] for name in agent.plan.scorers}
    result = summarize(contract, info, agent.cases, outputs, ordered)
    store = ResultsStore(results)
    store.write_run(result)
    if not act:
        return result
    breaches = breaches_from(result.gates, contract.autonomy.escalation.on_inconclusive)
    actor = f"evaluate-agent flow ({trigger} run)"
    if breaches:
        if any(b.rollback for b in breaches):
            decision = rollback(contract, ledger, breaches, run_id=info.run_id, actor=actor)
        else:
            decision = escalate(
                contract, ledger, breaches, run_id=info.run_id, version=info.version.label,
                level=info.level, actor=actor,
            )  # fmt: skip
        store.write_decisions([replace(decision, at=info.finished_at + timedelta(seconds=1))])
    elif str(result.verdict) == "pass":
        ledger.record_pass(contract.agent, info.version.label, info.run_id)
        recovered = recover(
            contract,
            ledger,
            run_id=info.run_id,
            version=info.version.label,
            level=info.level,
            actor=actor,
        )
        if recovered is not None:
            store.write_decisions([replace(recovered, at=info.finished_at + timedelta(seconds=1))])
    return result


def add_baseline_column(results: Path, run_id: str, baseline: str) -> None:
    """Set ``baseline_run_id`` on a committed run's rows, as the CI-gating change will."""
    for path in (results / "runs").rglob(f"{run_id}.parquet"):
        table = pq.read_table(path)
        column = pa.array([baseline] * table.num_rows, pa.string())
        if "baseline_run_id" in table.column_names:  # the store already writes the column
            table = table.drop_columns(["baseline_run_id"])
        pq.write_table(table.append_column("baseline_run_id", column), path)


def write_history(
    results: Path,
    nights: int = 4,
    *,
    ci: bool = False,
    start: datetime = START,
    seed: int = 7,
) -> History:
    """Nightly runs of the three example agents; with ``ci``, a CI candidate vs baseline run.

    The CI run evaluates returns-concierge v2 (candidate) against its v1 run (baseline); its
    rows carry ``baseline_run_id``, which the store reads only where its schema has the column
    (see ``baseline_column``).
    """
    rng = random.Random(seed)
    agents = {p.agent: Agent(ROOT / "policies" / f"{p.agent}.yaml") for p in _scripted(nights)}
    history = History(results)
    for night in range(nights):
        for i, plan in enumerate(_scripted(nights)):
            started = start + timedelta(days=night, minutes=3 * i)
            result = run_night(agents[plan.agent], results, started, plan.versions[night], rng)
            history.runs.setdefault(plan.agent, []).append(result.info.run_id)
    if ci:
        concierge = agents["returns-concierge"]
        when = start + timedelta(days=nights, hours=3)
        baseline = run_night(concierge, results, when, None, rng, "ci", "v1", act=False)
        candidate = run_night(
            concierge, results, when + timedelta(minutes=5), None, rng, "ci", "v2", act=False
        )
        add_baseline_column(results, candidate.info.run_id, baseline.info.run_id)
        history.ci_run, history.baseline_run = candidate.info.run_id, baseline.info.run_id
    return history


@contextmanager
def baseline_column(present: bool = True) -> Iterator[None]:
    """The store's ``runs`` schema with (or without) the nullable ``baseline_run_id``.

    The CI-gating work adds the column; the report must work with and without it, and a store
    whose schema lacks it drops it on read.
    """
    schema = parquet_module._SCHEMAS["runs"]
    has = "baseline_run_id" in schema.names
    with pytest.MonkeyPatch.context() as patch:
        if present and not has:
            field = pa.field("baseline_run_id", pa.string())
            patch.setitem(parquet_module._SCHEMAS, "runs", schema.append(field))
        elif has and not present:
            index = schema.get_field_index("baseline_run_id")
            patch.setitem(parquet_module._SCHEMAS, "runs", schema.remove(index))
        yield


HOSTILE = '<script>window.__pwned = "output"</script><img src=x onerror="window.__pwned = 1">'
"""Text an agent might produce; on a page it must be text, never markup."""


def hostile_project(tmp: Path, nights: int = 2) -> tuple[Path, Path]:
    """A tiny agent whose outputs, inputs, contexts, tags, ids and contract carry markup.

    Returns:
        The policies folder and the results root, with ``nights`` nightly runs written.
    """
    data = json.loads(json.dumps(CONTRACT))
    data["description"] = 'A tiny agent <b onmouseover="window.__pwned = 2">for</b> tests.'
    data["outcome"]["business"][0]["name"] = "Cost </td><script>window.__pwned = 3</script>"
    contract = make_project(tmp, data)
    cases = []
    for i, case in enumerate(CASES, start=1):
        cases.append(
            case
            | {
                "id": case["id"] if i != 2 else 'c2"><svg onload="window.__pwned = 4">',
                "input": case["input"] + " <script>window.__pwned = 5</script>",
                "contexts": [*case["contexts"], "</pre><script>window.__pwned = 6</script>"],
                "tags": ["refunds", '"><img src=x onerror="window.__pwned = 7">'],
            }
        )
    write_jsonl(tmp / "datasets" / "tiny-agent" / "cases.jsonl", cases)
    outputs = []
    for version in ("v1", "v2"):
        for row in recordings(version, leak_every=2 if version == "v2" else 0):
            case_id = cases[int(row["case_id"][1:]) - 1]["id"]
            outputs.append(row | {"case_id": case_id, "output": f"{row['output']} {HOSTILE}"})
    write_jsonl(tmp / "datasets" / "tiny-agent" / "outputs.jsonl", outputs)
    agent = Agent(contract)
    results = tmp / "results"
    rng = random.Random(1)
    for night in range(nights):
        run_night(agent, results, START + timedelta(days=night), None, rng)
    return contract.parent, results


# --- the report's reading of it -----------------------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return write_history(tmp_path_factory.mktemp("history") / "results", nights=4)


def test_the_history_is_the_demo_story(history: History) -> None:
    agents, notes = load_agents(history.results, ROOT / "policies")
    by_name = {a.agent: a for a in agents}
    assert notes == []
    assert by_name["billing-assistant"].latest.verdict == "pass"  # type: ignore[union-attr]
    account = by_name["account-support"]
    assert (account.level, account.active_version) == ("approval", "v1")
    kinds = [d.kind for d in account.decisions]
    assert kinds == ["rollback"], (
        "v1 passes at approval, but the rollback's incident waits for constrained"
    )
    concierge = by_name["returns-concierge"]
    assert [d.kind for d in concierge.decisions] == ["escalate", "escalate"]
    assert concierge.latest.version == "v2"  # type: ignore[union-attr]


def test_open_incidents_wait_for_a_passing_run_at_the_level_held_before(history: History) -> None:
    agents, _ = load_agents(history.results, ROOT / "policies")
    by_name = {a.agent: a for a in agents}
    # Two nightly escalations for the same breach are one incident, open: nothing passed since.
    (escalation,) = by_name["returns-concierge"].open_incidents
    assert escalation.kind == "escalate"
    assert len(escalation.decisions) == 2
    # v1 passes at approval after the rollback, but the agent has not earned constrained back.
    account = by_name["account-support"]
    assert account.latest.verdict == "pass"  # type: ignore[union-attr]
    (rolled_back,) = account.open_incidents
    assert rolled_back.kind == "rollback"
    assert rolled_back.first.level_before == "constrained"
    assert by_name["billing-assistant"].open_incidents == []


def _run(run_id: str, at: datetime, verdict: str, level: str, trigger: str = "nightly") -> RunView:
    return RunView(
        run_id, "a", "v1", None, None, None, trigger, level, at, None, None, 10, verdict,
        at.strftime("%Y-%m-%d"), None, {},
    )  # fmt: skip


def _decision(kind: str, at: datetime, before: str, after: str) -> DecisionView:
    return DecisionView(
        "d", "r0", kind, at, before, after, "v2", "v1", ("m",), "why", "flow", None, ()
    )


@pytest.mark.parametrize(
    ("kind", "later", "closed"),
    [
        ("escalate", [("pass", "constrained")], True),
        ("escalate", [("fail", "constrained"), ("inconclusive", "constrained")], False),
        ("rollback", [("pass", "approval")], False),
        ("rollback", [("pass", "approval"), ("pass", "constrained")], True),
        ("rollback_refused", [("pass", "constrained")], True),
    ],
)
def test_recovery_rule(kind: str, later: list[tuple[str, str]], closed: bool) -> None:
    t0 = START
    after = "approval" if kind == "rollback" else "constrained"
    decisions = [_decision(kind, t0 + timedelta(minutes=1), "constrained", after)]
    runs = [_run("r0", t0, "fail", "constrained")] + [
        _run(f"r{i}", t0 + timedelta(days=i), verdict, level)
        for i, (verdict, level) in enumerate(later, start=1)
    ]
    (incident,) = incidents(decisions, runs)
    assert incident.open is not closed


def test_a_passing_ci_run_does_not_close_an_incident() -> None:
    decisions = [_decision("escalate", START, "constrained", "constrained")]
    runs = [_run("c1", START + timedelta(hours=1), "pass", "constrained", trigger="ci")]
    assert incidents(decisions, runs)[0].open


def test_unknown_agent_and_missing_results_are_user_errors(
    history: History, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="did you mean 'account-support'"):
        load_agents(history.results, ROOT / "policies", ["acount-support"])
    with pytest.raises(UserError, match="no results folder"):
        load_agents(tmp_path / "nothing", ROOT / "policies")


def test_reading_never_creates_a_ledger(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    agents, notes = load_agents(tmp_path / "results", ROOT / "policies")
    assert [a.latest for a in agents] == [None, None, None]
    assert any("no ledger" in n for n in notes)
    assert not (tmp_path / "results" / "ledger.sqlite").exists()


def test_read_samples_reads_only_the_runs_asked_for(history: History) -> None:
    agents, _ = load_agents(history.results, ROOT / "policies")
    account = next(a for a in agents if a.agent == "account-support")
    rolled_back = next(r for r in account.runs if r.version == "v2")
    samples = read_samples(ResultsStore(history.results), [rolled_back])
    assert list(samples) == [rolled_back.run_id]
    rows = samples[rolled_back.run_id]
    assert len({s.case_id for s in rows}) == rolled_back.n_cases == 50
    assert len(rows) == 50 * 5  # five scorers, nothing from the other runs of that day


def test_failing_cases_of_the_rolled_back_run_carry_masked_violations(history: History) -> None:
    agents, _ = load_agents(history.results, ROOT / "policies")
    account = next(a for a in agents if a.agent == "account-support")
    run = next(r for r in account.runs if r.version == "v2")
    samples = read_samples(ResultsStore(history.results), [run])[run.run_id]
    failures = failing_cases(run, samples)
    leaking = [f for f in failures if "policy_violation" in f.metrics]
    assert leaking, "v2 repeats customers' personal data; the policy scorer must catch it"
    for failure in leaking:
        pairs = mask_spans(failure.samples)
        assert pairs
        assert all("*" in masked for _, masked in pairs)
        assert all(raw in (failure.output or "") for raw, _ in pairs)


def _row(metric: str, verdict: str, threshold: float) -> MetricRow:
    return MetricRow(
        metric, 2.0, 1.8, 2.2, 10, 0, "order-statistic", 0.95, None, True, "max", threshold,
        verdict, "why", False,
    )  # fmt: skip


def _sample(
    case: str, metric: str, value: float | None, passed: bool | None, **kw: object
) -> SampleView:
    fields: dict[str, object] = {
        "explanation": f"{metric} {value}", "evidence": None, "output": f"answer {case}",
        "latency_s": None, "cost_usd": None, "error": None, "tags": ("t",),
    } | kw  # fmt: skip
    return SampleView(case, metric, value, passed, **fields)  # type: ignore[arg-type]


def test_measured_scorers_fail_a_case_only_beyond_a_gate_that_did_not_pass() -> None:
    samples = [
        _sample("fast", "latency", 1.0, None),
        _sample("slow", "latency", 3.0, None),
        _sample("slow", "faithfulness", 1.0, True),
        _sample("wrong", "faithfulness", 0.5, False),
        _sample("broken", "faithfulness", None, None, error="judge timed out"),
    ]
    failing = _run("r", START, "fail", "constrained")
    failing.metrics["latency_p50_s"] = _row("latency_p50_s", "fail", 2.5)
    assert [f.case_id for f in failing_cases(failing, samples)] == ["broken", "slow", "wrong"]
    passing = replace(failing, metrics={"latency_p50_s": _row("latency_p50_s", "pass", 2.5)})
    assert [f.case_id for f in failing_cases(passing, samples)] == ["broken", "wrong"]


def test_compare_runs_pairs_by_case_and_lists_what_got_worse() -> None:
    baseline = [
        _sample("a", "hallucination", 0.0, True),
        _sample("b", "hallucination", 0.0, True),
        _sample("c", "hallucination", 1.0, False),
        _sample("a", "latency", 1.0, None),
        _sample("b", "latency", 1.0, None),
        _sample("gone", "latency", 1.0, None),
    ]
    candidate = [
        _sample("a", "hallucination", 1.0, False),
        _sample("b", "hallucination", 0.0, True),
        _sample("c", "hallucination", 0.0, True),
        _sample("a", "latency", 1.5, None),
        _sample("b", "latency", 0.5, None),
    ]
    by_metric = {c.metric: c for c in compare_runs(baseline, candidate)}
    hallucination = by_metric["hallucination"]
    assert [(w.case_id, w.newly_failing) for w in hallucination.worse] == [("a", True)]
    assert hallucination.n_better == 1
    latency = by_metric["latency"]
    assert [w.case_id for w in latency.worse] == ["a"]
    assert latency.n_better == 1
    assert latency.only_baseline == 1
    assert latency.n_paired == 2
    assert latency.mean_delta == pytest.approx(0.0)
