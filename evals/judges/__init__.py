"""Judges: the models behind scorers. The offline grounding judge is the default."""

from evals.judges._embedding import Embedder, default_embedder
from evals.judges._grounding import Claim, GroundingVerdict, OfflineGroundingJudge
from evals.judges._text import content_words, names, numbers, split_sentences

__all__ = [
    "Claim",
    "Embedder",
    "GroundingVerdict",
    "OfflineGroundingJudge",
    "content_words",
    "default_embedder",
    "names",
    "numbers",
    "split_sentences",
]
