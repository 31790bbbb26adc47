"""The native heap's mmap threshold is fixed once per process, unless the user chose one."""

from __future__ import annotations

import platform
import sys

import pytest

from evals import _heap


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_the_threshold_is_fixed_once_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    _heap.bound_native_heap.cache_clear()
    calls: list[int] = []
    real = _heap._set_threshold

    def counted(threshold: int) -> bool:
        calls.append(threshold)
        return real(threshold)

    monkeypatch.setattr(_heap, "_set_threshold", counted)
    assert _heap.bound_native_heap() is True
    assert _heap.bound_native_heap() is True
    assert calls == [_heap.MMAP_THRESHOLD]


def test_a_threshold_the_user_set_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert _heap._set_threshold(_heap.MMAP_THRESHOLD) is False
