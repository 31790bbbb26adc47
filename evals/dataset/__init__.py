"""Golden datasets: cases, recorded outputs, and their loaders (JSONL, CSV, Parquet)."""

from evals.dataset._case import Case, RecordedOutput, Usage
from evals.dataset._load import (
    BATCH,
    KEEP_IN_MEMORY,
    Dataset,
    Recordings,
    file_hash,
    load_dataset,
    load_recordings,
)
from evals.dataset._rows import SUPPORTED_SUFFIXES, read_models

__all__ = [
    "BATCH",
    "KEEP_IN_MEMORY",
    "SUPPORTED_SUFFIXES",
    "Case",
    "Dataset",
    "RecordedOutput",
    "Recordings",
    "Usage",
    "file_hash",
    "load_dataset",
    "load_recordings",
    "read_models",
]
