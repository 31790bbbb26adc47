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
from evals.policy._engine import (
    Classifier,
    Embedder,
    NerBackend,
    PolicyEngine,
    Subject,
    Violation,
    tool_schemas_from_files,
)
from evals.policy._ids import (
    bsn_valid,
    codice_fiscale_valid,
    find_ip_addresses,
    find_national_ids,
    verhoeff_valid,
)
from evals.policy._injection import INJECTION_PATTERNS, find_injections
from evals.policy._labelled import (
    CheckedRow,
    PolicyRow,
    PolicyRowsSummary,
    check_policy_rows,
    default_scopes,
    read_policy_rows,
)
from evals.policy._ner import Entity, find_addresses, find_dates_of_birth, find_person_names
from evals.policy._pack import (
    NATIONAL_IDS,
    SECRET_SHAPES,
    Rule,
    RuleKind,
    RulePack,
    Scope,
    Severity,
    load_rule_pack,
)
from evals.policy._secrets import find_api_keys, find_private_keys
from evals.policy._trajectory import ToolCall, normalise_tool_calls

__all__ = [
    "INJECTION_PATTERNS",
    "NATIONAL_IDS",
    "SECRET_SHAPES",
    "CheckedRow",
    "Classifier",
    "Embedder",
    "Entity",
    "Match",
    "NerBackend",
    "PolicyEngine",
    "PolicyRow",
    "PolicyRowsSummary",
    "Rule",
    "RuleKind",
    "RulePack",
    "Scope",
    "Severity",
    "Subject",
    "ToolCall",
    "Violation",
    "bsn_valid",
    "check_policy_rows",
    "codice_fiscale_valid",
    "default_scopes",
    "find_addresses",
    "find_api_keys",
    "find_cards",
    "find_dates_of_birth",
    "find_emails",
    "find_ibans",
    "find_injections",
    "find_ip_addresses",
    "find_national_ids",
    "find_person_names",
    "find_phones",
    "find_phrases",
    "find_private_keys",
    "iban_valid",
    "load_rule_pack",
    "luhn_valid",
    "mask",
    "normalise_tool_calls",
    "read_policy_rows",
    "tool_schemas_from_files",
    "verhoeff_valid",
]
