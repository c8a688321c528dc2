"""Batches padded up to a few fixed sizes, and split into passes of at most the largest, before they reach a
graph runtime.

OpenVINO keeps working memory for the batch sizes its dynamic-batch graph has run: a high-water mark that grew
with every new size (docs/soak.md, "Where the monitor's memory goes") and with the rows of the largest pass
(the attention scores are materialised: ~6 MB a crop for the default model). Padding each pass to one of
BATCH_SIZES bounds how many shapes it can ever see, and the largest size bounds the mark. The padding rows are
zeros (the mean colour once normalised) and are cut off the outputs: rows are independent in the model
(eval-mode batch norms, attention within a crop), so the real crops' results stay those of the same crops
in any batch (bit for bit on OpenVINO fp32; tests/test_batch_padding.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# at most a third of a pass is padding (5 -> 6, 9 -> 12): on this 2-core CPU the time grows with the rows, and
# padding to powers of two (5 -> 8) cost up to +74 % at ~30 MB less memory (docs/soak.md). A pass of more rows
# runs as passes of 16 (chunks): the working memory grows with the rows of one pass (the attention scores are
# materialised, ~6 MB a crop for the default model) while the CPU time per crop hardly does, so 16 bounds it
# (8 crops with their mirrors under the flip test)
BATCH_SIZES: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16)

def padded_size(n: int, sizes: tuple[int, ...] = BATCH_SIZES) -> int:
    """The smallest of `sizes` that holds n rows; past the largest, the next multiple of it."""
    if n <= 0:
        return n
    for size in sizes:
        if size >= n:
            return size
    largest = sizes[-1]
    return -(-n // largest) * largest


def chunks(n: int, sizes: tuple[int, ...] = BATCH_SIZES) -> list[tuple[slice, int]]:
    """n rows as passes of at most the largest of `sizes` rows: [(rows, padded size of the pass)]."""
    largest = sizes[-1]
    return [(slice(start, min(start + largest, n)), padded_size(min(largest, n - start), sizes))
            for start in range(0, n, largest)]


def pad_rows(x: Any, size: int) -> Any:
    """x (B, ...) numpy or torch, with zero rows appended up to `size` rows (x itself when B >= size)."""
    missing = size - x.shape[0]
    if missing <= 0:
        return x
    if isinstance(x, np.ndarray):
        return np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)])
    import torch  # deferred: the numpy path needs no torch

    return torch.cat([x, x.new_zeros((missing, *x.shape[1:]))])


__all__ = ["BATCH_SIZES", "padded_size", "chunks", "pad_rows"]
