"""Policy rules: rule packs, detectors with checksums, and the engine that applies them."""

from evals.policy._detectors import (
    Match,
    find_cards,
    find_emails,
    find_ibans,
    find_phones,
    find_phrases,
    iban_valid,
    luhn_valid,
    mask,
)
from evals.policy._engine import PolicyEngine, Violation
from evals.policy._pack import Rule, RuleKind, RulePack, Severity, load_rule_pack

__all__ = [
    "Match",
    "PolicyEngine",
    "Rule",
    "RuleKind",
    "RulePack",
    "Severity",
    "Violation",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_phones",
    "find_phrases",
    "iban_valid",
    "load_rule_pack",
    "luhn_valid",
    "mask",
]
