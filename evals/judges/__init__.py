"""Judges: the models behind the grounding scorers, in three tiers behind one interface.

- ``offline`` (default): the bundled embedding model plus text evidence, calibrated on public
  labelled data; no keys, no downloads.
- ``nli``: a sentence-transformers ``CrossEncoder`` NLI model, by id or local path.
- ``llm`` / ``ragas``: a model through litellm, with structured output, retries and a cache.
"""

from evals.judges._base import (
    Claim,
    ClaimVerdict,
    GroundingJudge,
    GroundingVerdict,
    is_claim,
    split_claims,
)
from evals.judges._embedding import Embedder, default_embedder
from evals.judges._factory import build_judge, judge_fingerprint
from evals.judges._labelled import (
    GroundingRow,
    GroundingRowsSummary,
    JudgedRow,
    LabelledGroundingRow,
    calibrate_on_rows,
    judge_grounding_rows,
    read_grounding_rows,
    read_labelled_grounding_rows,
)
from evals.judges._offline import OfflineGroundingJudge, offline_fingerprint
from evals.judges._text import content_words, names, numbers, split_sentences

__all__ = [
    "Claim",
    "ClaimVerdict",
    "Embedder",
    "GroundingJudge",
    "GroundingRow",
    "GroundingRowsSummary",
    "GroundingVerdict",
    "JudgedRow",
    "LabelledGroundingRow",
    "OfflineGroundingJudge",
    "build_judge",
    "calibrate_on_rows",
    "content_words",
    "default_embedder",
    "is_claim",
    "judge_fingerprint",
    "judge_grounding_rows",
    "names",
    "numbers",
    "offline_fingerprint",
    "read_grounding_rows",
    "read_labelled_grounding_rows",
    "split_claims",
    "split_sentences",
]
