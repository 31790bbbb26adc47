"""Text evidence shared by the judges: sentences, words, content words, numbers and names."""

from __future__ import annotations

import re

__all__ = [
    "COURTESY",
    "NEGATIONS",
    "STOPWORDS",
    "WORD",
    "content_words",
    "is_content",
    "names",
    "normalise_word",
    "numbers",
    "split_sentences",
    "stem",
]

_ABBREVIATIONS = (
    "e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "prof.", "inc.", "ltd.", "co.",
    "no.", "approx.", "u.s.", "u.k.", "st.", "jan.", "feb.", "mar.", "apr.", "jun.", "jul.",
    "aug.", "sep.", "sept.", "oct.", "nov.", "dec.",
)  # fmt: skip
_PROTECT = re.compile(
    r"(?<![\w.])(?:" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + ")", re.IGNORECASE
)
# A sentence ends at . ! ? before a capital or digit; also at "word.Next" without a space,
# which scraped documents often have.
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[a-z]\.)(?=[A-Z][a-z])")
_BULLET = re.compile(r"\n\s*(?:[-*•]|\d+[.)])\s+|\n{2,}|\n(?=[A-Z])")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:[.,]\d+)*")
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z]+(?:[ -][A-Z][a-zA-Z]+)*\b")
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)?%?")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves also may might must
    shall us let get got via per within upon onto yes ok okay please thanks thank sure
    hi hello dear s t 's said says say
    i'm i've i'll i'd you're you've you'll you'd we're we've we'll we'd they're they've they'll
    they'd it's it'll that's there's here's what's who's let's he's she's""".split()  # noqa: SIM905
)
NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nothing",
        "neither",
        "nor",
        "cannot",
        "without",
        "n't",
        "nobody",
        "nowhere",
    ]
)
COURTESY = frozenset(
    """happy help helps helping glad sorry welcome great question questions hope assist
    assistance reach reaching anything else feel free let know day wonderful nice
    appreciate patience understanding afraid unfortunately apologies apologise apologize
    mix-up inconvenience""".split()  # noqa: SIM905
)
"""Words of pleasantries ("Happy to help!"): a sentence made only of these states nothing."""

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
}  # fmt: skip


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping abbreviations and decimals intact."""
    protected = _PROTECT.sub(lambda m: m.group(0).replace(".", "\x00"), text)
    sentences = []
    for block in _BULLET.split(protected):
        for piece in _SPLIT.split(block):
            if piece and piece.strip():
                sentences.append(piece.replace("\x00", ".").strip())
    return sentences


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match refund/refunds/refunded."""
    word = word.lower().replace("'", "")
    for suffix in ("ing", "edly", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def normalise_word(word: str) -> str:
    """Lower-case, number words as digits, thousands separators dropped, any "n't" as one form."""
    lowered = word.lower()
    if lowered.endswith("n't"):
        return "n't"
    return _NUMBER_WORDS.get(lowered, lowered).replace(",", "")


def is_content(word: str) -> bool:
    """A normalised word that carries meaning: not a stopword or negation, 2+ letters or a digit."""
    return word not in STOPWORDS and word not in NEGATIONS and (len(word) > 1 or word.isdigit())


def content_words(text: str) -> list[str]:
    """Stemmed content words of a text, in order."""
    words = (normalise_word(m.group(0)) for m in WORD.finditer(text))
    return [stem(w) for w in words if is_content(w)]


def numbers(text: str) -> set[str]:
    """Numbers in the text, normalised (``$1,200.00`` → ``1200``)."""
    found = set()
    for match in _NUMBER.finditer(text):
        value = match.group(0).strip("$€£%").replace(",", "")
        try:
            found.add(f"{float(value):g}")
        except ValueError:
            found.add(value)
    return found


def names(text: str) -> set[str]:
    """Capitalised words and phrases that are not merely sentence-initial (lower-cased)."""
    found: set[str] = set()
    for sentence in split_sentences(text):
        for match in _CAPITALISED.finditer(sentence):
            phrase = match.group(0)
            if match.start() == 0:
                words = phrase.split()
                if len(words) == 1:
                    continue
                phrase = " ".join(words[1:])
            if phrase.lower() in STOPWORDS or phrase in {"I", "OK"}:
                continue
            found.add(phrase.lower())
    return found
