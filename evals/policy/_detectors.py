"""Detectors for personal data and phrases, with the checksums that keep false alarms down."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Match",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_phones",
    "find_phrases",
    "find_regex",
    "iban_valid",
    "luhn_valid",
    "mask",
]


@dataclass(frozen=True)
class Match:
    """A span of the text that a detector flagged."""

    start: int
    end: int
    text: str


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])")
_CARD_CUE = re.compile(r"(?i)\b(?:card|maestro|debit|credit)\b[^\n\d]{0,30}$")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w+/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,8}){1,5}(?![\w/-])"
    r"|(?<![\w+/])\+\d{8,15}(?![\w/])"
)
_DATE_LIKE = re.compile(r"^\d{4}[-. ]\d{1,2}[-. ]\d{1,2}$|^\d{1,2}[-. ]\d{1,2}[-. ]\d{2,4}$")
_DATE_PREFIX = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})\b")
"""A date at the start of a candidate ("15.03.2024 10:30" reads as digits and separators)."""
_PHONE_CUE = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|calling|texts?|sms|messages?|fax|whatsapp|"
    r"number|dial|reach|answering|contact)\b[^\n\d]{0,20}$"
)
_SHORT_PHONE = re.compile(r"(?<![\w+/.-])\(?\d{2,4}\)?(?:[ .-]\d{2,6}){1,3}(?![\w/.-]|\.\d)")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    """Issuer prefixes and lengths of the major card networks."""
    n = len(digits)
    if digits[0] == "4":
        return n in (13, 16, 19)
    two, four = int(digits[:2]), int(digits[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649:
        return n in (16, 19)
    if two == 35:
        return n in (16, 19)
    if two in (36, 38, 30):
        return n == 14
    if digits.startswith(("1800", "2131")):
        return n == 15  # JCB's older 15-digit numbers
    if two in (50, 56, 57, 58) or digits[0] == "6":
        return 12 <= n <= 19  # Maestro
    return False


_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check (and the country's length where we know it)."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def find_emails(text: str) -> Iterator[Match]:
    """Email addresses."""
    for m in _EMAIL.finditer(text):
        yield Match(m.start(), m.end(), m.group(0))


def find_cards(text: str) -> Iterator[Match]:
    """Payment card numbers: 12–19 digits with a network prefix that pass the Luhn check."""
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 12 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_valid(digits):
            # 12-digit Maestro numbers look like order numbers: only with a card word before.
            if len(digits) == 12 and not _CARD_CUE.search(text[max(0, m.start() - 40) : m.start()]):
                continue
            yield Match(m.start(), m.end(), m.group(0))


def find_ibans(text: str) -> Iterator[Match]:
    """IBANs that pass the mod-97 check."""
    for m in _IBAN.finditer(text):
        candidate = m.group(0)
        # The pattern may run on into a following short word ("… 7034 BIC", "… 1332 EUR"):
        # drop trailing space-separated groups until the check passes.
        while True:
            if iban_valid(candidate):
                yield Match(m.start(), m.start() + len(candidate), candidate)
                break
            head, space, _ = candidate.rpartition(" ")
            if not space or len(head.replace(" ", "")) < 15:
                break
            candidate = head


def find_phones(text: str) -> Iterator[Match]:
    """Phone numbers in international and common national formats.

    Dates and card-like digit runs are excluded.
    """
    found: list[tuple[int, int]] = []
    for m in _PHONE.finditer(text):
        candidate = m.group(0)
        digits = re.sub(r"\D", "", candidate)
        international = candidate.startswith("+")
        if _DATE_LIKE.match(candidate) or _DATE_PREFIX.match(candidate):
            continue
        if international:
            if 8 <= len(digits) <= 15:
                yield Match(m.start(), m.end(), candidate)
            continue
        groups = re.split(r"[ .()-]+", candidate.strip("()"))
        groups = [g for g in groups if g]
        # National numbers: 10-11 digits in 2+ groups, not four equal blocks of 4 (card-like).
        if 10 <= len(digits) <= 11 and len(groups) >= 2 and not all(len(g) == 4 for g in groups):
            found.append((m.start(), m.end()))
            yield Match(m.start(), m.end(), candidate)
    # Shorter national numbers (8-9 digits, "699 956 915") only where a word says it is one.
    for m in _SHORT_PHONE.finditer(text):
        if any(m.start() < b and m.end() > a for a, b in found):
            continue
        digits = re.sub(r"\D", "", m.group(0))
        cued = _PHONE_CUE.search(text[max(0, m.start() - 40) : m.start()]) is not None
        if 8 <= len(digits) <= 11 and not _DATE_LIKE.match(m.group(0)) and cued:
            yield Match(m.start(), m.end(), m.group(0))


def find_regex(text: str, pattern: re.Pattern[str]) -> Iterator[Match]:
    """Spans a configured regular expression matches."""
    for m in pattern.finditer(text):
        if m.end() > m.start():
            yield Match(m.start(), m.end(), m.group(0))


def find_phrases(text: str, phrases: list[str]) -> Iterator[Match]:
    """Whole-word, case-insensitive occurrences of any phrase."""
    if not phrases:
        return
    pattern = re.compile(
        r"(?<!\w)(?:"
        + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
        + r")(?!\w)",
        re.IGNORECASE,
    )
    yield from find_regex(text, pattern)


def mask(kind: str, value: str) -> str:
    """A masked form safe to store: enough to recognise the kind, not the value."""
    if kind == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"\D", "", value)
    if kind in {"payment_card", "iban", "national_id"} and len(digits) >= 4:
        return f"{'*' * 4}{digits[-4:] if kind != 'national_id' else digits[-2:]}"
    if kind == "phone" and len(digits) >= 4:
        return f"{'*' * 4}{digits[-2:]}"
    if kind == "person_name":
        return " ".join(f"{w[:1]}***" for w in value.split()) or "***"
    if kind == "ip_address":
        separator = ":" if ":" in value else "."
        return value.split(separator)[0] + separator + "***"
    if kind == "private_key":
        header = value[:10] if value.startswith("-----BEGIN") else ""
        return f"{header}*** ({len(value)} chars)"
    if kind == "api_key":
        # A long token keeps its vendor prefix ("sk-p", "ghp_", "AKIA"); a short secret, such
        # as a password, keeps nothing.
        prefix = value[:4] if len(value) >= 20 else ""
        return f"{prefix}*** ({len(value)} chars)"
    if kind in {"address", "date_of_birth"}:
        return f"*** ({len(value)} chars)"
    if kind in {"denylist"}:
        return value
    return f"{value[:1]}***" if value else value
