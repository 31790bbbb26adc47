"""A results store with a history, written the way the nightly flow writes it, and the report's
reading of it: runs, decisions, the ledger's incidents, failing cases, candidate vs baseline.

``write_history`` runs the example agents' real contracts, datasets, recorded outputs and the
real policy, cost and latency scorers through ``evals.runs.RunSession``, the session the
evaluate flow wraps (ledger sync, version choice, gates, the store, the action and the
ledger's incidents), at simulated times. Only the grounding judge is replaced by a word-overlap
stand-in (the embedding model takes ~20 s to load) whose evidence has the real judges' shape,
and each version's outputs are scored once and replayed night after night with jittered
latencies. The benchmark uses it too.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from evals.actions import Action, choose_action, perform
from evals.contract import Contract, Level, load_contract
from evals.dataset import Case
from evals.errors import UserError
from evals.gates import evaluate_gates
from evals.judges import content_words, split_sentences
from evals.metrics import METRICS, MetricValue
from evals.report import compare_runs, failing_cases, load_agents
from evals.report._data import mask_spans
from evals.report._views import KIND_WORDS, Links, agent_page
from evals.runs import RunResult, RunSession, Trigger
from evals.scorers import Score
from evals.store import (
    Decision,
    Ledger,
    MetricRecord,
    ResultsStore,
    RunRecord,
    SampleRecord,
    ledger_for,
)
from evals.targets import Output
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
    """One agent's scripted history: the version its contract declares each night."""

    agent: str
    versions: list[str | None]
    """Declared version per night; ``None`` keeps the contract's own."""


@dataclass
class History:
    """What ``write_history`` wrote."""

    results: Path
    runs: dict[str, list[str]] = field(default_factory=dict)
    """Agent → nightly run ids, oldest first."""
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


def _without_telemetry(contract: Contract) -> Contract:
    """The contract without its telemetry block and the gates measured from it.

    The simulated nights are in autumn 2026 while the examples' production telemetry ends on
    the day the tests run, so this history is the golden-set story alone; the scorecard's
    story has its own tests (tests/evals/test_scorecard.py, tests/flows/test_scorecard_cli.py).
    """
    autonomy = contract.autonomy
    levels = {
        level: policy.model_copy(
            update={"gates": {k: v for k, v in policy.gates.items() if METRICS[k].source == "run"}}
        )
        for level, policy in autonomy.levels.items()
    }
    return contract.model_copy(
        update={"telemetry": None, "autonomy": autonomy.model_copy(update={"levels": levels})}
    )


class Agent:
    """An agent's contract, and each version's outputs and scores, computed once."""

    def __init__(self, contract: Path) -> None:
        self.contract: Contract = _without_telemetry(load_contract(contract))
        self._scored: dict[str, tuple[list[Output], dict[str, list[Score]]]] = {}

    def declaring(self, version: str | None) -> Contract:
        """The contract as committed on a night its target declared ``version``."""
        if version is None:
            return self.contract
        evals = self.contract.evals
        target = evals.target.model_copy(update={"version": version})
        return self.contract.model_copy(
            update={"evals": evals.model_copy(update={"target": target})}
        )

    def scored(self, session: RunSession) -> tuple[list[Output], dict[str, list[Score]]]:
        """The outputs of the version the session evaluates and every score but latency."""
        label = session.target.version().label
        if label not in self._scored:
            cases = session.cases
            outputs = session.generate()
            scores = grounding_scores(cases, outputs)
            for name in ("policy_violation", "cost"):
                scores[name] = session.plan.scorers[name](cases, outputs)
            if "rag" in session.contract.evals.suites:
                scores |= rag_scores(cases, outputs)
            self._scored[label] = (outputs, scores)
        return self._scored[label]


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
    trigger: Trigger = "nightly",
    version: str | None = None,
    baseline_run_id: str | None = None,
) -> RunResult:
    """One evaluate-agent flow run at a simulated time: the flow's session, without Prefect.

    A ``ci`` run evaluates a candidate: the ledger is left alone and nothing is acted on, as
    in ``impactgate ci``.
    """
    contract = agent.declaring(declared)
    candidate = trigger == "ci"
    level: Level | None = None
    if candidate:
        entry = ledger_for(results).get(contract.agent)
        level = entry.level if entry else None
    session = RunSession.open(
        contract,
        str(results),
        trigger=trigger,
        level=level,
        version=version,
        sync_ledger=not candidate,
        journal=False,
        use_cache=False,
        baseline_run_id=baseline_run_id,
        started_at=started,
    )
    with session:
        outputs, scores = agent.scored(session)
        outputs = _jitter(outputs, rng)
        scores = scores | {"latency": session.plan.scorers["latency"](session.cases, outputs)}
        ordered = {name: scores[name] for name in session.plan.scorers}
        finished = started + timedelta(seconds=40)
        result = session.commit(outputs, ordered, finished_at=finished)
        actor = f"evaluate-agent flow ({trigger} run)"

        def perform_at(action: Action) -> Decision | None:
            # The engine's action, recorded at the simulated time (a second after the run).
            assert session.ledger is not None
            decision = perform(session.contract, session.ledger, action, actor)
            if decision is None:
                return None
            decision = replace(decision, at=finished + timedelta(seconds=1))
            ResultsStore(str(results)).write_decisions([decision])
            return decision

        session.act(result, perform_action=perform_at, actor=actor)
    return result


def write_history(
    results: Path,
    nights: int = 4,
    *,
    ci: bool = False,
    start: datetime = START,
    seed: int = 7,
) -> History:
    """Nightly runs of the three example agents; with ``ci``, a CI candidate vs baseline pair.

    The CI pair evaluates returns-concierge v1 (the baseline) and v2 (the candidate, whose
    record names the baseline run) after the last night.
    """
    rng = random.Random(seed)
    agents = {p.agent: Agent(ROOT / "policies" / f"{p.agent}.yaml") for p in _scripted(nights)}
    history = History(results)
    with pytest.MonkeyPatch.context() as patch:
        # account-support's rollback hook switches the example serving file: keep it here.
        patch.setenv("IMPACTGATE_SERVING_FILE", str(results.parent / "serving.json"))
        _write_nights(agents, history, nights, start, rng, ci)
    return history


def _write_nights(
    agents: dict[str, Agent],
    history: History,
    nights: int,
    start: datetime,
    rng: random.Random,
    ci: bool,
) -> None:
    results = history.results
    for night in range(nights):
        for i, plan in enumerate(_scripted(nights)):
            started = start + timedelta(days=night, minutes=3 * i)
            result = run_night(agents[plan.agent], results, started, plan.versions[night], rng)
            history.runs.setdefault(plan.agent, []).append(result.record.run_id)
    if ci:
        concierge = agents["returns-concierge"]
        when = start + timedelta(days=nights, hours=3)
        baseline = run_night(concierge, results, when, None, rng, "ci", "v1")
        candidate = run_night(
            concierge, results, when + timedelta(minutes=5), None, rng, "ci", "v2",
            baseline_run_id=baseline.record.run_id,
        )  # fmt: skip
        history.ci_run, history.baseline_run = candidate.record.run_id, baseline.record.run_id


HOSTILE = (
    '<script>window.__pwned = "output"</script><img src=x onerror="window.__pwned = 1">'
    '<a href="javascript:window.__pwned = 8">open</a>'
    "<svg onload=\"alert('pwned')\"></svg><script>confirm('pwned')</script>"
)
"""Text an agent might produce; on a page it must be text, never markup."""


def hostile_project(tmp: Path, nights: int = 2) -> tuple[Path, Path]:
    """A tiny agent whose outputs, inputs, contexts, tags, ids, rules and contract carry markup.

    Returns:
        The policies folder and the results root, with ``nights`` nightly runs written.
    """
    data = copy.deepcopy(CONTRACT)
    data["description"] = 'A tiny agent <b onmouseover="window.__pwned = 2">for</b> tests.'
    data["owner"] = 'owner@example.test <a href="javascript:window.__pwned = 9">me</a>'
    data["outcome"]["business"][0]["name"] = "Cost </td><script>window.__pwned = 3</script>"
    contract = make_project(tmp, data)
    rules = tmp / "policies" / "rules" / "default.yaml"
    pack = yaml.safe_load(rules.read_text(encoding="utf-8"))
    for rule in pack["rules"]:
        if rule["id"] == "pii.email":
            rule["message"] = (
                '<script>window.__pwned = 10</script> <a href="javascript:x()">fix</a>'
            )
    rules.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
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
    return write_history(tmp_path_factory.mktemp("history") / "results", nights=4, ci=True)


@pytest.mark.model
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
    # Decisions carry the simulated time of the run that caused them.
    assert all(START <= d.at < START + timedelta(days=4) for d in concierge.decisions)


@pytest.mark.model
def test_open_incidents_wait_for_a_passing_run_at_the_level_held_before(history: History) -> None:
    agents, _ = load_agents(history.results, ROOT / "policies")
    by_name = {a.agent: a for a in agents}
    # Two nightly escalations for the same breach are one incident, open: nothing passed since.
    concierge = by_name["returns-concierge"]
    (escalation,) = concierge.open_incidents
    assert escalation.runs == 2
    assert [d.kind for d in concierge.decisions_of(escalation)] == ["escalate", "escalate"]
    # v1 passes at approval after the rollback, but the agent has not earned constrained back.
    account = by_name["account-support"]
    assert account.latest.verdict == "pass"  # type: ignore[union-attr]
    (rolled_back,) = account.open_incidents
    assert [d.kind for d in account.decisions_of(rolled_back)] == ["rollback"]
    assert rolled_back.level == "constrained"
    assert by_name["billing-assistant"].open_incidents == []


def test_a_passing_ci_run_does_not_close_an_incident(tmp_path: Path) -> None:
    agent = Agent(make_project(tmp_path))
    results = tmp_path / "results"
    rng = random.Random(3)
    run_night(agent, results, START, "v1", rng)  # v1 deployed, passing
    ledger = ledger_for(results)
    store = ResultsStore(str(results))
    _act(agent.contract, ledger, store, "r-breach", "constrained", BREACHES["escalate"])
    # A CI run of the same version passes every gate, but it evaluates a candidate.
    ci = run_night(agent, results, START + timedelta(hours=1), None, rng, "ci", "v1")
    assert (ci.record.trigger, ci.record.verdict) == ("ci", "pass")
    (before,), _ = load_agents(results, tmp_path / "policies")
    assert [i.status for i in before.incidents] == ["open"]
    # The next passing nightly run of the deployed version closes it.
    nightly = run_night(agent, results, START + timedelta(days=1), "v1", rng)
    (after,), _ = load_agents(results, tmp_path / "policies")
    assert after.open_incidents == []
    (closed,) = after.incidents
    assert closed.last_run_id == nightly.record.run_id


def _measured(**values: float) -> dict[str, MetricValue]:
    out = {}
    for name, value in values.items():
        low, high = max(value - 0.04, 0.0), min(value + 0.04, 1.0)
        out[name] = MetricValue(name, value, low, high, 40, 0, "wilson", 0.95)
    return out


CLEAN = {"faithfulness": 0.95, "policy_violation_rate": 0.0, "error_rate": 0.0}
RUNS = {
    "pass": CLEAN,
    "fail": CLEAN | {"faithfulness": 0.3},
    "inconclusive": CLEAN | {"faithfulness": 0.52},
}
BREACHES = {
    "escalate": CLEAN | {"faithfulness": 0.3},
    "rollback": CLEAN | {"policy_violation_rate": 0.6},
    "rollback_refused": CLEAN | {"policy_violation_rate": 0.6},
}


def _act(
    contract: Contract,
    ledger: Ledger,
    store: ResultsStore,
    run_id: str,
    level: Level,
    values: dict[str, float],
) -> Decision | None:
    autonomy = contract.autonomy
    gates = evaluate_gates(
        contract.gates(level), _measured(**values), autonomy.min_samples,
        frozenset(autonomy.rollback.metrics),
    )  # fmt: skip
    entry = ledger.get(contract.agent)
    assert entry is not None
    action = choose_action(
        contract, gates, ledger.incidents(contract.agent, open_only=True), run_id=run_id,
        version=entry.active_version, level=level,
    )  # fmt: skip
    decision = perform(contract, ledger, action, "test")
    if decision is not None:
        store.write_decisions([decision])
    return decision


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
def test_the_agent_page_shows_the_ledger_incident_until_a_run_passes_at_its_level(
    tmp_path: Path, kind: str, later: list[tuple[str, Level]], closed: bool
) -> None:
    data = copy.deepcopy(CONTRACT)
    if kind == "rollback_refused":
        del data["autonomy"]["rollback"]["known_good"]
    contract = load_contract(make_project(tmp_path, data))
    results = tmp_path / "results"
    results.mkdir()
    ledger = ledger_for(results)
    ledger.sync(contract.agent, "v2", "constrained", contract.autonomy.rollback.known_good, "test")
    store = ResultsStore(str(results))
    opened = _act(contract, ledger, store, "r0", "constrained", BREACHES[kind])
    assert opened is not None
    assert opened.kind == kind
    for i, (verdict, level) in enumerate(later, start=1):
        _act(contract, ledger, store, f"r{i}", level, RUNS[verdict])
    (agent,), _ = load_agents(results, tmp_path / "policies")
    page = agent_page(agent, Links({}))
    if closed:
        assert page.open_incidents == []
        (shown,) = page.closed_incidents
        assert shown.status.text == f"closed by run r{len(later)}"
        assert {f.label: f.text for f in shown.facts}["evidence"] == "r0"  # the breach
        # The decisions that opened and closed it, from the audit trail.
        assert f"· {KIND_WORDS[kind]}: " in shown.trail[0]
        assert "· recovery: " in shown.trail[-1]
    else:
        (shown,) = page.open_incidents
        assert shown.kind == kind
        assert shown.status.text == "open"
        assert page.closed_incidents == []


@pytest.mark.model
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


@pytest.mark.model
def test_the_report_reads_only_the_samples_of_the_runs_it_shows(history: History) -> None:
    agents, _ = load_agents(history.results, ROOT / "policies")
    account = next(a for a in agents if a.agent == "account-support")
    rolled_back = next(r for r in account.runs if r.version == "v2")
    samples = ResultsStore(str(history.results)).samples([rolled_back])
    assert {s.run_id for s in samples} == {rolled_back.run_id}
    assert len({s.case_id for s in samples}) == rolled_back.n_cases == 50
    assert len(samples) == 50 * 5  # five scorers, nothing from the other runs of that day


@pytest.mark.model
def test_failing_cases_of_the_rolled_back_run_carry_masked_violations(history: History) -> None:
    agents, _ = load_agents(history.results, ROOT / "policies")
    account = next(a for a in agents if a.agent == "account-support")
    run = next(r for r in account.runs if r.version == "v2")
    failures = failing_cases(run, ResultsStore(str(history.results)).samples(run))
    leaking = [f for f in failures if "policy_violation" in f.metrics]
    assert leaking, "v2 repeats customers' personal data; the policy scorer must catch it"
    for failure in leaking:
        pairs = mask_spans(failure.samples)
        assert pairs
        assert all("*" in masked for _, masked in pairs)
        assert all(raw in (failure.output or "") for raw, _ in pairs)


def _run(run_id: str, at: datetime, verdict: str, level: str) -> RunRecord:
    return RunRecord(
        run_id=run_id, agent="a", version="v1", version_hash="h", dataset="d",
        dataset_hash="dh", trigger="nightly", level=level, started_at=at, finished_at=None,
        code_version=None, n_cases=10, verdict=verdict,
    )  # fmt: skip


def _row(metric: str, verdict: str, threshold: float) -> MetricRecord:
    return MetricRecord(
        metric, 2.0, 1.8, 2.2, 10, 0, "order-statistic", 0.95, None, gated=True,
        direction="max", threshold=threshold, verdict=verdict, reason="why",
    )  # fmt: skip


def _sample(
    case: str, metric: str, value: float | None, passed: bool | None, **kw: object
) -> SampleRecord:
    fields: dict[str, object] = {
        "explanation": f"{metric} {value}", "output": f"answer {case}", "tags": ("t",),
    } | kw  # fmt: skip
    return SampleRecord("r", case, metric, value, passed, **fields)  # type: ignore[arg-type]


def test_measured_scorers_fail_a_case_only_beyond_a_gate_that_did_not_pass() -> None:
    samples = [
        _sample("fast", "latency", 1.0, None),
        _sample("slow", "latency", 3.0, None),
        _sample("slow", "faithfulness", 1.0, True),
        _sample("wrong", "faithfulness", 0.5, False),
        _sample("broken", "faithfulness", None, None, error="judge timed out"),
    ]
    failing = replace(
        _run("r", START, "fail", "constrained"),
        metrics={"latency_p50_s": _row("latency_p50_s", "fail", 2.5)},
    )
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
    hallucination = by_metric["hallucination_rate"]
    assert [(w.case_id, w.newly_failing) for w in hallucination.worse] == [("a", True)]
    assert hallucination.n_better == 1
    latency = by_metric["latency_p50_s"]
    assert [w.case_id for w in latency.worse] == ["a"]
    assert latency.n_better == 1
    assert latency.only_baseline == 1
    assert latency.n_paired == 2
    assert latency.mean_delta == pytest.approx(0.0)
