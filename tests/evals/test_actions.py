"""Escalation, rollback and recovery: incidents, channels, hooks, and what gets recorded."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from evals.actions import (
    Breach,
    escalate,
    incident_markdown,
    post_webhook,
    recover,
    rollback,
    rollback_to,
    workflow_gates,
)
from evals.contract import WebhookChannel, load_contract
from evals.gates import Verdict
from evals.store import Ledger
from tests.helpers import CONTRACT, http_receiver, make_project, smtp_server

LEAK = Breach(
    "policy_violation_rate", "fail", 0.5, 0.3, 0.7, "≤ 0.1", "0.500 is on the wrong side", True
)
DRIFT = Breach("faithfulness", "fail", 0.6, 0.5, 0.7, "≥ 0.8", "0.600 is on the wrong side", False)
SHAKY = Breach("hallucination_rate", "inconclusive", 0.1, 0.02, 0.3, "≤ 0.15", "straddles", False)


def no_sleep(_: float) -> None:
    return None


def project(tmp_path: Path, **autonomy: Any) -> Any:
    data = json.loads(json.dumps(CONTRACT))
    data["autonomy"].update(autonomy)
    return load_contract(make_project(tmp_path, data))


def ledger(tmp_path: Path, known_good: str | None = "v1") -> Ledger:
    store = Ledger(tmp_path / "ledger.sqlite")
    store.sync("tiny-agent", "v2", "constrained", known_good, "policies/tiny-agent.yaml")
    return store


def test_webhook_delivers_slack_compatible_json() -> None:
    with http_receiver() as receiver:
        result = post_webhook(WebhookChannel(url=receiver.url), {"text": "hello"}, sleep=no_sleep)
    assert result == f"webhook {receiver.url}: delivered (HTTP 200)"
    assert receiver.bodies == [{"text": "hello"}]


def test_webhook_retries_server_errors_then_succeeds() -> None:
    with http_receiver() as receiver:
        receiver.statuses = [500, 503]
        result = post_webhook(WebhookChannel(url=receiver.url), {"text": "x"}, sleep=no_sleep)
    assert result.endswith("delivered (HTTP 200)")
    assert len(receiver.bodies) == 3


def test_webhook_failure_is_reported_not_raised_and_hides_secret_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/secret-token")
    result = post_webhook(
        WebhookChannel(url_env="HOOK_URL", timeout_s=1), {"text": "x"}, sleep=no_sleep
    )
    assert result.startswith("webhook $HOOK_URL: not delivered after 3 attempt(s)")
    assert "secret-token" not in result


def test_escalation_pages_once_then_updates_the_open_incident_then_recovers(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        contract = project(tmp_path, escalation={"owner": "o", "channels": [{"url": receiver.url}]})
        store = ledger(tmp_path)
        first = escalate(
            contract, store, [DRIFT], run_id="r1", version="v2", level="constrained", actor="t"
        )
        second = escalate(
            contract, store, [DRIFT], run_id="r2", version="v2", level="constrained", actor="t"
        )
        worse = escalate(
            contract,
            store,
            [DRIFT, SHAKY],
            run_id="r3",
            version="v2",
            level="constrained",
            actor="t",
        )
        closed = recover(contract, store, run_id="r4", version="v2", level="constrained", actor="t")
        nothing = recover(
            contract, store, run_id="r5", version="v2", level="constrained", actor="t"
        )
    assert first.notifications == [f"webhook {receiver.url}: delivered (HTTP 200)"]
    assert second.notifications == ["not paged: incident #1 is already open for this breach"]
    assert "still breaches" in second.reason
    assert "incident #1, run 2" in second.reason
    assert worse.notifications[0].endswith("delivered (HTTP 200)"), (
        "a new metric is news: page again"
    )
    assert [b["kind"] for b in receiver.bodies] == ["escalate", "escalate", "recover"]
    assert closed is not None
    assert closed.kind == "recover"
    assert "incident #1 closed after 3" in closed.reason
    assert nothing is None
    assert store.open_incident("tiny-agent") is None
    assert (first.version_before, first.version_after, first.level_after) == (
        "v2",
        "v2",
        "constrained",
    )


def test_channels_filter_by_severity_and_email_goes_through_smtp(tmp_path: Path) -> None:
    with smtp_server() as mailbox, http_receiver() as receiver:
        channels = [
            {
                "kind": "email",
                "to": ["ops@example.test"],
                "sender": "ig@example.test",
                "smtp_host": "127.0.0.1",
                "smtp_port": mailbox.port,
                "starttls": False,
            },
            {"url": receiver.url, "min_severity": "critical"},
        ]
        contract = project(tmp_path, escalation={"owner": "o", "channels": channels})
        decision = escalate(
            contract,
            ledger(tmp_path),
            [DRIFT],
            run_id="r1",
            version="v2",
            level="constrained",
            actor="t",
        )
    assert decision.notifications == [
        f"email to ops@example.test: sent via 127.0.0.1:{mailbox.port}"
    ]
    assert receiver.bodies == [], "a high breach does not reach a critical-only channel"
    [message] = mailbox.messages
    assert message["rcpt"] == ["<ops@example.test>"]
    assert "impactgate: tiny-agent escalated" in message["data"]


def test_rollback_with_receiver_down_still_rolls_back_and_runs_the_hook(tmp_path: Path) -> None:
    calls_file = tmp_path / "project" / "hook_calls.jsonl"
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "serving.py").write_text(
        "import json\n\ndef switch(change):\n"
        f"    with open({str(calls_file)!r}, 'a') as f:\n        f.write(json.dumps(change) + '\\n')\n"
    )
    contract = project(
        tmp_path / "project",
        escalation={"owner": "o", "channels": [{"url": "http://127.0.0.1:9/down", "timeout_s": 1}]},
        rollback={
            "metrics": ["policy_violation_rate"],
            "demote_to": "approval",
            "known_good": "v1",
            "hook": {"kind": "python", "function": "serving:switch"},
        },
    )
    store = ledger(tmp_path)
    decision = rollback(contract, store, [LEAK], run_id="r1", actor="t")
    assert decision.kind == "rollback"
    assert (decision.version_before, decision.version_after) == ("v2", "v1")
    assert (decision.level_before, decision.level_after) == ("constrained", "approval")
    assert decision.notifications[0] == "rollback hook serving:switch: done"
    assert any("not delivered" in n for n in decision.notifications)
    [call] = [json.loads(line) for line in calls_file.read_text().splitlines()]
    assert call["version_after"] == "v1"
    assert call["run_id"] == "r1"
    entry = store.get("tiny-agent")
    assert entry is not None
    assert entry.active_version == "v1"
    # Idempotent: the same rollback again changes nothing and calls no hook.
    again = rollback(contract, store, [LEAK], run_id="r2", actor="t")
    assert "already on v1" in again.reason
    assert len(calls_file.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.test/a b", "http://bad host/x", "https://", "ftp://hooks.test/x"],
)
def test_a_malformed_webhook_url_never_breaks_a_rollback_halfway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("BROKEN_HOOK_URL", url)
    monkeypatch.delitem(sys.modules, "malformed_serving", raising=False)
    calls_file = tmp_path / "project" / "hook_calls.jsonl"
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "malformed_serving.py").write_text(
        "def switch(change):\n"
        f"    open({str(calls_file)!r}, 'a').write(change['version_after'] + '\\n')\n"
    )
    contract = project(
        tmp_path / "project",
        escalation={"owner": "o", "channels": [{"url_env": "BROKEN_HOOK_URL"}]},
        rollback={
            "metrics": ["policy_violation_rate"],
            "demote_to": "approval",
            "known_good": "v1",
            "hook": {"kind": "python", "function": "malformed_serving:switch"},
        },
    )
    store = ledger(tmp_path)
    decision = rollback(contract, store, [LEAK], run_id="r1", actor="t")
    assert decision.kind == "rollback"
    assert calls_file.read_text() == "v1\n", "the hook switched serving"
    [note] = [n for n in decision.notifications if n.startswith("webhook $BROKEN_HOOK_URL")]
    assert "not delivered" in note
    assert url not in note, "a URL from the environment is a secret, even a broken one"
    entry = store.get("tiny-agent")
    assert entry is not None
    assert entry.active_version == "v1"


def test_a_failing_hook_is_recorded_loudly(tmp_path: Path) -> None:
    with http_receiver() as hook:
        hook.statuses = [400]
        contract = project(
            tmp_path,
            rollback={
                "metrics": ["policy_violation_rate"],
                "demote_to": "approval",
                "known_good": "v1",
                "hook": {"kind": "webhook", "url": hook.url},
            },
        )
        decision = rollback(contract, ledger(tmp_path), [LEAK], run_id="r1", actor="t")
    assert (
        "SERVING NOT ROLLED BACK: the rollback hook failed; roll back by hand"
        in decision.notifications
    )
    assert decision.action_failed is not None, "a failed hook is a failed action"


def test_rollback_without_good_version_is_refused_loudly(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        contract = project(tmp_path, escalation={"owner": "o", "channels": [{"url": receiver.url}]})
        decision = rollback(
            contract, ledger(tmp_path, known_good=None), [LEAK], run_id="r1", actor="t"
        )
    assert decision.kind == "rollback_refused"
    assert "nothing to roll back to" in decision.reason
    assert decision.version_after == "v2"
    assert receiver.bodies[0]["severity"] == "critical"


def test_a_person_rolls_back_to_a_named_version(tmp_path: Path) -> None:
    contract = project(tmp_path)
    store = ledger(tmp_path)
    decision = rollback_to(
        contract, store, version="v0", demote_to="draft", reason="bad deploy", actor="ann"
    )
    assert (decision.version_before, decision.version_after, decision.level_after) == (
        "v2",
        "v0",
        "draft",
    )
    assert "bad deploy" in decision.reason
    markdown = incident_markdown(contract, decision, [])
    assert "bad deploy: v2 → v0, level constrained → draft" in markdown
    assert "- by: ann" in markdown, "a manual rollback names who did it, not a run"
    assert "`None`" not in markdown
    assert "| policy" not in markdown


def test_workflow_gates_need_measurements_no_worse_than_baseline(tmp_path: Path) -> None:
    contract = project(tmp_path)
    [*gates] = workflow_gates(contract)
    assert {g.verdict for g in gates} == {Verdict.FAIL}
    assert "no production telemetry (a telemetry block) and no observations file" in gates[0].reason
    observations = tmp_path / "datasets" / "tiny-agent" / "workflow.csv"
    observations.write_text(
        "metric,value,n,low,high,window\n"
        "automation_rate,0.3,400,,,2026-11\n"
        "escalation_rate,0.5,400,,,2026-11\n"
        "rework_rate,0.2,50,,,2026-11\n"
        "cycle_time,3.5,,3.1,4.0,2026-11\n"
    )
    data = json.loads(json.dumps(CONTRACT))
    data["workflow"]["observations"] = "datasets/tiny-agent/workflow.csv"
    contract = load_contract(make_project(tmp_path, data))
    verdicts = {g.metric: g.verdict for g in workflow_gates(contract)}
    assert verdicts == {
        "workflow.cycle_time": Verdict.PASS,
        "workflow.automation_rate": Verdict.PASS,
        "workflow.escalation_rate": Verdict.PASS,
        "workflow.rework_rate": Verdict.FAIL,  # 0.2 is worse than the 0.1 before the agent
    }


def test_concurrent_breaches_leave_one_incident_and_a_consistent_ledger(tmp_path: Path) -> None:
    contract = project(tmp_path)
    store = ledger(tmp_path)
    errors: list[BaseException] = []

    def night(i: int) -> None:
        try:
            own = Ledger(tmp_path / "ledger.sqlite")
            for j in range(10):
                if (i + j) % 3 == 0:
                    rollback(contract, own, [LEAK], run_id=f"r{i}-{j}", actor="t")
                else:
                    escalate(
                        contract,
                        own,
                        [DRIFT],
                        run_id=f"r{i}-{j}",
                        version="v1",
                        level="approval",
                        actor="t",
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=night, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    open_incidents = store.incidents(open_only=True)
    assert len(open_incidents) == 1
    assert open_incidents[0].runs == 40
    assert open_incidents[0].severity == "critical"
    entry = store.get("tiny-agent")
    assert entry is not None
    assert (entry.active_version, entry.level) == ("v1", "approval")
