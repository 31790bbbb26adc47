"""National identity numbers and IP addresses, each with the check that keeps false alarms down.

Where a number has a checksum (Luhn, the Dutch 11-test, mod 23, mod 97, Verhoeff, the Italian
check letter) a candidate must pass it. Where it is a bare digit run that a checksum passes by
chance one time in ten or eleven (Canadian SIN, Dutch BSN, US SSN without dashes), the number
must also follow a word that names it, so an order number does not become an identity number.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence

from evals.policy._detectors import Match, luhn_valid

__all__ = ["NATIONAL_ID_FINDERS", "find_ip_addresses", "find_national_ids"]

_CUE_WINDOW = 40


def _cued(text: str, start: int, cue: re.Pattern[str]) -> bool:
    return cue.search(text[max(0, start - _CUE_WINDOW) : start]) is not None


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


# --- United States: social security number (no checksum; the SSA's structural rules) --------

_SSN_DASHED = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_SSN_BARE = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3} ?(?!00)\d{2} ?(?!0000)\d{4}(?![\d-])")
_SSN_CUE = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)\b")


def _us_ssn(text: str) -> Iterator[Match]:
    seen: set[int] = set()
    for m in _SSN_DASHED.finditer(text):
        seen.add(m.start())
        yield Match(m.start(), m.end(), m.group(0))
    for m in _SSN_BARE.finditer(text):
        if m.start() not in seen and _cued(text, m.start(), _SSN_CUE):
            yield Match(m.start(), m.end(), m.group(0))


# --- Canada: social insurance number (Luhn) -------------------------------------------------

_SIN = re.compile(r"(?<![\d-])[1-79]\d{2}([ -]?)\d{3}\1\d{3}(?![\d-])")
_SIN_CUE = re.compile(r"(?i)\b(?:sin|social insurance(?: number| no\.?)?|nas)\b")


def _ca_sin(text: str) -> Iterator[Match]:
    for m in _SIN.finditer(text):
        digits = _digits(m.group(0))
        if luhn_valid(digits) and _cued(text, m.start(), _SIN_CUE):
            yield Match(m.start(), m.end(), m.group(0))


# --- United Kingdom: national insurance number (format only; it has no check digit) ---------

_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TY-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)


def _uk_nino(text: str) -> Iterator[Match]:
    for m in _NINO.finditer(text):
        yield Match(m.start(), m.end(), m.group(0))


# --- Netherlands: burgerservicenummer (11-test) ---------------------------------------------

_BSN = re.compile(r"(?<![\d.-])\d{4}[ .]?\d{2}[ .]?\d{3}(?![\d.-])|(?<![\d.-])\d{9}(?![\d.-])")
_BSN_CUE = re.compile(r"(?i)\b(?:bsn|burgerservicenummer|sofinummer|sofi-nummer)\b")


def bsn_valid(digits: str) -> bool:
    """The Dutch 11-test: weights 9..2 and -1 over nine digits sum to a multiple of 11."""
    if len(digits) != 9 or digits == "0" * 9:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    return (total - int(digits[8])) % 11 == 0


def _nl_bsn(text: str) -> Iterator[Match]:
    for m in _BSN.finditer(text):
        if bsn_valid(_digits(m.group(0))) and _cued(text, m.start(), _BSN_CUE):
            yield Match(m.start(), m.end(), m.group(0))


# --- Spain: DNI and NIE (check letter, mod 23) ----------------------------------------------

_DNI = re.compile(r"\b(?:([XYZ])[- ]?)?(\d{7,8})[- ]?([A-HJ-NP-TV-Z])\b")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _es_dni(text: str) -> Iterator[Match]:
    for m in _DNI.finditer(text):
        prefix, number, letter = m.groups()
        if prefix:
            if len(number) != 7:
                continue
            number = str("XYZ".index(prefix)) + number
        elif len(number) != 8:
            continue
        if _DNI_LETTERS[int(number) % 23] == letter:
            yield Match(m.start(), m.end(), m.group(0))


# --- France: NIR / numéro de sécurité sociale (key = 97 − number mod 97) ---------------------

_NIR = re.compile(
    r"(?<![\dA-Z])([12])[ ]?(\d{2})[ ]?(0[1-9]|1[0-2]|[2-9]\d)[ ]?(\d{2}|2[AB])[ ]?"
    r"(\d{3})[ ]?(\d{3})[ ]?(\d{2})(?![\dA-Z])"
)


def _fr_nir(text: str) -> Iterator[Match]:
    for m in _NIR.finditer(text):
        sex, year, month, dept, commune, order, key = m.groups()
        # Corsica's departments 2A/2B count as 19/18 for the key.
        dept_num = {"2A": "19", "2B": "18"}.get(dept, dept)
        number = int(sex + year + month + dept_num + commune + order)
        if 97 - number % 97 == int(key):
            yield Match(m.start(), m.end(), m.group(0))


# --- Italy: codice fiscale (check letter) ---------------------------------------------------

_CF = re.compile(r"\b[A-Z]{6}\d{2}[A-EHLMPRST]\d{2}[A-Z]\d{3}[A-Z]\b")
_CF_ODD = [
    1,
    0,
    5,
    7,
    9,
    13,
    15,
    17,
    19,
    21,
    2,
    4,
    18,
    20,
    11,
    3,
    6,
    8,
    12,
    14,
    16,
    10,
    22,
    25,
    24,
    23,
]


def codice_fiscale_valid(code: str) -> bool:
    """The Italian fiscal code's check letter (odd and even positions weighted differently)."""
    total = 0
    for i, char in enumerate(code[:15]):
        value = int(char) if char.isdigit() else ord(char) - ord("A")
        total += _CF_ODD[value] if i % 2 == 0 else value
    return chr(ord("A") + total % 26) == code[15]


def _it_cf(text: str) -> Iterator[Match]:
    for m in _CF.finditer(text):
        if codice_fiscale_valid(m.group(0)):
            yield Match(m.start(), m.end(), m.group(0))


# --- India: Aadhaar (Verhoeff) --------------------------------------------------------------

_AADHAAR = re.compile(r"(?<![\d-])[2-9]\d{3}([ -]?)\d{4}\1\d{4}(?![\d-])")
_AADHAAR_CUE = re.compile(r"(?i)\b(?:aadhaar|aadhar|uidai|uid)\b")
_V_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_V_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_valid(digits: str) -> bool:
    """The Verhoeff checksum (catches every single-digit error and adjacent swap)."""
    check = 0
    for i, char in enumerate(reversed(digits)):
        check = _V_D[check][_V_P[i % 8][int(char)]]
    return check == 0


def _in_aadhaar(text: str) -> Iterator[Match]:
    for m in _AADHAAR.finditer(text):
        digits = _digits(m.group(0))
        # Twelve digits in three groups of four also look like a card fragment; the
        # checksum alone passes one number in ten, so bare runs need the word "Aadhaar".
        if verhoeff_valid(digits) and (m.group(1) or _cued(text, m.start(), _AADHAAR_CUE)):
            yield Match(m.start(), m.end(), m.group(0))


# --- United States: driver's licence (formats differ by state; only after the words) --------

_DL = re.compile(
    r"(?i)\bdriver'?s?'? licen[cs]e(?: number| no\.?| #)?\s*(?:is|:)?\s*((?-i:[A-Z]{0,2})\d[\dA-Z-]{4,18})\b"
)


def _us_drivers_license(text: str) -> Iterator[Match]:
    for m in _DL.finditer(text):
        yield Match(m.start(1), m.end(1), m.group(1))


NATIONAL_ID_FINDERS: dict[str, Callable[[str], Iterator[Match]]] = {
    "us_ssn": _us_ssn,
    "ca_sin": _ca_sin,
    "uk_nino": _uk_nino,
    "nl_bsn": _nl_bsn,
    "es_dni": _es_dni,
    "fr_nir": _fr_nir,
    "it_cf": _it_cf,
    "in_aadhaar": _in_aadhaar,
    "us_drivers_license": _us_drivers_license,
}
"""National id name → finder."""


def find_national_ids(text: str, countries: Sequence[str] = ()) -> Iterator[Match]:
    """National identity numbers of the given kinds (all known kinds when empty)."""
    for name in countries or NATIONAL_ID_FINDERS:
        yield from NATIONAL_ID_FINDERS[name](text)


# --- IP addresses ---------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_VERSION_CUE = re.compile(r"(?i)(?:\bv|version|release|build)\s*$")


def find_ip_addresses(text: str) -> Iterator[Match]:
    """Public IPv4 and IPv6 addresses.

    Private, loopback and documentation ranges identify no one, and "version 1.2.3.4" is not
    an address.
    """
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(text):
            candidate = m.group(0)
            if candidate.count(":") >= 2 and not re.search(r"[0-9A-Fa-f]{2}", candidate):
                continue
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                continue
            if not address.is_global or _VERSION_CUE.search(
                text[max(0, m.start() - 12) : m.start()]
            ):
                continue
            yield Match(m.start(), m.end(), candidate)
