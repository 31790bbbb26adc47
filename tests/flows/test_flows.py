"""The nightly flow over the example agents, under a real (temporary) Prefect API."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from evals.store import ResultsStore, ledger_for
from flows import evaluate_agent, nightly, run_outcome
from tests.helpers import CONTRACT, http_receiver, make_project

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("prefect_harness")


def by_agent(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["agent"]: s for s in summaries}


def test_nightly_escalates_one_agent_and_rolls_another_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = str(tmp_path / "results")
    monkeypatch.setenv("IMPACTGATE_SERVING_FILE", str(tmp_path / "serving.json"))
    with http_receiver() as receiver:
        for name in ("ACCOUNT_ALERTS_WEBHOOK", "RETURNS_ALERTS_WEBHOOK", "BILLING_ALERTS_WEBHOOK"):
            monkeypatch.setenv(name, receiver.url)
        # The golden runs alone: the example contracts' production runs sample the week up to
        # the minute the test runs (tests/examples/test_story.py checks them on a fixed day).
        first = by_agent(
            asyncio.run(nightly(policies=str(ROOT / "policies"), results=results, source="golden"))
        )

    assert {a: s["action"] for a, s in first.items()} == {
        "account-support": "rollback",
        "billing-assistant": "none",
        "returns-concierge": "escalate",
    }
    rollback = first["account-support"]["decision"]
    assert (rollback["version_before"], rollback["version_after"]) == ("v2", "v1")
    assert (rollback["level_before"], rollback["level_after"]) == ("constrained", "approval")
    assert rollback["notifications"] == [
        "rollback hook examples.serving:switch_version: done",
        "webhook $ACCOUNT_ALERTS_WEBHOOK: delivered (HTTP 200)",
    ]
    serving = json.loads((tmp_path / "serving.json").read_text())
    assert serving["account-support"]["version"] == "v1"
    assert sorted(b["kind"] for b in receiver.bodies) == ["escalate", "rollback"]

    store = ResultsStore(results)
    runs = store.runs()
    assert {r.agent for r in runs} == set(first)
    for agent in first:
        metrics = {s.metric for s in store.samples([r for r in runs if r.agent == agent])}
        assert metrics >= {
            "faithfulness",
            "hallucination",
            "policy_violation",
            "cost",
            "latency",
        }, agent
    decisions = store.decisions()
    assert sorted(d.kind for d in decisions) == ["escalate", "rollback"]

    ledger = ledger_for(results)
    account = ledger.get("account-support")
    assert account is not None
    assert (account.active_version, account.level) == ("v1", "approval")
    billing = ledger.get("billing-assistant")
    assert billing is not None
    assert billing.last_good_source == f"run {first['billing-assistant']['run_id']}"

    # The next night evaluates the re-pinned version: its golden gates pass, but its measured
    # production escalation rate is over the 0.35 its contract asks at approval.
    second = by_agent(
        asyncio.run(nightly(policies=str(ROOT / "policies"), results=results, source="golden"))
    )
    assert second["account-support"]["version"] == "v1"
    assert second["account-support"]["level"] == "approval"
    assert second["account-support"]["action"] == "escalate"
    gates = {m["metric"]: m["verdict"] for m in second["account-support"]["metrics"]}
    assert gates["escalation_rate"] == "fail"
    assert {v for m, v in gates.items() if m != "escalation_rate" and v} == {"pass"}
    assert second["returns-concierge"]["action"] == "escalate"
    # The same breach the next night updates the open incident instead of paging again.
    # (Agents run concurrently, so which incident got which id depends on who came first.)
    incident = ledger.open_incident("returns-concierge")
    assert incident is not None
    assert incident.runs == 2
    assert second["returns-concierge"]["decision"]["notifications"] == [
        f"not paged: incident #{incident.id} is already open for this breach"
    ]
    assert sorted(d.kind for d in store.decisions()) == [
        "escalate",
        "escalate",
        "escalate",
        "rollback",
    ]
    account = ledger.get("account-support")
    assert account is not None
    assert account.last_good_version == "v1"
    # returns-concierge's adoption without outcome: one medium incident, updated, not repeated.
    [flag] = ledger.incidents("returns-concierge", kind="red_flag")
    assert (flag.metrics, flag.severity, flag.status, flag.runs) == (
        ["adoption_without_outcome"], "medium", "open", 2
    )  # fmt: skip
    assert second["returns-concierge"]["scorecard"]["red_flags"][0]["name"] == (
        "adoption_without_outcome"
    )


def test_evaluate_agent_publishes_artifacts(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    contract = make_project(tmp_path / "project", leak_every=2)
    summary = evaluate_agent(str(contract), str(tmp_path / "results"), "manual")
    assert summary["action"] == "rollback"
    with get_client(sync_client=True) as client:
        keys = {"gates-tiny-agent", "incident-tiny-agent"}
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
        )
    assert {a.key for a in artifacts} == keys
    incident = next(a for a in artifacts if a.key == "incident-tiny-agent")
    assert "rolls back" in str(incident.data)
    assert "policy_violation_rate" in str(incident.data)


def test_a_broken_agent_does_not_stop_the_others(tmp_path: Path) -> None:
    project = tmp_path / "project"
    make_project(project)
    broken = project / "policies" / "zz-broken.yaml"
    broken.write_text(
        (project / "policies" / "tiny-agent.yaml").read_text().replace("tiny-agent", "zz-broken")
    )
    # The dataset path now points at datasets/zz-broken/..., which does not exist.
    state = asyncio.run(
        nightly(
            policies=str(project / "policies"),
            results=str(tmp_path / "results"),
            agents_at_once=2,  # the broken agent fails beside the healthy one
            return_state=True,
        )
    )
    assert state.is_failed()
    assert state.message.startswith("zz-broken: ")
    summaries = by_agent(run_outcome(state))
    assert summaries["tiny-agent"]["action"] == "rollback"
    assert "file not found" in summaries["zz-broken"]["error"]


MEETING_AGENT = """
import threading

_arrived = threading.Barrier(2)
_lock = threading.Lock()
_seen = set()


def answer(case, agent):
    # Each agent's first call waits for the other agent's: only agents evaluated at the same
    # time get past it (one after another, the first would wait out the timeout and fail).
    with _lock:
        first = agent not in _seen
        _seen.add(agent)
    if first:
        _arrived.wait(timeout=60)
    return "Refunds go back to the original payment method within 5 business days."
"""


def test_agents_at_once_are_evaluated_concurrently_under_one_nightly(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    (tmp_path / "meeting_agents.py").write_text(MEETING_AGENT, encoding="utf-8")
    for agent in ("tiny-agent", "tiny-two"):
        data = copy.deepcopy(CONTRACT)
        data["agent"] = agent
        data["evals"]["suites"] = ["policy", "cost", "latency"]
        data["evals"]["target"] = {
            "kind": "python",
            "function": "meeting_agents:answer",
            "params": {"agent": agent},
        }
        data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 60}}}
        make_project(tmp_path, data)
    try:
        state = asyncio.run(
            nightly(
                policies=str(tmp_path / "policies"),
                results=str(tmp_path / "results"),
                use_cache=False,
                agents_at_once=2,
                return_state=True,
            )
        )
    finally:
        sys.modules.pop("meeting_agents", None)
    summaries = by_agent(run_outcome(state))
    assert list(summaries) == ["tiny-agent", "tiny-two"], "summaries in contract order"
    assert [summaries[a]["outputs"]["errors"] for a in summaries] == [0, 0]

    async def children() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(
                        any_=[state.state_details.flow_run_id]
                    )
                )
            )
            return sorted(run.parameters["contract"] for run in runs)

    contracts = asyncio.run(children())
    assert [Path(c).stem for c in contracts] == ["tiny-agent", "tiny-two"], (
        "both evaluations show under the nightly run"
    )
