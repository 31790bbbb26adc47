"""Text evidence for the offline judge: sentences, content words, numbers and names."""

from __future__ import annotations

import re

__all__ = ["WORD", "content_words", "names", "numbers", "split_sentences", "stem"]

_ABBREVIATIONS = (
    "e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "prof.", "inc.", "ltd.", "co.",
    "no.", "approx.", "u.s.", "u.k.", "st.", "jan.", "feb.", "mar.", "apr.", "jun.", "jul.",
    "aug.", "sep.", "sept.", "oct.", "nov.", "dec.",
)  # fmt: skip
_PROTECT = re.compile(
    r"(?<![\w.])(?:" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + ")", re.IGNORECASE
)
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_BULLET = re.compile(r"\n\s*(?:[-*•]|\d+[.)])\s+|\n{2,}|\n(?=[A-Z])")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "nor",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "may",
        "might",
        "must",
        "shall",
        "us",
        "let",
        "get",
        "got",
        "via",
        "per",
        "within",
        "without",
        "upon",
        "onto",
        "yes",
        "ok",
        "okay",
        "please",
        "thanks",
        "thank",
        "sure",
        "happy",
        "help",
        "glad",
        "hi",
        "hello",
        "dear",
    ]
)
NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nothing", "neither", "nor", "cannot", "without"}
)

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "once": "1", "twice": "2", "single": "1", "double": "2",
}  # fmt: skip
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)?%?")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:\.\d+)?")
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z]+(?:[ -][A-Z][a-zA-Z]+)*\b")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping abbreviations and decimals intact."""
    protected = _PROTECT.sub(lambda m: m.group(0).replace(".", "\x00"), text)
    pieces: list[str] = []
    for block in _BULLET.split(protected):
        pieces.extend(_SPLIT.split(block))
    sentences = []
    for piece in pieces:
        restored = piece.replace("\x00", ".").strip()
        if restored:
            sentences.append(restored)
    return sentences


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match refund/refunds/refunded."""
    word = word.lower().replace("'", "")
    for suffix in ("ing", "edly", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Stemmed words that carry meaning (no stopwords), number words mapped to digits."""
    words = []
    for match in WORD.finditer(text):
        word = match.group(0).lower()
        word = _NUMBER_WORDS.get(word, word)
        if word not in STOPWORDS and word not in NEGATIONS:
            words.append(stem(word))
    return words


def _normalise_number(token: str) -> str:
    value = token.strip("$€£%").replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:g}"


def numbers(text: str) -> set[str]:
    """Numbers in the text, normalised (``$1,200.00`` → ``1200``), number words included."""
    found = {_normalise_number(m.group(0)) for m in _NUMBER.finditer(text)}
    for match in WORD.finditer(text):
        digit = _NUMBER_WORDS.get(match.group(0).lower())
        if digit is not None and digit not in {"1", "2"}:
            found.add(digit)
    return found


def names(text: str) -> set[str]:
    """Capitalised words and phrases that are not the first word of a sentence."""
    found: set[str] = set()
    for sentence in split_sentences(text):
        for match in _CAPITALISED.finditer(sentence):
            phrase = match.group(0)
            if match.start() == 0 or sentence[: match.start()].rstrip().endswith((":", '"')):
                words = phrase.split()
                if len(words) == 1:
                    continue
                phrase = " ".join(words[1:])
            if phrase.lower() in STOPWORDS or phrase in {"I", "OK"}:
                continue
            found.add(phrase)
    return found
