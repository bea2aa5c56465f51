"""Jansen-Rit network: stochastic Heun steps with delayed coupling and a stimulating field.

State ``y`` has shape ``(6, n)``: rows 0-2 are the post-synaptic potentials (mV) onto the
pyramidal cells (y0), and the excitatory (y1) and inhibitory (y2) input to them; rows 3-5
their time derivatives (mV/s). Time is in seconds.

For node ``i``::

    v_i   = y1 - y2 + λ·E_i·w(t)                       pyramidal membrane potential (mV)
    y0'' = A a S(v_i) - 2a y0' - a² y0
    y1'' = A a [p + C2 S(C1 y0) + G Σ_j w_ij S(v_j(t - d_ij))] - 2a y1' - a² y1 + A a σ ξ
    y2'' = B b C4 S(C3 y0) - 2b y2' - b² y2

with ``S(v) = 2 e0 / (1 + exp(r (v0 - v)))``. The EEG proxy is ``y1 - y2``.
The kernel advances ``noise.shape[0]`` steps and writes the EEG proxy averaged over each
block of ``decimate`` steps. The numba and NumPy versions take the same noise draws.

Each step first writes the firing ``S(v)`` of its starting state to ``history`` (see
``delays.py``); it is also the firing of Heun's predictor. The numba kernel runs in
blocks of steps that share one computation of the network input
(``delays.advance_in_blocks``), on a node-major copy of the state; each step is a loop
over nodes that the compiler vectorises: the exponentials are :func:`fast_exp` (numba
has no vector ``exp`` without SVML) and products and sums may fuse into FMAs. When ``C1
= 4 C3`` (as ``JansenRit.vector`` packs them), ``exp(r (v0 - C1 y0)) = e3⁴ exp(-3 r
v0)`` with ``e3 = exp(r (v0 - C3 y0))``: one exponential for both (:func:`paired_exp`).
The NumPy twin steps one at a time and computes every sigmoid directly with ``np.exp``;
the two agree to round-off.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from neurotwin_db.modelling._kernels.delays import (
    advance_in_blocks,
    block_input_numpy,
    emit_average,
    make_room_numpy,
    store_firing,
)

# parameter vector layout
A, B, SMALL_A, SMALL_B, C1, C2, C3, C4, E0, V0, R, P, G, SIGMA, LAM = range(15)
N_PARAMS = 15
N_STATE = 6

# exp(x) = 2^k exp(x - k ln 2): Cody-Waite split of ln 2, Taylor polynomial of degree 12
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 · 2^52: (x + _ROUND) - _ROUND rounds x to an integer
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12 = (
    1.0 / math.factorial(j) for j in range(2, 13))


@intrinsic
def _double_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@numba.njit(cache=True, error_model="numpy")
def fast_exp(x: float) -> float:
    """``exp(x)`` within 3 ulp, branch-free so that loops over nodes vectorise.

    Arguments are clamped to ±708 (no overflow to inf); NaN stays NaN. Compiled on its
    own and inlined by LLVM (numba-level inlining of every call costs compile time).
    """
    x = min(max(x, -708.0), 708.0)
    k = (x * _LOG2E + _ROUND) - _ROUND
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| ≤ ln2 / 2
    r2 = r * r  # Σ r^j / j! for j ≤ 12, by Estrin's scheme (shorter dependency chains)
    r4 = r2 * r2
    p = ((1.0 + r) + r2 * (_C2 + _C3 * r)
         + r4 * ((_C4 + _C5 * r) + r2 * (_C6 + _C7 * r))
         + r4 * r4 * ((_C8 + _C9 * r) + r2 * (_C10 + _C11 * r) + r4 * _C12))
    return p * _double_from_bits((np.int64(k) + 1023) << 52)


@numba.njit(cache=True, inline="always", error_model="numpy")
def sigmoid(v: float, e0: float, v0: float, r: float) -> float:
    """``S(v) = 2 e0 / (1 + exp(r (v0 - v)))``, with :func:`fast_exp`."""
    return 2.0 * e0 / (1.0 + fast_exp(r * (v0 - v)))


@numba.njit(cache=True)
def quadruple_factor(big: float, small: float, v0: float, r: float) -> float:
    """``exp(-3 r v0)`` if ``big = 4 small`` (see :func:`paired_exp`), else 0."""
    return math.exp(-3.0 * r * v0) if big == 4.0 * small else 0.0


@numba.njit(cache=True, inline="always", error_model="numpy")
def paired_exp(x, big, small, v0, r, factor):
    """``exp(r (v0 - big x))`` and ``exp(r (v0 - small x))``.

    With ``big = 4 small`` the first is the second to the fourth times ``factor =
    exp(-3 r v0)`` (:func:`quadruple_factor`): one exponential for both.
    """
    e_small = fast_exp(r * (v0 - small * x))
    if factor > 0.0:
        e_big = e_small * e_small
        return e_big * e_big * factor, e_small
    return fast_exp(r * (v0 - big * x)), e_small


# the tuple of constants a step uses (_constants): the first 13 feed _derivatives
_K_E0, _K_V0, _K_R, _K_P, _K_LAM, _K_DT, _K_KICK = 6, 7, 8, 13, 14, 15, 16


@numba.njit(cache=True, nogil=True)
def _constants(prm, dt):
    """The scalars a step needs, packed once per call."""
    a, b, r, v0 = prm[SMALL_A], prm[SMALL_B], prm[R], prm[V0]
    return (prm[A] * a, 2.0 * a, a * a, prm[B] * b * prm[C4], 2.0 * b, b * b,
            prm[E0], v0, r, prm[C1], prm[C2], prm[C3],
            quadruple_factor(prm[C1], prm[C3], v0, r), prm[P], prm[LAM], dt,
            prm[A] * a * prm[SIGMA] * math.sqrt(dt))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _derivatives(y, firing, drive, k):
    """Time derivatives of one node's state ``y``, given its ``firing`` and ``drive``."""
    aa, a2, a_sq, bb, b2, b_sq, e0, v0, r, c1, c2, c3, factor = k[:13]
    y0, y1, y2, y3, y4, y5 = y
    e1, e3 = paired_exp(y0, c1, c3, v0, r, factor)
    return (y3, y4, y5,
            aa * firing - a2 * y3 - a_sq * y0,
            aa * (drive + c2 * (2.0 * e0 / (1.0 + e1))) - a2 * y4 - a_sq * y1,
            bb * (2.0 * e0 / (1.0 + e3)) - b2 * y5 - b_sq * y2)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _step(y, firing, coupling, xi, dv, k):
    """One stochastic Heun step of one node: state tuple ``y`` → the next one.

    ``firing`` is ``S(v)`` of ``y``; ``xi`` the scaled noise draw on y4.
    """
    dt, half = k[_K_DT], 0.5 * k[_K_DT]
    drive = k[_K_P] + coupling
    d = _derivatives(y, firing, drive, k)
    z = (y[0] + dt * d[0], y[1] + dt * d[1], y[2] + dt * d[2], y[3] + dt * d[3],
         y[4] + dt * d[4] + xi, y[5] + dt * d[5])
    f = _derivatives(z, sigmoid(z[1] - z[2] + dv, k[_K_E0], k[_K_V0], k[_K_R]), drive, k)
    return (y[0] + half * (d[0] + f[0]), y[1] + half * (d[1] + f[1]),
            y[2] + half * (d[2] + f[2]), y[3] + half * (d[3] + f[3]),
            y[4] + half * (d[4] + f[4]) + xi, y[5] + half * (d[5] + f[5]))


@numba.njit(cache=True, inline="always")
def _load(state, i):
    """Node ``i``'s state tuple from the node-major ``state``."""
    b = N_STATE * i
    return state[b], state[b + 1], state[b + 2], state[b + 3], state[b + 4], state[b + 5]


@numba.njit(cache=True, inline="always")
def _store(state, i, y):
    """Write node ``i``'s state tuple into the node-major ``state``."""
    b = N_STATE * i
    state[b], state[b + 1], state[b + 2], state[b + 3], state[b + 4], state[b + 5] = y


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _fire_all(state, field, wave_t, k, out):
    """Pyramidal firing ``S(y1 - y2 + λ E w)`` of every node."""
    lam = k[_K_LAM] * wave_t
    for i in range(out.shape[0]):
        y = _load(state, i)
        out[i] = sigmoid(y[1] - y[2] + lam * field[i], k[_K_E0], k[_K_V0], k[_K_R])


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _advance_block(state, history, position, first, steps, coupling, firing, noise, wave,
                   field, k, decimate, acc, out):
    """Every node through the block of ``steps`` steps from step ``first``, in place.

    Each step is a loop over nodes that the compiler vectorises. ``firing`` holds the
    firing at the block start, already in ``history``; ``acc`` sums the EEG proxy.
    """
    for s in range(steps):
        t = first + s
        if s > 0:
            _fire_all(state, field, wave[t], k, firing)
            store_firing(history, position + s, firing)
        lam = k[_K_LAM] * wave[t]
        for i in range(firing.shape[0]):
            y = _step(_load(state, i), firing[i], coupling[s, i], k[_K_KICK] * noise[t, i],
                      lam * field[i], k)
            _store(state, i, y)
            acc[i] += y[1] - y[2]
        emit_average(acc, t, decimate, out)


@numba.njit(cache=True, nogil=True)
def run_numba(y, history, position, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """Advance ``y`` in place; return the next write ``position`` in ``history``."""
    return advance_in_blocks(_fire_all, _advance_block, y, history, position, ptr, source,
                             weight, delay, prm[G], _constants(prm, dt), noise, wave, field,
                             decimate, out)


def _sigmoid_numpy(v, prm):
    return 2.0 * prm[E0] / (1.0 + np.exp(prm[R] * (prm[V0] - v)))


def _derivatives_numpy(y, coupling, dv, prm):
    a_amp, b_amp, a, b = prm[A], prm[B], prm[SMALL_A], prm[SMALL_B]
    drive = prm[P] + prm[C2] * _sigmoid_numpy(prm[C1] * y[0], prm) + coupling
    return np.stack([
        y[3], y[4], y[5],
        a_amp * a * _sigmoid_numpy(y[1] - y[2] + dv, prm) - 2.0 * a * y[3] - a * a * y[0],
        a_amp * a * drive - 2.0 * a * y[4] - a * a * y[1],
        b_amp * b * prm[C4] * _sigmoid_numpy(prm[C3] * y[0], prm) - 2.0 * b * y[5]
        - b * b * y[2],
    ])


def run_numpy(y, history, position, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """NumPy twin of :func:`run_numba` (same arguments, same result), one step at a time."""
    kick = prm[A] * prm[SMALL_A] * prm[SIGMA] * np.sqrt(dt)
    max_delay = int(delay.max(initial=0))
    coupling = np.empty((1, y.shape[1]))
    acc = np.zeros(y.shape[1])
    for t in range(noise.shape[0]):
        position = make_room_numpy(history, position, 1, max_delay)
        dv = prm[LAM] * field * wave[t]
        history[:, position] = _sigmoid_numpy(y[1] - y[2] + dv, prm)
        block_input_numpy(history, position, 1, ptr, source, weight, delay, prm[G], coupling)
        k1 = _derivatives_numpy(y, coupling[0], dv, prm)
        trial = y + dt * k1
        trial[4] += kick * noise[t]
        k2 = _derivatives_numpy(trial, coupling[0], dv, prm)
        y += 0.5 * dt * (k1 + k2)
        y[4] += kick * noise[t]
        position += 1
        acc += y[1] - y[2]
        if (t + 1) % decimate == 0:
            out[(t + 1) // decimate - 1] = acc / decimate
            acc[:] = 0.0
    return position
