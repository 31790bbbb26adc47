r"""Word-level evidence for the offline judge: contextual word vectors and support features.

A text becomes words with one contextual vector each (the normalised mean of the model's
wordpiece vectors for that word, computed with its sentence neighbours in view). A claim is
then compared with its context word by word:

============== ===== ====================================================================
feature        dir   definition
============== ===== ====================================================================
win_cover      \+    mean over the claim's content words of the best cosine to a word of
                     the best window (two adjacent context sentences)
win_new        −     share of the claim's content-word stems absent from that window
win_mono_mean  \+    in-order alignment of claim words to window words (maximising
                     Σ(cos − 0.35)); mean aligned cosine, unaligned words counting 0
align_mean     \+    mean over claim content words of the best cosine to any context word
new_word       −     share of claim content-word stems absent from the whole context
new_name_num   −     names and numbers in the claim that the context does not contain
============== ===== ====================================================================

``dir`` says which way is evidence of support; it is fixed in advance, never fitted.
See docs/design/grounding-judge.md for how these were chosen and how they are combined.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from evals.judges._base import plan_claims
from evals.judges._text import (
    NEGATIONS,
    WORD,
    is_content,
    names,
    normalise_word,
    numbers,
    split_sentences,
    stem,
)

__all__ = [
    "FEATURES",
    "ClaimEvidence",
    "EncodedContext",
    "EncodedText",
    "TokenEncoder",
    "WordEncoder",
    "claim_evidence",
    "encoded_claims",
]

FEATURES: dict[str, int] = {
    "win_cover": +1,
    "win_new": -1,
    "win_mono_mean": +1,
    "align_mean": +1,
    "new_word": -1,
    "new_name_num": -1,
}
"""Feature → direction (+1: higher means more supported)."""

MONO_MARGIN = 0.35
"""A claim word aligns in order with a window word only where their cosine exceeds this."""
MAX_PIECES = 200
"""Wordpieces per encoded chunk: whole sentences are grouped up to this size."""


class TokenEncoder(Protocol):
    """What the features need from a model: wordpiece vectors with character offsets."""

    def count_pieces(self, texts: Sequence[str]) -> list[int]:
        """Wordpieces per text (no special tokens)."""
        ...

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: ``(vectors (n, d), offsets (n, 2))`` of its wordpieces."""
        ...


@dataclass(frozen=True)
class EncodedText:
    """A text as words with contextual vectors."""

    text: str
    words: list[str]
    """Normalised surface forms."""
    stems: list[str]
    content: np.ndarray
    """Boolean per word: a content word."""
    vecs: np.ndarray
    """Unit vectors, one per word."""
    sent: np.ndarray
    """Sentence index per word."""
    sentences: list[str]

    def subset(self, index: np.ndarray) -> EncodedText:
        """The words at ``index``."""
        return EncodedText(
            self.text,
            [self.words[i] for i in index],
            [self.stems[i] for i in index],
            self.content[index],
            self.vecs[index],
            self.sent[index],
            self.sentences,
        )


@dataclass(frozen=True)
class EncodedContext:
    """The passages of one context, concatenated, with what the features look up often."""

    enc: EncodedText
    passage: np.ndarray
    """Passage index per word."""
    sentence_texts: list[str]
    sent_start: np.ndarray
    """Index of the first word of each sentence (words are contiguous per sentence)."""
    stem_set: frozenset[str]
    lowered: str
    numbers: frozenset[str]


def _chunks(counts: Sequence[int], max_pieces: int) -> list[list[int]]:
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, count in enumerate(counts):
        if current and size + count > max_pieces:
            groups.append(current)
            current, size = [], 0
        current.append(i)
        size += count
    if current:
        groups.append(current)
    return groups


def _hard_split(sentence: str, max_words: int = 120) -> list[str]:
    words = sentence.split()
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)] or [
        sentence
    ]


_Chunk = tuple[list[str], np.ndarray, np.ndarray]


def _encode_chunk(chunk: str, pieces: tuple[np.ndarray, np.ndarray]) -> _Chunk:
    vectors, offsets = pieces
    words, starts, ends = [], [], []
    for match in WORD.finditer(chunk):
        words.append(normalise_word(match.group(0)))
        starts.append(match.start())
        ends.append(match.end())
    out = np.zeros((len(words), vectors.shape[1]), np.float32)
    keep = np.zeros(len(words), bool)
    if words:
        start_array, end_array = np.asarray(starts), np.asarray(ends)
        for p in range(len(offsets)):
            j = int(np.searchsorted(start_array, offsets[p][0], side="right")) - 1
            if j >= 0 and offsets[p][0] < end_array[j]:
                out[j] += vectors[p]
                keep[j] = True
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)
    return words, out, keep


class WordEncoder:
    """Encodes texts into words with contextual vectors; chunk results cached (LRU)."""

    def __init__(self, encoder: TokenEncoder, dimension: int, cache_size: int = 20_000) -> None:
        self.encoder = encoder
        self.dimension = dimension
        self._cache: OrderedDict[str, _Chunk] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> list[EncodedText]:
        """Encode many texts in one batched pass of the model."""
        plans = []
        wanted: dict[str, None] = {}
        for text in texts:
            sentences = [part for s in (split_sentences(text) or [text]) for part in _hard_split(s)]
            counts = self.encoder.count_pieces(sentences) if sentences else []
            groups = _chunks(counts, MAX_PIECES)
            chunk_texts = [" ".join(sentences[i] for i in g) for g in groups]
            plans.append((sentences, groups, chunk_texts))
            wanted.update(dict.fromkeys(chunk_texts))
        with self._lock:
            missing = [c for c in wanted if c not in self._cache]
            if missing:
                for chunk, pieces in zip(missing, self.encoder.token_vectors(missing), strict=True):
                    self._cache[chunk] = _encode_chunk(chunk, pieces)
            chunks = {c: self._cache[c] for c in wanted}
            for c in wanted:
                self._cache.move_to_end(c)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return [self._assemble(text, plan, chunks) for text, plan in zip(texts, plans, strict=True)]

    def _assemble(
        self,
        text: str,
        plan: tuple[list[str], list[list[int]], list[str]],
        chunks: dict[str, _Chunk],
    ) -> EncodedText:
        sentences, groups, chunk_texts = plan
        words: list[str] = []
        vectors: list[np.ndarray] = []
        sentence_ids: list[int] = []
        for group, chunk in zip(groups, chunk_texts, strict=True):
            chunk_words, chunk_vectors, keep = chunks[chunk]
            ids = [i for i in group for _ in WORD.finditer(sentences[i])]
            if len(ids) != len(chunk_words):  # joining changed the tokenisation: one id
                ids = [group[0]] * len(chunk_words)
            for k, word in enumerate(chunk_words):
                if keep[k]:
                    words.append(word)
                    vectors.append(chunk_vectors[k])
                    sentence_ids.append(ids[k])
        return EncodedText(
            text=text,
            words=words,
            stems=[stem(w) for w in words],
            content=np.array([is_content(w) for w in words], bool),
            vecs=np.array(vectors, np.float32).reshape(-1, self.dimension),
            sent=np.array(sentence_ids, int),
            sentences=sentences,
        )

    def encode_context(self, passages: Sequence[str]) -> EncodedContext:
        """Encode the passages of one context and join them (sentence ids made global)."""
        encoded = self.encode(list(passages))
        words: list[str] = []
        stems: list[str] = []
        content, vectors, sentence_ids, passage_ids = [], [], [], []
        sentences: list[str] = []
        for p, e in enumerate(encoded):
            words += e.words
            stems += e.stems
            content.append(e.content)
            vectors.append(e.vecs)
            sentence_ids.append(e.sent + len(sentences))
            passage_ids.append(np.full(len(e.words), p))
            sentences += e.sentences
        joined = EncodedText(
            text="\n".join(passages),
            words=words,
            stems=stems,
            content=np.concatenate(content) if content else np.zeros(0, bool),
            vecs=np.concatenate(vectors) if vectors else np.zeros((0, self.dimension), np.float32),
            sent=np.concatenate(sentence_ids) if sentence_ids else np.zeros(0, int),
            sentences=sentences,
        )
        starts = (
            np.flatnonzero(np.r_[True, joined.sent[1:] != joined.sent[:-1]])
            if words
            else np.zeros(0, int)
        )
        return EncodedContext(
            enc=joined,
            passage=np.concatenate(passage_ids) if passage_ids else np.zeros(0, int),
            sentence_texts=sentences,
            sent_start=np.asarray(starts, int),
            stem_set=frozenset(stems),
            lowered=joined.text.lower(),
            numbers=frozenset(numbers(joined.text)),
        )


def encoded_claims(answer: EncodedText) -> list[tuple[str, EncodedText]]:
    """The claims of an encoded answer, each with its words (vectors seen in the whole answer).

    Same cut as :func:`evals.judges.split_claims`; an answer whose only content is shorter
    than a sentence is one claim.
    """
    claims = []
    planned = plan_claims(answer.sentences)
    by_sentence: dict[int, list[tuple[str, bool]]] = {}
    for index, piece, is_claim in planned:
        by_sentence.setdefault(index, []).append((piece, is_claim))
    for index, pieces in by_sentence.items():
        words = np.flatnonzero(answer.sent == index)
        start = 0
        for k, (piece, is_claim) in enumerate(pieces):
            count = len(WORD.findall(piece))
            span = words[start:] if k == len(pieces) - 1 else words[start : start + count]
            start += count
            if is_claim and len(span) and answer.content[span].any():
                claims.append((piece, answer.subset(span)))
    if not claims and answer.content.any() and any(is_claim for _, _, is_claim in planned):
        claims.append((answer.text.strip(), answer.subset(np.arange(len(answer.words)))))
    return claims


def _mono_align(similarity: np.ndarray, margin: float = MONO_MARGIN) -> np.ndarray:
    """In-order alignment of rows to columns maximising Σ(cos − margin); aligned cos per row."""
    n, m = similarity.shape
    gain = similarity - margin
    table = np.zeros((n + 1, m + 1), np.float32)
    for i in range(1, n + 1):
        row = np.maximum(table[i - 1, 1:], table[i - 1, :-1] + gain[i - 1])
        table[i, 1:] = np.maximum.accumulate(np.maximum(row, 0.0))
    out = np.zeros(n, np.float32)
    i, j = n, m
    while i > 0 and j > 0:
        if table[i, j] == table[i, j - 1]:
            j -= 1
        elif table[i, j] == table[i - 1, j]:
            i -= 1
        else:
            out[i - 1] = similarity[i - 1, j - 1]
            i, j = i - 1, j - 1
    return out


def _best_window(sentence_max: np.ndarray, passage: np.ndarray) -> tuple[float, list[int]]:
    """Best window (a sentence and its successor in the same passage) by coverage."""
    n = sentence_max.shape[1]
    coverage = np.full(n, -np.inf)
    paired = np.zeros(n, bool)
    if n > 1:
        paired[:-1] = passage[1:] == passage[:-1]
        pair_cover = np.maximum(sentence_max[:, :-1], sentence_max[:, 1:]).mean(axis=0)
        coverage[:-1][paired[:-1]] = pair_cover[paired[:-1]]
    alone = ~paired & ~np.r_[False, paired[:-1]]
    if alone.any():
        coverage[alone] = sentence_max[:, alone].mean(axis=0)
    k = int(np.argmax(coverage))
    return float(coverage[k]), ([k, k + 1] if paired[k] else [k])


@dataclass(frozen=True)
class ClaimEvidence:
    """The features of one claim and what a reviewer needs to read them."""

    features: dict[str, float]
    window: str
    """The best-matching context window (the supporting or closest passage)."""
    missing_words: list[str]
    """Claim content words absent from the context."""
    missing_names_numbers: list[str]
    missing_numbers: list[str]
    """Numbers in the claim that no context contains (a changed figure)."""
    negation_mismatch: bool
    """The claim negates where the context sentence it matches best does not."""


def claim_evidence(claim_text: str, claim: EncodedText, context: EncodedContext) -> ClaimEvidence:
    """Every feature of one claim against one encoded context."""
    ctx = context.enc
    index = np.flatnonzero(claim.content)
    if len(index) == 0:
        index = np.arange(len(claim.words))
    if len(ctx.words) == 0 or len(index) == 0:
        empty = {k: (0.0 if d > 0 else 1.0) for k, d in FEATURES.items()}
        return ClaimEvidence(empty, "", [], [], [], False)
    similarity = claim.vecs[index] @ ctx.vecs.T
    claim_stems = [claim.stems[i] for i in index]
    absent = np.array([s not in context.stem_set for s in claim_stems])
    missing_names = [n for n in sorted(names(claim_text)) if n not in context.lowered]
    missing_numbers = [n for n in sorted(numbers(claim_text)) if n not in context.numbers]
    sentence_max = np.maximum.reduceat(similarity, context.sent_start, axis=1)
    sentence_passage = context.passage[context.sent_start]
    cover, window = _best_window(sentence_max, sentence_passage)
    window_ids = ctx.sent[context.sent_start][window]
    in_window = np.isin(ctx.sent, window_ids)
    window_stems = {ctx.stems[i] for i in np.flatnonzero(in_window)}
    window_content = np.flatnonzero(in_window & ctx.content)
    if len(window_content) == 0:
        window_content = np.flatnonzero(in_window)
    aligned = _mono_align(similarity[:, window_content])
    features: dict[str, Any] = {
        "win_cover": cover,
        "win_new": float(np.mean([s not in window_stems for s in claim_stems])),
        "win_mono_mean": float(aligned.mean()),
        "align_mean": float(similarity.max(axis=1).mean()),
        "new_word": float(absent.mean()),
        "new_name_num": float(len(missing_names) + len(missing_numbers)),
    }
    # A negation the claim adds to the sentence it matches best. The reverse (the passage
    # negates, the claim does not) is left out: answers often copy the half of a sentence
    # that follows "If you can't ...".
    best_sentence = ctx.sent[context.sent_start][int(np.argmax(sentence_max.mean(axis=0)))]
    claim_negates = any(w in NEGATIONS for w in claim.words)
    sentence_negates = any(
        ctx.words[i] in NEGATIONS for i in np.flatnonzero(ctx.sent == best_sentence)
    )
    return ClaimEvidence(
        features={k: round(float(v), 6) for k, v in features.items()},
        window=" ".join(context.sentence_texts[int(i)] for i in window_ids),
        missing_words=sorted({claim.words[i] for i, a in zip(index, absent, strict=True) if a}),
        missing_names_numbers=missing_names + missing_numbers,
        missing_numbers=missing_numbers,
        negation_mismatch=claim_negates and not sentence_negates,
    )
