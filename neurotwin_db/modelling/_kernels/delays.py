"""Delayed network input: each node's weighted sum of its sources' past outputs.

The past outputs sit in a ring buffer ``history`` of shape ``(H, n)``, with ``H`` a power
of two (so the wrap-around is a bit mask, not a branch); row ``head`` is the newest. A
connection ``j → i`` with delay ``d`` steps reads row ``head - d`` (mod H).
Connections are given as CSR arrays over targets (``ptr``, ``source``, ``weight``,
``delay``), so absent connections cost nothing.
"""

from __future__ import annotations

import numba
import numpy as np


def ring_size(max_delay: int) -> int:
    """Rows of a ring buffer that holds ``max_delay`` past steps: a power of two."""
    return 1 << int(max_delay).bit_length()


def delayed_input_numpy(history: np.ndarray, head: int, ptr: np.ndarray, source: np.ndarray,
                        weight: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """``c[i] = Σ_j w_ij · history[head - d_ij, j]`` for every target node ``i``."""
    rows = (head - delay) % history.shape[0]
    terms = weight * history[rows, source]
    target = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return np.bincount(target, weights=terms, minlength=len(ptr) - 1)


@numba.njit(cache=True, fastmath=False)
def delayed_input_numba(history: np.ndarray, head: int, ptr: np.ndarray, source: np.ndarray,
                        weight: np.ndarray, delay: np.ndarray, out: np.ndarray) -> None:
    """Numba twin of :func:`delayed_input_numpy`, writing into ``out``."""
    mask = history.shape[0] - 1
    for i in range(len(ptr) - 1):
        total = 0.0
        for k in range(ptr[i], ptr[i + 1]):
            total += weight[k] * history[(head - delay[k]) & mask, source[k]]
        out[i] = total
