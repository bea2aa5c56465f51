"""Laminar neural mass model (LaNMM) network: stochastic Heun steps, delays, a field.

State ``x`` has shape ``(14, n)``. Rows 0-6 are post-synaptic potentials (mV) made by the
firing of P1 (deep pyramidal, AMPA), SS (spiny stellate, AMPA), SST (slow inhibition,
GABA_A slow), P2 (superficial pyramidal, AMPA), PV (fast inhibition, GABA_A fast), and
the external inputs to P1 and P2 (AMPA); rows 7-13 are their time derivatives.

Membrane potentials (mV) of node ``i``, with ``ΔV = λ·E_i·w(t)`` on both pyramids::

    v_P1  = C0 x_SS + C1 x_SST + C10 x_P2 + u1 + ΔV
    v_SS  = C3 x_P1            v_SST = C4 x_P1
    v_P2  = C11 x_P1 + C5 x_P2 + C6 x_PV + u2 + ΔV
    v_PV  = C12 x_P1 + C8 x_P2 + C9 x_PV

Each synapse is ``x'' = A a S(v) - 2a x' - a² x`` with its own gain and rate; P2 fires
with threshold ``v0_p2``. The inputs are ``u'' = A a (p + G Σ_j w_ij S(v_P1,j(t - d_ij)))
- 2a u' - a² u`` plus noise ``A a σ ξ``. The EEG proxy is ``v_P1 + v_P2``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neurotwin_db.modelling._kernels.delays import delayed_input_numba, delayed_input_numpy

(A_AMPA, A_GABAS, A_GABAF, R_AMPA, R_GABAS, R_GABAF, C0, C1, C3, C4, C5, C6, C8, C9, C10,
 C11, C12, E0, V0, V0_P2, R, P1, P2, G, SIGMA1, SIGMA2, LAM) = range(27)
N_PARAMS = 27
N_STATE = 14
_HALF = 7


@numba.njit(cache=True, inline="always")
def _sigmoid(v: float, e0: float, v0: float, r: float) -> float:
    return 2.0 * e0 / (1.0 + math.exp(r * (v0 - v)))


@numba.njit(cache=True, inline="always")
def _synapse(gain: float, rate: float, firing: float, x: float, dx: float) -> float:
    return gain * rate * firing - 2.0 * rate * dx - rate * rate * x


@numba.njit(cache=True, inline="always")
def _potentials(x, i, dv, prm):
    v_p1 = prm[C0] * x[1, i] + prm[C1] * x[2, i] + prm[C10] * x[3, i] + x[5, i] + dv
    v_p2 = prm[C11] * x[0, i] + prm[C5] * x[3, i] + prm[C6] * x[4, i] + x[6, i] + dv
    return v_p1, v_p2


@numba.njit(cache=True)
def _derivatives(x, coupling, dv, prm, dx):
    e0, v0, r = prm[E0], prm[V0], prm[R]
    g_ampa, g_slow, g_fast = prm[A_AMPA], prm[A_GABAS], prm[A_GABAF]
    r_ampa, r_slow, r_fast = prm[R_AMPA], prm[R_GABAS], prm[R_GABAF]
    for i in range(x.shape[1]):
        v_p1, v_p2 = _potentials(x, i, dv[i], prm)
        v_pv = prm[C12] * x[0, i] + prm[C8] * x[3, i] + prm[C9] * x[4, i]
        for s in range(_HALF):
            dx[s, i] = x[s + _HALF, i]
        dx[7, i] = _synapse(g_ampa, r_ampa, _sigmoid(v_p1, e0, v0, r), x[0, i], x[7, i])
        dx[8, i] = _synapse(g_ampa, r_ampa, _sigmoid(prm[C3] * x[0, i], e0, v0, r), x[1, i],
                            x[8, i])
        dx[9, i] = _synapse(g_slow, r_slow, _sigmoid(prm[C4] * x[0, i], e0, v0, r), x[2, i],
                            x[9, i])
        dx[10, i] = _synapse(g_ampa, r_ampa, _sigmoid(v_p2, e0, prm[V0_P2], r), x[3, i],
                             x[10, i])
        dx[11, i] = _synapse(g_fast, r_fast, _sigmoid(v_pv, e0, v0, r), x[4, i], x[11, i])
        dx[12, i] = _synapse(g_ampa, r_ampa, prm[P1] + coupling[i], x[5, i], x[12, i])
        dx[13, i] = _synapse(g_ampa, r_ampa, prm[P2] + coupling[i], x[6, i], x[13, i])


@numba.njit(cache=True)
def run_numba(x, history, head, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """Advance ``x`` in place; ``noise`` is ``(steps, 2, n)``; return the new ``head``."""
    n = x.shape[1]
    coupling = np.empty(n)
    dv = np.empty(n)
    k1 = np.empty_like(x)
    k2 = np.empty_like(x)
    trial = np.empty_like(x)
    scale = prm[A_AMPA] * prm[R_AMPA] * math.sqrt(dt)
    kick1, kick2 = scale * prm[SIGMA1], scale * prm[SIGMA2]
    size = history.shape[0]
    acc = np.zeros(n)
    for t in range(noise.shape[0]):
        delayed_input_numba(history, head, ptr, source, weight, delay, coupling)
        for i in range(n):
            coupling[i] *= prm[G]
            dv[i] = prm[LAM] * field[i] * wave[t]
        _derivatives(x, coupling, dv, prm, k1)
        for s in range(N_STATE):
            for i in range(n):
                trial[s, i] = x[s, i] + dt * k1[s, i]
        for i in range(n):
            trial[12, i] += kick1 * noise[t, 0, i]
            trial[13, i] += kick2 * noise[t, 1, i]
        _derivatives(trial, coupling, dv, prm, k2)
        for s in range(N_STATE):
            for i in range(n):
                x[s, i] += 0.5 * dt * (k1[s, i] + k2[s, i])
        for i in range(n):
            x[12, i] += kick1 * noise[t, 0, i]
            x[13, i] += kick2 * noise[t, 1, i]
        head += 1
        if head == size:
            head = 0
        for i in range(n):
            v_p1, v_p2 = _potentials(x, i, dv[i], prm)
            history[head, i] = _sigmoid(v_p1, prm[E0], prm[V0], prm[R])
            acc[i] += v_p1 + v_p2
        if (t + 1) % decimate == 0:
            row = (t + 1) // decimate - 1
            for i in range(n):
                out[row, i] = acc[i] / decimate
                acc[i] = 0.0
    return head


def _sigmoid_numpy(v, threshold, prm):
    return 2.0 * prm[E0] / (1.0 + np.exp(prm[R] * (threshold - v)))


def _potentials_numpy(x, dv, prm):
    v_p1 = prm[C0] * x[1] + prm[C1] * x[2] + prm[C10] * x[3] + x[5] + dv
    v_p2 = prm[C11] * x[0] + prm[C5] * x[3] + prm[C6] * x[4] + x[6] + dv
    return v_p1, v_p2


def _derivatives_numpy(x, coupling, dv, prm):
    v_p1, v_p2 = _potentials_numpy(x, dv, prm)
    v_pv = prm[C12] * x[0] + prm[C8] * x[3] + prm[C9] * x[4]
    s = _sigmoid_numpy
    gains = (prm[A_AMPA], prm[A_AMPA], prm[A_GABAS], prm[A_AMPA], prm[A_GABAF], prm[A_AMPA],
             prm[A_AMPA])
    rates = np.array([prm[R_AMPA], prm[R_AMPA], prm[R_GABAS], prm[R_AMPA], prm[R_GABAF],
                      prm[R_AMPA], prm[R_AMPA]])[:, None]
    firing = np.stack([
        s(v_p1, prm[V0], prm), s(prm[C3] * x[0], prm[V0], prm), s(prm[C4] * x[0], prm[V0], prm),
        s(v_p2, prm[V0_P2], prm), s(v_pv, prm[V0], prm),
        prm[P1] + coupling, prm[P2] + coupling,
    ])
    accel = (np.array(gains)[:, None] * rates * firing - 2.0 * rates * x[_HALF:]
             - rates * rates * x[:_HALF])
    return np.concatenate([x[_HALF:], accel])


def run_numpy(x, history, head, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """NumPy twin of :func:`run_numba` (same arguments, same result)."""
    scale = prm[A_AMPA] * prm[R_AMPA] * np.sqrt(dt)
    kicks = np.array([scale * prm[SIGMA1], scale * prm[SIGMA2]])[:, None]
    acc = np.zeros(x.shape[1])
    for t in range(noise.shape[0]):
        coupling = prm[G] * delayed_input_numpy(history, head, ptr, source, weight, delay)
        dv = prm[LAM] * field * wave[t]
        k1 = _derivatives_numpy(x, coupling, dv, prm)
        trial = x + dt * k1
        trial[12:] += kicks * noise[t]
        k2 = _derivatives_numpy(trial, coupling, dv, prm)
        x += 0.5 * dt * (k1 + k2)
        x[12:] += kicks * noise[t]
        head = (head + 1) % history.shape[0]
        v_p1, v_p2 = _potentials_numpy(x, dv, prm)
        history[head] = _sigmoid_numpy(v_p1, prm[V0], prm)
        acc += v_p1 + v_p2
        if (t + 1) % decimate == 0:
            out[(t + 1) // decimate - 1] = acc / decimate
            acc[:] = 0.0
    return head
