"""The ledger's rules, as pure functions: no database involved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evals.store import ledger_rules as rules

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def entry(**changes: object) -> rules.LedgerEntry:
    base = rules.registered("a", "v2", "constrained", "v1", "policies/a.yaml", NOW).entry
    return rules.LedgerEntry(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_a_new_agent_is_registered_at_what_its_contract_declares() -> None:
    change = rules.registered("a", "v2", "constrained", "v1", "policies/a.yaml", NOW)
    assert (change.entry.active_version, change.entry.level) == ("v2", "constrained")
    assert change.entry.last_good_source == "declared in policies/a.yaml"
    assert change.events == [("register", {"version": "v2", "level": "constrained"})]


@pytest.mark.parametrize(
    ("declared_version", "declared_level", "active", "level", "kinds"),
    [
        ("v2", "constrained", "v2", "constrained", []),  # nothing changed
        ("v3", "constrained", "v3", "constrained", ["deploy"]),  # a deployment
        ("v2", "approval", "v2", "approval", ["demote"]),  # the contract demotes
        ("v2", "expanded", "v2", "constrained", []),  # ... but never promotes
    ],
)
def test_sync_deploys_and_demotes_but_never_promotes(
    declared_version: str, declared_level: str, active: str, level: str, kinds: list[str]
) -> None:
    change = rules.synced(entry(), declared_version, declared_level, "v1", "p", NOW)  # type: ignore[arg-type]
    assert (change.entry.active_version, change.entry.level) == (active, level)
    assert [kind for kind, _ in change.events] == kinds


def test_a_rollback_holds_until_a_new_version_is_declared() -> None:
    rolled = rules.rolled_back(entry(), "approval", "leak", "run-1", NOW).entry
    assert (rolled.active_version, rolled.level) == ("v1", "approval")
    assert rules.synced(rolled, "v2", "constrained", "v1", "p", NOW).entry.active_version == "v1"
    assert rules.synced(rolled, "v3", "constrained", "v1", "p", NOW).entry.active_version == "v3"


def test_a_rollback_never_raises_the_level_and_needs_a_good_version() -> None:
    low = entry(level="draft")
    assert rules.rolled_back(low, "approval", "x", None, NOW).entry.level == "draft"
    with pytest.raises(rules.NoGoodVersion, match="nothing to roll back to"):
        rules.rolled_back(entry(last_good_version=None), "approval", "x", None, NOW)


def test_promotion_goes_up_and_only_for_the_served_version() -> None:
    up = rules.promoted(entry(), "expanded", "v2", "run-9", "ann", NOW)
    assert (up.entry.level, up.entry.last_good_source) == ("expanded", "run run-9")
    with pytest.raises(ValueError, match="promotion goes up the ladder"):
        rules.promoted(entry(), "approval", "v2", "run-9", None, NOW)
    with pytest.raises(ValueError, match="serves v2, not the evaluated v1"):
        rules.promoted(entry(), "expanded", "v1", "run-9", None, NOW)


def test_the_same_breach_updates_one_incident_and_new_metrics_page_again() -> None:
    first = rules.merge_breach(None, "a", ["faithfulness"], "high", "constrained", "r1", NOW)
    assert first.opened
    assert first.page
    incident = rules.Incident(**{**first.incident.__dict__, "id": 1})
    again = rules.merge_breach(incident, "a", ["faithfulness"], "high", "constrained", "r2", NOW)
    assert (again.opened, again.worse, again.page) == (False, False, False)
    assert again.incident.runs == 2
    wider = rules.merge_breach(
        again.incident,
        "a",
        ["faithfulness", "hallucination_rate"],
        "high",
        "constrained",
        "r3",
        NOW,
    )
    assert wider.worse
    assert wider.incident.id == 1
    assert wider.incident.metrics == ["faithfulness", "hallucination_rate"]
    critical = rules.merge_breach(wider.incident, "a", ["faithfulness"], "critical", "x", "r4", NOW)
    assert critical.worse
    assert critical.incident.severity == "critical"


def test_an_incident_closes_only_when_the_agent_passes_at_the_level_it_held() -> None:
    opened = rules.merge_breach(None, "a", ["leak"], "critical", "constrained", "r1", NOW).incident
    later = NOW + timedelta(days=1)
    assert rules.closing([opened], "approval", "r2", later) == [], "demoted: not earned back yet"
    [closed] = rules.closing([opened], "constrained", "r3", later)
    assert (closed.status, closed.closed_at, closed.last_run_id) == ("closed", later, "r3")


def test_a_run_closes_only_the_incidents_on_metrics_it_judged() -> None:
    """A golden run passing its gates leaves open an incident a production run opened on
    golden_coverage, a metric golden runs do not measure; a production run passing it closes it."""
    opened = rules.merge_breach(
        None, "a", ["golden_coverage"], "high", "constrained", "r1", NOW
    ).incident
    later = NOW + timedelta(days=1)
    golden = ["faithfulness", "hallucination_rate", "latency_p50_s"]
    assert rules.closing([opened], "constrained", "r2", later, golden) == []
    [closed] = rules.closing([opened], "constrained", "r3", later, [*golden, "golden_coverage"])
    assert closed.status == "closed"
