"""Delayed network input: each node's weighted sum of its sources' past outputs.

The kernels keep the past outputs (firing rates) in a *linear* history buffer of shape
``(n, L)``, source-major: ``history[j, q]`` is node ``j``'s output at the step written at
column ``q``. The current step writes column ``position``; a connection ``j → i`` with
delay ``d`` steps reads column ``position - d``. When the columns run out, the newest
``max_delay`` columns are copied to the front (:func:`make_room_numba`), once every
:data:`SLACK` steps. Connections are given as CSR arrays over targets (``ptr``,
``source``, ``weight``, ``delay``), so absent connections cost nothing.

Every non-zero connection has a delay of at least ``d_min`` steps, so the input of the
next ``d_min + 1`` steps depends only on outputs already written: :func:`block_input_numba`
computes it for a whole block of steps at once (at most :data:`MAX_BLOCK`), reading
contiguous columns per connection, and :func:`advance_in_blocks` drives a model kernel
block by block. The history and the write position persist across kernel calls; a block
never straddles the end of a call.
"""

from __future__ import annotations

import numba
import numpy as np

SLACK = 8192  # columns written between two shifts of the history buffer
MAX_BLOCK = 64  # longest block of steps that shares one computation of the network input


def new_history(n: int, delay: np.ndarray) -> tuple[np.ndarray, int]:
    """An all-zero history buffer for ``n`` nodes and its first write position.

    The ``max_delay`` columns before the first position stand for the silent past.
    """
    max_delay = int(delay.max(initial=0))
    return np.zeros((n, max_delay + 1 + SLACK)), max_delay


@numba.njit(cache=True, nogil=True)
def block_length(delay: np.ndarray) -> int:
    """Steps whose network input is known at once: ``min(d_min + 1, MAX_BLOCK)``."""
    shortest = MAX_BLOCK
    for d in delay:
        shortest = min(shortest, d + 1)
    return shortest


@numba.njit(cache=True, nogil=True)
def max_delay_of(delay: np.ndarray) -> int:
    """The longest delay (steps), 0 without connections."""
    longest = 0
    for d in delay:
        longest = max(longest, d)
    return longest


def make_room_numpy(history: np.ndarray, position: int, steps: int, max_delay: int) -> int:
    """Make columns ``position .. position + steps - 1`` writable; return the new position.

    If they run past the end, the ``max_delay`` columns before ``position`` move to the
    front and writing resumes right after them.
    """
    if position + steps <= history.shape[1]:
        return position
    history[:, :max_delay] = history[:, position - max_delay:position].copy()
    return max_delay


@numba.njit(cache=True, nogil=True)
def make_room_numba(history: np.ndarray, position: int, steps: int, max_delay: int) -> int:
    """Numba twin of :func:`make_room_numpy`."""
    if position + steps <= history.shape[1]:
        return position
    start = position - max_delay
    for j in range(history.shape[0]):
        for c in range(max_delay):  # forward copy: the source never lies before the target
            history[j, c] = history[j, start + c]
    return max_delay


def block_input_numpy(history: np.ndarray, position: int, steps: int, ptr: np.ndarray,
                      source: np.ndarray, weight: np.ndarray, delay: np.ndarray,
                      gain: float, out: np.ndarray) -> None:
    """``out[s, i] = gain Σ_j w_ij history[j, position - d_ij + s]`` for ``s < steps``."""
    columns = position - delay[:, None] + np.arange(steps)
    terms = weight[:, None] * history[source[:, None], columns]
    target = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    total = np.zeros((len(ptr) - 1, steps))
    np.add.at(total, target, terms)
    out[:steps] = gain * total.T


@numba.njit(cache=True, nogil=True, error_model="numpy")
def block_input_numba(history: np.ndarray, position: int, steps: int, ptr: np.ndarray,
                      source: np.ndarray, weight: np.ndarray, delay: np.ndarray,
                      gain: float, out: np.ndarray) -> None:
    """Numba twin of :func:`block_input_numpy` (``out`` has at least ``steps`` rows)."""
    total = np.empty(steps)
    for i in range(len(ptr) - 1):
        for s in range(steps):
            total[s] = 0.0
        for k in range(ptr[i], ptr[i + 1]):
            w, row = weight[k], history[source[k]]
            first = np.uint64(position - delay[k])  # ≥ 0; unsigned: no wrap-around test
            for s in range(np.uint64(steps)):
                total[s] += w * row[first + s]
        for s in range(steps):
            out[s, i] = gain * total[s]


@numba.njit(cache=True, nogil=True)
def store_firing(history: np.ndarray, column: int, firing: np.ndarray) -> None:
    """``history[:, column] = firing``."""
    for i in range(firing.shape[0]):
        history[i, column] = firing[i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def emit_average(acc: np.ndarray, t: int, decimate: int, out: np.ndarray) -> None:
    """After the last step ``t`` of each run of ``decimate`` steps: output ``acc``'s mean."""
    if (t + 1) % decimate == 0:
        for i in range(acc.shape[0]):
            out[(t + 1) // decimate - 1, i] = acc[i] / decimate
            acc[i] = 0.0


@numba.njit(cache=True, inline="always")  # inlined: the model functions are then static
def advance_in_blocks(fire_all, advance_block, y, history, position, ptr, source, weight,
                      delay, gain, constants, noise, wave, field, decimate, out):
    """Run a model kernel over ``noise.shape[0]`` steps in blocks; return the new position.

    The state ``y`` (rows = state variables) is copied to a node-major vector
    ``state[rows · i + row]`` and back. Each block starts with the firing of the current
    state written to ``history`` (``fire_all``) and the block's network input (``gain``
    times :func:`block_input_numba`); ``advance_block`` then takes every node through the
    block. Both take the model's ``constants`` and the node-major ``state``.
    """
    rows, n = y.shape
    state = y.T.copy().ravel()
    block, max_delay = block_length(delay), max_delay_of(delay)
    coupling = np.empty((block, n))
    firing = np.empty(n)
    acc = np.zeros(n)
    first = 0
    while first < noise.shape[0]:
        steps = min(block, noise.shape[0] - first)  # the last block ends with the call
        position = make_room_numba(history, position, steps, max_delay)
        fire_all(state, field, wave[first], constants, firing)
        store_firing(history, position, firing)
        block_input_numba(history, position, steps, ptr, source, weight, delay, gain,
                          coupling)
        advance_block(state, history, position, first, steps, coupling, firing, noise, wave,
                      field, constants, decimate, acc, out)
        position += steps
        first += steps
    for i in range(n):
        for row in range(rows):
            y[row, i] = state[rows * i + row]
    return position
