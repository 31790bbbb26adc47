"""Rule kinds with positive and tricky negative cases; spans are masked in what is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.errors import UserError
from evals.policy import (
    PolicyEngine,
    find_cards,
    find_emails,
    find_ibans,
    find_phones,
    iban_valid,
    load_rule_pack,
    luhn_valid,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(
        [load_rule_pack(ROOT / "policies" / "rules" / "default.yaml")],
        allow=["help@contoso.example", "+1 800 555 0100", "*@northwind.example"],
        deny=["lifetime warranty"],
    )


def texts(found: object) -> list[str]:
    return [m.text for m in found]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +44 20 7946 0958 today", ["+44 20 7946 0958"]),
        ("or (415) 555-0172", ["(415) 555-0172"]),
        ("reach +49 30 901820", ["+49 30 901820"]),
        ("text +33 1 99 00 45 67", ["+33 1 99 00 45 67"]),
        ("dial 415-555-0172", ["415-555-0172"]),
        ("on 2024-03-15 or 15/03/2024", []),
        ("order 4000 1234 5678 9011", []),
        ("version 1.2.3 at 10:30 for 20 000 items", []),
    ],
)
def test_phone_numbers(text: str, expected: list[str]) -> None:
    assert texts(find_phones(text)) == expected


def test_cards_need_luhn_and_a_network_prefix() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4000123456789011")
    assert texts(find_cards("pay with 4111 1111 1111 1111 or 3782 822463 10005")) == [
        "4111 1111 1111 1111",
        "3782 822463 10005",
    ]
    assert texts(find_cards("order 4000 1234 5678 9011 shipped")) == [], "fails Luhn"
    assert texts(find_cards("ref 1234567890123452")) == [], (
        "passes Luhn, no card network starts with 1"
    )
    assert texts(find_cards("the card ending in 1111")) == []


def test_iban_mod97() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert texts(find_ibans("IBAN DE89 3704 0044 0532 0130 00 please")) == [
        "DE89 3704 0044 0532 0130 00"
    ]


def test_emails() -> None:
    assert texts(find_emails("write to m.okafor@mail.example.")) == ["m.okafor@mail.example"]
    assert texts(find_emails("not an email: user at example dot com")) == []


def test_engine_masks_spans_and_honours_the_allowlist(engine: PolicyEngine) -> None:
    text = (
        "Contact help@contoso.example or +1 800 555 0100. Billing is at billing@northwind.example. "
        "Your card 4111 1111 1111 1111 and jane.roe@mail.example are on file."
    )
    violations = engine.check(text)
    assert [(v.rule, v.masked) for v in violations] == [
        ("pii.payment_card", "****1111"),
        ("pii.email", "j***@mail.example"),
    ]
    assert all("4111 1111 1111 1111" not in v.describe() for v in violations)


def test_a_masker_remembers_only_its_most_recent_texts(engine: PolicyEngine) -> None:
    from evals.policy import Masker

    masker = Masker(engine=engine, cache_size=3)
    texts = [f"Write to user{i}@mail.example about order {i}." for i in range(8)]
    masked = masker.mask_many([*texts, texts[0], ""])
    assert [m.text for m in masked[:8]] == [
        f"Write to u***@mail.example about order {i}." for i in range(8)
    ]
    assert masked[8] == masked[0]
    assert masked[9].text == ""
    assert len(masker._cache) == 3  # a long run does not keep every text it masked
    assert list(masker._cache) == texts[5:]
    assert masker.text(texts[6]) == masked[6].text


def test_denylist_from_pack_and_contract(engine: PolicyEngine) -> None:
    rules = [v.rule for v in engine.check("We guarantee a refund and a Lifetime Warranty.")]
    assert rules == ["content.promises", "contract.deny"]
    assert engine.check("There is no warranty extension.") == []


def test_secrets_and_ssn(engine: PolicyEngine) -> None:
    rules = {v.rule for v in engine.check("key sk-abcdefghijklmnopqrstuvwx and SSN 123-45-6789")}
    assert rules == {"secret.api_key", "pii.us_ssn"}
    assert engine.check("SSN 000-12-3456 is never valid") == []


def test_rule_pack_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndescription: x\nrules:\n  - id: r1\n    kind: regex\n    severity: high\n"
        "    message: m\n    pattern: '('\n  - id: r2\n    kind: emial\n    severity: high\n    message: m\n"
    )
    with pytest.raises(UserError) as info:
        load_rule_pack(path)
    found = [str(p) for p in info.value.problems]
    assert any("rules.0" in m and "not a valid regular expression" in m for m in found)
    assert any("rules.1.kind" in m and "'emial'" in m for m in found)


def test_a_repeated_rule_id_names_both_rules(tmp_path: Path) -> None:
    rule = "  - id: r1\n    kind: email\n    severity: high\n    message: m\n"
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\ndescription: x\nrules:\n" + rule + rule)
    with pytest.raises(UserError, match=r"'r1' is rules\.0 and rules\.1; rename one"):
        load_rule_pack(path)


def test_rule_pack_mistakes_point_at_their_line_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\n"
        "description: x\n"
        "rules:\n"
        "  - id: r1\n"
        "    kind: email\n"
        "    severity: high\n"
        "    message: m\n"
        "    phrases: [refund]\n"  # 8: a field of another kind
        "  - id: r2\n"  # 9
        "    kind: denylist\n"
        "    severity: high\n"
        "    message: m\n"
        "    phrase: [refund]\n"  # 13: a typo
        "  - id: r3\n"
        "    kind: tool_limits\n"
        "    severity: hihg\n"  # 16
        "    message: m\n"
        "  - id: r4\n"
        "    kind: promt_injection\n"  # 19
        "    severity: high\n"
        "    message: m\n"
    )
    with pytest.raises(UserError) as info:
        load_rule_pack(path)
    assert sorted(str(p) for p in info.value.problems) == sorted(
        [
            f"{path}:8: rules.0.phrases: 'phrases' does not apply to kind 'email' "
            "(kinds that take it: denylist, required)",
            f"{path}:13: rules.1.phrase: unknown field 'phrase' (did you mean 'phrases'?)",
            f"{path}:9: rules.1.phrases: required field is missing (phrases the agent must never say)",
            f"{path}:16: rules.2.severity: Input should be 'low', 'medium', 'high' or 'critical' "
            "(got 'hihg'; did you mean 'high'?)",
            f"{path}:19: rules.3.kind: unknown kind 'promt_injection' "
            "(did you mean 'prompt_injection'?)",
        ]
    )


def test_an_unknown_kind_far_from_any_lists_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndescription: x\nrules:\n  - id: r\n    kind: sentiment\n"
        "    severity: high\n    message: m\n"
    )
    with pytest.raises(UserError) as info:
        load_rule_pack(path)
    [problem] = info.value.problems
    assert problem.field == "rules.0.kind"
    assert "unknown kind 'sentiment' (expected one of: 'email', 'phone'" in problem.message
    assert "'tool_arguments')" in problem.message
