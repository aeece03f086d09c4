"""glibc's allocator thresholds, set where chronorec knows its allocation pattern (a no-op off glibc).

glibc serves a ``malloc`` of at least its *mmap threshold* from a fresh mapping, handed back to the
kernel on ``free``; smaller ones come from its heap, whose freed pages stay resident. By default the
threshold is dynamic: each mapped block freed raises it to that block's size (up to 32 MiB). So
after the first large tensor is freed, large tensors come from the heap, and a loop that frees
big blocks while keeping small ones between them fragments it, growing the resident set.

* Training reuses same-sized large tensors step after step: the heap is the fast place for them
  (a fixed 1 MiB threshold cost DIN 40% and SASRec ~10% of their steps/s in alternating A/B runs),
  so a training process keeps every block below 256 MiB on the heap and never trims it, from its
  first step (:func:`keep_heap`). glibc's dynamic default still unmapped and trimmed blocks between
  steps: DIN with ``model.bf16`` on ml-100k took 5,000-6,000 page faults a step and ran at
  29.1k/31.6k samples/s against 38.2k/40.1k with the heap kept (alternating processes); fp32 DIN
  gained ~3%.
* A next-item evaluation pass allocates per batch and keeps small results between: on
  amazon-beauty (12k items) its resident peak grew 500 MB with the dynamic threshold and stays
  near the model's size with a fixed 1 MiB one. Before it, the heap's free pages (what the
  training steps freed) go back to the kernel (``malloc_trim``), so the pass's allocations do not
  stack on them: on ml-100k GRU4Rec's peak was the validation pass, 16 MB above the steps'.
* ``chronorec prepare`` is short and allocation-light: a fixed 128 KiB threshold lowers its peak.

A user's own ``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES`` setting wins: then nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# training (and after an evaluation pass): heap for every block, no trimming. Fixing glibc's dynamic
# ceiling instead (32 MiB, trim 64 MiB) made BERT4Rec's training steps slower in 3 of 3 alternating
# pairs (-3% to -17%, amazon-beauty, idle); this setting measured -14% to +27%, within this VM's noise.
TRAINING_HEAP = 256 << 20


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None (another C library, another OS, or the user set the thresholds)."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ \
            or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 (musl has no mallopt)
    except (OSError, AttributeError):
        return None
    return libc


def set_mmap_threshold(nbytes: int, trim: int | None = None) -> bool:
    """Fix the mmap threshold at ``nbytes`` (and the heap's trim threshold at ``trim``, when given).
    Returns whether the setting was applied."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, nbytes)) and (trim is None or bool(libc.mallopt(M_TRIM_THRESHOLD, trim)))


def release_free_heap() -> bool:
    """Hand the heap's free pages back to the kernel (glibc's ``malloc_trim(0)``); whether any went back."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))


def keep_heap() -> bool:
    """Training: serve blocks below :data:`TRAINING_HEAP` from the heap and trim it only above four
    times that. Returns whether the setting was applied."""
    return set_mmap_threshold(TRAINING_HEAP, trim=4 * TRAINING_HEAP)


@contextmanager
def mapped_large_blocks(nbytes: int = 1 << 20) -> Iterator[None]:
    """Serve blocks of ``nbytes`` and more from their own mappings inside the block, after handing
    the heap's free pages back; afterwards back to training's setting (:func:`keep_heap`)."""
    release_free_heap()
    applied = set_mmap_threshold(nbytes)
    try:
        yield
    finally:
        if applied:
            keep_heap()
