r"""Word-level evidence for the offline judge: contextual word vectors and support features.

A text becomes words with one contextual vector each: the model reads each sentence on its own
(a sentence of more than 120 words in runs of 120), and a word's vector is the normalised mean
of its wordpiece vectors. A claim is then compared with its context word by word:

============== ===== ====================================================================
feature        dir   definition
============== ===== ====================================================================
win_cover      \+    mean over the claim's content words of the best cosine to a word of
                     the best window (two adjacent sentences of one passage)
win_new        −     share of the claim's content-word stems absent from that window
win_mono_mean  \+    in-order alignment of claim words to window words (maximising
                     Σ(cos − 0.35)); mean aligned cosine, unaligned words counting 0
align_mean     \+    mean over claim content words of the best cosine to a word of the
                     claim's candidate sentences
new_word       −     share of claim content-word stems absent from the claim's passages
new_name_num   −     names and numbers in the claim that its passages do not contain
============== ===== ====================================================================

``dir`` says which way is evidence of support; it is fixed in advance, never fitted.

Where a claim looks, before any vector is computed (:meth:`LexicalContext.scope`): its
*passages* are those sharing at least two of its content stems (or as many as the best
passage shares, when that is fewer); its *candidate sentences* are the windows of those
passages that share most of its content stems (the best :data:`MAX_WINDOWS`, each sharing at
least half as many as the best). A passage retrieved beside the right one but about something
else shares a word or none, so it neither lends the claim its vocabulary nor costs the model
any time; a claim that shares no word with any passage is compared with every sentence.
Only candidate sentences are encoded, each once per process (and once per machine with a
persistent cache). See docs/design/grounding-judge.md.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
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
    "LexicalContext",
    "TokenEncoder",
    "VectorStore",
    "WordEncoder",
    "claim_evidence",
    "encoded_claims",
    "evidence_batch",
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
RUN_WORDS = 120
"""A sentence longer than this many words is read in runs of this many."""
SCOPE_WORDS = 2
"""A passage is in a claim's scope when it shares this many of its content stems (or as many
as the best passage, when that is fewer)."""
MAX_WINDOWS = 3
"""Windows per claim whose sentences are encoded and compared word by word."""
WINDOW_SHARE = 0.5
"""A candidate window shares at least this fraction of the stems the best window shares."""
VERSION = 2
"""Bump when a sentence's words or vectors are computed differently: cached vectors go stale."""


class TokenEncoder(Protocol):
    """What the features need from a model: wordpiece vectors with character offsets."""

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: ``(vectors (n, d), offsets (n, 2))`` of its wordpieces."""
        ...


class VectorStore(Protocol):
    """A persistent ``key → JSON value`` map (``evals._io.KeyValueFile``)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of the keys that have one."""
        ...

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Remember values."""
        ...

    def flush(self) -> None:
        """Commit what is buffered."""
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


def sentences_of(text: str) -> list[str]:
    """The sentences the model reads: :func:`split_sentences`, long ones cut into runs."""
    out = []
    for sentence in split_sentences(text) or [text]:
        words = sentence.split()
        if len(words) <= RUN_WORDS:
            out.append(sentence)
        else:
            out += [" ".join(words[i : i + RUN_WORDS]) for i in range(0, len(words), RUN_WORDS)]
    return out


_Sentence = tuple[list[str], np.ndarray]
"""A sentence's words that the model saw, and their unit vectors."""


def _words_of(
    sentence: str, pieces: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Word vectors (the mean of each word's wordpieces) and which words had any wordpiece."""
    vectors, offsets = pieces
    starts, ends = [], []
    for match in WORD.finditer(sentence):
        starts.append(match.start())
        ends.append(match.end())
    out = np.zeros((len(starts), vectors.shape[1]), np.float32)
    keep = np.zeros(len(starts), bool)
    if starts and len(offsets):
        start_array, end_array = np.asarray(starts), np.asarray(ends)
        owner = np.searchsorted(start_array, offsets[:, 0], side="right") - 1
        inside = (owner >= 0) & (offsets[:, 0] < end_array[np.maximum(owner, 0)])
        np.add.at(out, owner[inside], vectors[inside])
        keep[np.unique(owner[inside])] = True
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)
    # Rounded to half precision whether computed or read back, so a cached sentence gives
    # the very numbers a fresh one does.
    return out.astype(np.float16), keep


def _sentence(sentence: str, vectors: np.ndarray, keep: np.ndarray) -> _Sentence:
    words = [normalise_word(m.group(0)) for m in WORD.finditer(sentence)]
    return [w for w, k in zip(words, keep, strict=True) if k], vectors[keep].astype(np.float32)


class WordEncoder:
    """Encodes sentences into words with contextual vectors, each sentence once.

    Sentences are cached by content in an LRU (shared across answers and batches) and, for
    contexts, in an optional persistent store (shared across runs). The LRU keeps the word
    vectors in half precision, as computed (about 12 KB a sentence), and ``cache_size``
    sentences at most: a few batches' worth, so a long run's memory stays flat.
    """

    def __init__(
        self,
        encoder: TokenEncoder,
        dimension: int,
        cache_size: int = 10_000,
        store: VectorStore | None = None,
        fingerprint: str = "",
    ) -> None:
        self.encoder = encoder
        self.dimension = dimension
        self.store = store
        self.fingerprint = fingerprint
        self.encoded = 0
        """Sentences this encoder ran through the model (for benchmarks)."""
        self._cache: OrderedDict[str, _Sentence] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _key(self, sentence: str) -> str:
        return hashlib.sha256(f"{VERSION}\x00{self.fingerprint}\x00{sentence}".encode()).hexdigest()

    def sentences(self, texts: Iterable[str], *, persist: bool = False) -> dict[str, _Sentence]:
        """Words and vectors of each sentence, in one batched pass over those not cached.

        Args:
            texts: sentences (as :func:`sentences_of` cuts them).
            persist: also read and write the persistent store (for context sentences, which
                recur across runs; answers rarely do).
        """
        wanted = list(dict.fromkeys(texts))
        with self._lock:
            found = {
                t: (self._cache[t][0], self._cache[t][1].astype(np.float32))
                for t in wanted
                if t in self._cache
            }
        missing = [t for t in wanted if t not in found]
        if missing and persist and self.store is not None:
            keys = {self._key(t): t for t in missing}
            for key, value in self.store.get_many(list(keys)).items():
                text = keys[key]
                vectors = np.frombuffer(base64.b64decode(value["v"]), np.float16).reshape(
                    -1, self.dimension
                )
                found[text] = _sentence(text, vectors, np.array(value["k"], bool))
            missing = [t for t in missing if t not in found]
        if missing:
            computed = {}
            pieces = self.encoder.token_vectors(missing)
            for text, piece in zip(missing, pieces, strict=True):
                vectors, keep = _words_of(text, piece)
                computed[text] = (vectors, keep)
                found[text] = _sentence(text, vectors, keep)
            self.encoded += len(missing)
            if persist and self.store is not None:
                self.store.put_many(
                    {
                        self._key(t): {
                            "k": keep.astype(int).tolist(),
                            "v": base64.b64encode(vectors.tobytes()).decode("ascii"),
                        }
                        for t, (vectors, keep) in computed.items()
                    }
                )
                self.store.flush()
        with self._lock:
            for text in wanted:
                words, found_vectors = found[text]
                self._cache[text] = (
                    words,
                    found_vectors.astype(np.float16),
                )  # exact: see _words_of
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found

    def encode(self, texts: Sequence[str]) -> list[EncodedText]:
        """Encode whole texts (answers): every sentence, in one batched pass."""
        plans = [sentences_of(text) for text in texts]
        found = self.sentences(s for plan in plans for s in plan)
        return [
            _joined(text, plan, found, self.dimension)
            for text, plan in zip(texts, plans, strict=True)
        ]


def _joined(
    text: str, sentences: Sequence[str], found: Mapping[str, _Sentence], dimension: int
) -> EncodedText:
    words: list[str] = []
    vectors: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    for i, sentence in enumerate(sentences):
        sentence_words, sentence_vectors = found[sentence]
        words += sentence_words
        vectors.append(sentence_vectors)
        ids.append(np.full(len(sentence_words), i))
    return EncodedText(
        text=text,
        words=words,
        stems=[stem(w) for w in words],
        content=np.array([is_content(w) for w in words], bool),
        vecs=np.concatenate(vectors) if vectors else np.zeros((0, dimension), np.float32),
        sent=np.concatenate(ids) if ids else np.zeros(0, int),
        sentences=list(sentences),
    )


def _stems(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Content stems and all stems of a text."""
    words = [normalise_word(m.group(0)) for m in WORD.finditer(text)]
    return frozenset(stem(w) for w in words if is_content(w)), frozenset(stem(w) for w in words)


@dataclass(frozen=True)
class ClaimScope:
    """Where a claim looks: its passages and the sentences compared word by word."""

    passages: tuple[int, ...]
    sentences: tuple[int, ...]
    """Global sentence indices, ascending."""


class LexicalContext:
    """The passages of one context as text: sentences, stems, names and numbers, no vectors."""

    def __init__(self, passages: Sequence[str]) -> None:
        self.passages = list(passages)
        self.sentences: list[str] = []
        passage_of: list[int] = []
        for p, passage in enumerate(self.passages):
            for sentence in sentences_of(passage):
                self.sentences.append(sentence)
                passage_of.append(p)
        self.passage_of = np.array(passage_of, int)
        parsed = [_stems(s) for s in self.sentences]
        self.content_stems = [content for content, _ in parsed]
        self.all_stems = [every for _, every in parsed]
        self.passage_stems = [
            frozenset().union(*(self.all_stems[i] for i in np.flatnonzero(self.passage_of == p)))
            for p in range(len(self.passages))
        ]
        self.passage_lowered = [p.lower() for p in self.passages]
        self.passage_numbers = [frozenset(numbers(p)) for p in self.passages]
        # Windows: each sentence with its successor in the same passage (alone when the
        # passage has one sentence), as the word-level features read them.
        self.windows: list[tuple[int, ...]] = []
        for p in range(len(self.passages)):
            members = np.flatnonzero(self.passage_of == p).tolist()
            if len(members) == 1:
                self.windows.append((members[0],))
            self.windows += [(a, b) for a, b in itertools.pairwise(members)]

    def scope(self, claim_stems: frozenset[str]) -> ClaimScope:
        """The passages a claim is judged against and the sentences worth encoding for it."""
        every = tuple(range(len(self.passages)))
        shared = [len(claim_stems & s) for s in self.passage_stems]
        best = max(shared, default=0)
        if best == 0:
            return ClaimScope(every, tuple(range(len(self.sentences))))
        floor = min(best, SCOPE_WORDS)
        passages = tuple(p for p in every if shared[p] >= floor)
        inside = set(passages)
        scored = []
        for k, window in enumerate(self.windows):
            if self.passage_of[window[0]] in inside:
                stems = frozenset().union(*(self.content_stems[i] for i in window))
                scored.append((len(claim_stems & stems), k))
        top = max(score for score, _ in scored)
        if top == 0:  # the shared stems are not content words of any sentence
            return ClaimScope(
                passages, tuple(np.flatnonzero(np.isin(self.passage_of, passages)).tolist())
            )
        chosen = sorted(
            (w for w in scored if w[0] >= math.ceil(WINDOW_SHARE * top)),
            key=lambda w: (-w[0], w[1]),
        )[:MAX_WINDOWS]
        sentences = sorted({i for _, k in chosen for i in self.windows[k]})
        return ClaimScope(passages, tuple(sentences))


@dataclass(frozen=True)
class EncodedContext:
    """What one claim is compared with: its candidate sentences encoded, its passages as text."""

    enc: EncodedText
    """Words of the candidate sentences (``sent``: global sentence index)."""
    passage: np.ndarray
    """Passage index per word."""
    sentence_texts: list[str]
    """Every sentence of the context, by global index."""
    sent_start: np.ndarray
    """Index of the first word of each candidate sentence (words are contiguous per sentence)."""
    stem_set: frozenset[str]
    """Stems of the claim's passages."""
    lowered: str
    """The claim's passages, lower-cased (for names)."""
    numbers: frozenset[str]
    """Numbers of the claim's passages."""


def context_for(
    lexical: LexicalContext, scope: ClaimScope, found: Mapping[str, _Sentence], dimension: int
) -> EncodedContext:
    """The encoded view of one claim's scope (its candidate sentences must be in ``found``)."""
    words: list[str] = []
    vectors, ids, passages, starts = [], [], [], []
    for i in scope.sentences:
        sentence_words, sentence_vectors = found[lexical.sentences[i]]
        if not sentence_words:
            continue
        starts.append(len(words))
        words += sentence_words
        vectors.append(sentence_vectors)
        ids.append(np.full(len(sentence_words), i))
        passages.append(np.full(len(sentence_words), lexical.passage_of[i]))
    enc = EncodedText(
        text="",
        words=words,
        stems=[stem(w) for w in words],
        content=np.array([is_content(w) for w in words], bool),
        vecs=np.concatenate(vectors) if vectors else np.zeros((0, dimension), np.float32),
        sent=np.concatenate(ids) if ids else np.zeros(0, int),
        sentences=lexical.sentences,
    )
    return EncodedContext(
        enc=enc,
        passage=np.concatenate(passages) if passages else np.zeros(0, int),
        sentence_texts=lexical.sentences,
        sent_start=np.asarray(starts, int),
        stem_set=frozenset().union(*(lexical.passage_stems[p] for p in scope.passages)),
        lowered="\n".join(lexical.passage_lowered[p] for p in scope.passages),
        numbers=frozenset().union(*(lexical.passage_numbers[p] for p in scope.passages)),
    )


def encoded_claims(answer: EncodedText) -> list[tuple[str, EncodedText]]:
    """The claims of an encoded answer, each with its words.

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


def claim_stems(claim: EncodedText) -> frozenset[str]:
    """The stems a claim is looked up by: its content words' (all its words' if none)."""
    index = np.flatnonzero(claim.content)
    return frozenset(claim.stems[i] for i in (index if len(index) else range(len(claim.words))))


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


def _best_window(
    sentence_max: np.ndarray, sentence_id: np.ndarray, passage: np.ndarray
) -> tuple[float, list[int]]:
    """Best window (a sentence and its successor in the same passage) by coverage.

    Columns are the candidate sentences in text order; two are a window when they are
    consecutive sentences of one passage.
    """
    n = sentence_max.shape[1]
    coverage = np.full(n, -np.inf)
    paired = np.zeros(n, bool)
    if n > 1:
        paired[:-1] = (passage[1:] == passage[:-1]) & (sentence_id[1:] == sentence_id[:-1] + 1)
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
    """Every feature of one claim against its encoded scope."""
    ctx = context.enc
    index = np.flatnonzero(claim.content)
    if len(index) == 0:
        index = np.arange(len(claim.words))
    if len(ctx.words) == 0 or len(index) == 0:
        empty = {k: (0.0 if d > 0 else 1.0) for k, d in FEATURES.items()}
        return ClaimEvidence(empty, "", [], [], [], False)
    similarity = claim.vecs[index] @ ctx.vecs.T
    claim_stems_list = [claim.stems[i] for i in index]
    absent = np.array([s not in context.stem_set for s in claim_stems_list])
    missing_names = [n for n in sorted(names(claim_text)) if n not in context.lowered]
    missing_numbers = [n for n in sorted(numbers(claim_text)) if n not in context.numbers]
    sentence_max = np.maximum.reduceat(similarity, context.sent_start, axis=1)
    sentence_ids = ctx.sent[context.sent_start]
    cover, window = _best_window(sentence_max, sentence_ids, context.passage[context.sent_start])
    window_ids = sentence_ids[window]
    in_window = np.isin(ctx.sent, window_ids)
    window_stems = {ctx.stems[i] for i in np.flatnonzero(in_window)}
    window_content = np.flatnonzero(in_window & ctx.content)
    if len(window_content) == 0:
        window_content = np.flatnonzero(in_window)
    aligned = _mono_align(similarity[:, window_content])
    features: dict[str, Any] = {
        "win_cover": cover,
        "win_new": float(np.mean([s not in window_stems for s in claim_stems_list])),
        "win_mono_mean": float(aligned.mean()),
        "align_mean": float(similarity.max(axis=1).mean()),
        "new_word": float(absent.mean()),
        "new_name_num": float(len(missing_names) + len(missing_numbers)),
    }
    # A negation the claim adds to the sentence it matches best. The reverse (the passage
    # negates, the claim does not) is left out: answers often copy the half of a sentence
    # that follows "If you can't ...".
    best_sentence = sentence_ids[int(np.argmax(sentence_max.mean(axis=0)))]
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


def evidence_batch(
    words: WordEncoder, items: Sequence[tuple[str, Sequence[str]]]
) -> list[list[tuple[str, ClaimEvidence]] | None]:
    """The evidence of every claim of every ``(answer, passages)`` item, batched.

    Answers are encoded first (one pass), each claim's scope is found from its stems, and
    the candidate sentences of every claim of every item are encoded in a second pass.

    Returns:
        Per item, ``(claim text, evidence)`` for each claim; ``None`` when it has no passages.
    """
    answers = words.encode([answer for answer, _ in items])
    lexical: dict[tuple[str, ...], LexicalContext] = {}
    plans: list[list[tuple[str, EncodedText, ClaimScope]] | None] = []
    needed: dict[str, None] = {}
    for (_, passages), answer in zip(items, answers, strict=True):
        key = tuple(passages)
        if not key:
            plans.append(None)
            continue
        if key not in lexical:
            lexical[key] = LexicalContext(key)
        context = lexical[key]
        plan: list[tuple[str, EncodedText, ClaimScope]] = []
        for text, claim in encoded_claims(answer):
            scope = context.scope(claim_stems(claim))
            plan.append((text, claim, scope))
            needed.update(dict.fromkeys(context.sentences[i] for i in scope.sentences))
        plans.append(plan)
    found = words.sentences(needed, persist=True)
    out: list[list[tuple[str, ClaimEvidence]] | None] = []
    for (_, passages), planned in zip(items, plans, strict=True):
        if planned is None:
            out.append(None)
            continue
        context = lexical[tuple(passages)]
        out.append(
            [
                (
                    text,
                    claim_evidence(
                        text, claim, context_for(context, scope, found, words.dimension)
                    ),
                )
                for text, claim, scope in planned
            ]
        )
    return out
