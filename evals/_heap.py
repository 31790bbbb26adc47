"""Keep a long scoring process's native heap from creeping up (glibc only).

The embedding and NLI models allocate tensors of a few MB for every batch they encode. glibc
serves a freed large block from ``mmap`` at first, then raises its threshold to the freed
block's size (up to 32 MB), after which such tensors come from the heap, where text and Python
objects of every size sit between them: the heap fragments and the process's peak grows with
the number of batches (`benchmarks/streaming_memory.py --cases 30000` peaked at 1,224 MB
without a fixed threshold, 1,086 MB with this one; benchmarks/RESULTS.md). Fixing the
threshold keeps every block above it in ``mmap``, returned to the system when freed. A value
the user set (``MALLOC_MMAP_THRESHOLD_``) wins; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache

__all__ = ["MMAP_THRESHOLD", "bound_native_heap"]

MMAP_THRESHOLD = 2 * 1024 * 1024
"""Bytes from which glibc serves a block with ``mmap``: the models' larger tensors."""

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


@cache
def bound_native_heap() -> bool:
    """Fix glibc's ``mmap`` threshold for this process, once; whether it is fixed.

    ``False`` where there is no glibc ``mallopt`` (macOS, musl) or the user chose their own.
    """
    return _set_threshold(MMAP_THRESHOLD)


def _set_threshold(threshold: int) -> bool:
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
