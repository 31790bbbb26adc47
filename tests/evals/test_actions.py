"""Escalation and rollback decisions, and webhook delivery to a real local receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.actions import Breach, escalate, incident_markdown, post_webhook, rollback
from evals.contract import WebhookChannel, load_contract
from evals.store import Ledger
from tests.helpers import CONTRACT, http_receiver, make_project

BREACH = Breach(
    "policy_violation_rate", "fail", 0.5, 0.3, 0.7, "≤ 0.1", "0.500 is on the wrong side", True
)


def no_sleep(_: float) -> None:
    return None


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
    monkeypatch.delenv("HOOK_URL")
    assert post_webhook(WebhookChannel(url_env="HOOK_URL"), {}) == (
        "webhook $HOOK_URL: skipped: the environment variable is not set"
    )


def contract_with_hook(tmp_path: Path, url: str):  # type: ignore[no-untyped-def]
    data = {
        **CONTRACT,
        "autonomy": {
            **CONTRACT["autonomy"],
            "escalation": {"owner": "o", "channels": [{"url": url}]},
        },
    }
    return load_contract(make_project(tmp_path, data))


def test_escalation_notifies_and_keeps_version_and_level(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        contract = contract_with_hook(tmp_path, receiver.url)
        decision = escalate(
            contract, [BREACH], run_id="r1", version="v2", level="constrained", actor="test"
        )
    assert decision.kind == "escalate"
    assert (decision.version_before, decision.version_after) == ("v2", "v2")
    assert decision.notifications == [f"webhook {receiver.url}: delivered (HTTP 200)"]
    [body] = receiver.bodies
    assert body["agent"] == "tiny-agent"
    assert body["breaches"][0]["metric"] == "policy_violation_rate"
    assert "policy_violation_rate 0.5 (needs ≤ 0.1)" in body["text"]
    assert "| policy_violation_rate | fail |" in incident_markdown(contract, decision, [BREACH])


def test_rollback_with_receiver_down_still_rolls_back(tmp_path: Path) -> None:
    contract = contract_with_hook(tmp_path, "http://127.0.0.1:9/down")
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.sync("tiny-agent", "v2", "constrained", "v1", "policies/tiny-agent.yaml")
    decision = rollback(contract, ledger, [BREACH], run_id="r1", actor="test")
    assert decision.kind == "rollback"
    assert (decision.version_before, decision.version_after) == ("v2", "v1")
    assert (decision.level_before, decision.level_after) == ("constrained", "approval")
    assert "not delivered" in decision.notifications[0]
    entry = ledger.get("tiny-agent")
    assert entry is not None
    assert entry.active_version == "v1"


def test_rollback_without_good_version_is_refused_loudly(tmp_path: Path) -> None:
    contract = contract_with_hook(tmp_path, "http://127.0.0.1:9/down")
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.sync("tiny-agent", "v2", "constrained", None, "policies/tiny-agent.yaml")
    decision = rollback(contract, ledger, [BREACH], run_id="r1", actor="test")
    assert decision.kind == "rollback_refused"
    assert "nothing to roll back to" in decision.reason
    assert decision.version_after == "v2"
