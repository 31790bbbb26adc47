"""The offline judge's claim features for benchmark rows, computed once and cached on disk.

Encoding every benchmark row takes minutes; fitting and the calibration study only need each
claim's six features, and whether hard evidence (a number no passage has, an added negation)
caps its support (``hard``: 1 or 0). They are kept in ``benchmarks/.cache/``
(git-ignored), one file per *code fingerprint*: a hash of the judge's feature code (the
``evals/judges`` modules that compute them) and of the model, so any change to how features
are computed starts a new file instead of reusing stale numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from faithfulness_data import Row

from evals.judges._embedding import model_fingerprint
from evals.judges._offline import HARD_CAP, OfflineParams

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
_SOURCES = ("_evidence.py", "_text.py", "_base.py", "_embedding.py")
BATCH = 256

FORMAT = 2
"""Bump when what is stored per claim changes."""

Features = list[dict[str, float]]
"""One dict of features per claim of an answer (plus ``hard``)."""


def code_fingerprint() -> str:
    """A hash of the code and model the features come from."""
    digest = hashlib.sha256(f"{FORMAT}:{model_fingerprint()}".encode())
    for name in _SOURCES:
        digest.update((ROOT / "evals" / "judges" / name).read_bytes())
    return digest.hexdigest()[:16]


def _key(row: Row, contexts: Sequence[str]) -> str:
    return hashlib.sha256(
        json.dumps([row.dataset, row.id, row.answer, list(contexts)]).encode()
    ).hexdigest()


def row_features(
    rows: Sequence[Row], contexts: Sequence[Sequence[str]] | None = None, *, cache: bool = True
) -> list[Features]:
    """The claim features of each row's answer against its context (or ``contexts``)."""
    from evals.judges import default_embedder
    from evals.judges._evidence import WordEncoder, evidence_batch
    from evals.judges._offline import hard_evidence

    passages = [list(c) for c in contexts] if contexts is not None else [[r.context] for r in rows]
    path = CACHE / f"features-{code_fingerprint()}.jsonl"
    known: dict[str, Features] = {}
    if cache and path.exists():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                key, value = json.loads(line)
                known[key] = value
    keys = [_key(r, c) for r, c in zip(rows, passages, strict=True)]
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        embedder = default_embedder()
        words = WordEncoder(embedder, embedder.dimension, fingerprint=embedder.fingerprint)
        CACHE.mkdir(exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            for start in range(0, len(todo), BATCH):
                batch = todo[start : start + BATCH]
                found = evidence_batch(words, [(rows[i].answer, passages[i]) for i in batch])
                for i, claims in zip(batch, found, strict=True):
                    known[keys[i]] = [
                        {**e.features, "hard": float(bool(hard_evidence(e)))}
                        for _, e in claims or []
                    ]
                    if cache:
                        out.write(json.dumps([keys[i], known[keys[i]]]) + "\n")
    return [known[k] for k in keys]


def support_scores(rows: Sequence[Features], params: OfflineParams) -> list[float]:
    """Each answer's support score as the offline judge computes it with ``params``.

    The support of the weakest claim: its calibrated probability, capped where hard evidence
    says so; 1.0 for an answer with no claims.
    """
    out = []
    for claims in rows:
        probabilities = [
            min(p, HARD_CAP) if claim["hard"] else p
            for claim in claims
            for p in [params.p_supported(params.score(claim))]
        ]
        out.append(min(probabilities, default=1.0))
    return out
