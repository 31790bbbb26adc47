"""Rule packs from strangers: risky patterns refused, slow ones bounded, files kept in place."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from evals.dataset import Case
from evals.errors import UserError
from evals.policy import PolicyEngine, RegexRule, RulePack, load_rule_pack, parse_rule
from evals.policy import _rule as rule_module
from evals.scorers import policy_violation, run_scorer
from evals.targets import Output

HEADER = "name: custom\ndescription: x\nrules:\n"


def write_pack(tmp_path: Path, rules: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + rules, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(UserError) as info:
        load_rule_pack(path)
    return [str(p) for p in info.value.problems]


def regex_rule(pattern: str, kind: str = "regex") -> str:
    return (
        f"  - id: custom.r\n    kind: {kind}\n    severity: high\n    message: m\n"
        f"    pattern: '{pattern}'\n"
    )


@pytest.mark.parametrize(
    ("pattern", "kind", "expected"),
    [
        ("(a+)+$", "regex", "risks catastrophic backtracking"),
        ("(\\w+\\s?)+$", "regex", "risks catastrophic backtracking"),
        ("(x+x+)+y", "required", "risks catastrophic backtracking"),
        ("(a|aa)+$", "regex", "takes more than 0.1 s on a 65-character test text"),
    ],
)
def test_a_catastrophic_pattern_is_refused_at_its_line(
    tmp_path: Path, pattern: str, kind: str, expected: str
) -> None:
    path = write_pack(tmp_path, regex_rule(pattern, kind))
    start = time.perf_counter()
    [message] = problems(path)
    assert time.perf_counter() - start < 2
    assert message.startswith(f"{path}:8: rules.0.pattern: 'pattern': '{pattern}' ")
    assert expected in message


@pytest.mark.parametrize(
    "pattern", ["ORD-\\d{4}", "(\\d+,)*\\d+", "([a-z]+\\.)+com", "(?<!\\w)ref-\\d+", "\\p{L}+"]
)
def test_ordinary_patterns_are_accepted(tmp_path: Path, pattern: str) -> None:
    pack = load_rule_pack(write_pack(tmp_path, regex_rule(pattern)))
    assert isinstance(pack.rules[0], RegexRule)


def slow_rule() -> RegexRule:
    """A rule whose pattern validation would refuse, as a hand-built pack could hold."""
    return RegexRule.model_construct(
        kind="regex", id="custom.slow", severity="high", message="m", pattern="(a|a)*$"
    )


def test_a_pattern_that_runs_out_of_time_is_that_cases_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rule_module, "PATTERN_TIMEOUT_S", 0.05)
    engine = PolicyEngine(
        [RulePack.model_construct(name="t", description="t", rules=[slow_rule()])]
    )
    cases = [Case(id="slow", input="q"), Case(id="fine", input="q")]
    outputs = [Output("slow", "a" * 40 + "!"), Output("fine", "b")]
    start = time.perf_counter()
    slow, fine = run_scorer("policy_violation", policy_violation(engine=engine), cases, outputs)
    assert time.perf_counter() - start < 5
    assert slow.error is not None
    assert "rule 'custom.slow': its pattern took more than 0.05 s" in slow.error
    assert fine.error is None
    assert fine.passed


def test_a_risky_pattern_in_a_json_schema_is_refused(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"ref": {"type": "string", "pattern": "(a+)+$"}}}
    path = write_pack(
        tmp_path,
        "  - id: custom.json\n    kind: json_schema\n    severity: low\n    message: m\n"
        f"    json_schema: {json.dumps(schema)}\n",
    )
    [message] = problems(path)
    assert ": rules.0.json_schema: 'json_schema', at properties.ref.pattern: '(a+)+$' risks" in (
        message
    )


def test_json_schema_patterns_run_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rule_module, "PATTERN_TIMEOUT_S", 0.05)
    rule: Any = parse_rule(
        {
            "id": "custom.json",
            "kind": "json_schema",
            "severity": "low",
            "message": "m",
            "json_schema": {"type": "object"},
        }
    )
    slow = rule.model_copy(update={"json_schema": {"type": "string", "pattern": "^(a|a)*$"}})
    engine = PolicyEngine([RulePack.model_construct(name="t", description="t", rules=[slow])])
    with pytest.raises(rule_module.PatternTimeout):
        engine.check(json.dumps("a" * 40 + "!"))
    assert [v.rule for v in engine.check(json.dumps("b"))] == ["custom.json"]


def test_a_schema_file_outside_the_packs_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    folder = tmp_path / "rules"
    folder.mkdir()
    path = write_pack(
        folder,
        "  - id: custom.json\n    kind: json_schema\n    severity: low\n    message: m\n"
        "    schema_file: ../secret.json\n",
    )
    [message] = problems(path)
    assert message.startswith(f"{path}:8: rules.0.schema_file: '../secret.json' leads outside")


def test_a_repeated_key_or_a_nan_in_a_rule_pack_is_refused(tmp_path: Path) -> None:
    path = write_pack(
        tmp_path,
        "  - id: custom.topic\n    kind: topic\n    severity: low\n    message: m\n"
        "    examples: [refunds]\n    threshold: .nan\n    severity: high\n",
    )
    assert problems(path) == [
        f"{path}:9: rules.0.threshold: '.nan' is not a finite number; give a real number",
        f"{path}:10: rules.0.severity: duplicate key 'severity' (first at line 6, again at line "
        "10); YAML would silently keep only the last value, so remove one",
    ]


def test_a_risky_pattern_in_a_contracts_tool_schema_is_refused() -> None:
    arguments = parse_rule(
        {"id": "custom.args", "kind": "tool_arguments", "severity": "high", "message": "m"}
    )
    pack = RulePack(name="t", description="t", rules=[arguments])
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(\\d+)*x"}}}
    with pytest.raises(UserError) as info:
        PolicyEngine([pack], tool_schemas={"refund": schema}, source="policies/agent.yaml")
    [message] = [str(p) for p in info.value.problems]
    assert message.startswith("policies/agent.yaml: rule custom.args: evals.policy.tool_schemas")
    assert "refund, at properties.id.pattern: '^(\\d+)*x' risks catastrophic backtracking" in (
        message
    )
