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
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neurotwin_db.modelling._kernels.delays import delayed_input_numba, delayed_input_numpy

# parameter vector layout
A, B, SMALL_A, SMALL_B, C1, C2, C3, C4, E0, V0, R, P, G, SIGMA, LAM = range(15)
N_PARAMS = 15
N_STATE = 6


@numba.njit(cache=True, inline="always")
def _sigmoid(v: float, e0: float, v0: float, r: float) -> float:
    return 2.0 * e0 / (1.0 + math.exp(r * (v0 - v)))


@numba.njit(cache=True)
def _derivatives(y: np.ndarray, coupling: np.ndarray, dv: np.ndarray, prm: np.ndarray,
                 dy: np.ndarray) -> None:
    a_amp, b_amp, a, b = prm[A], prm[B], prm[SMALL_A], prm[SMALL_B]
    e0, v0, r = prm[E0], prm[V0], prm[R]
    for i in range(y.shape[1]):
        v = y[1, i] - y[2, i] + dv[i]
        dy[0, i] = y[3, i]
        dy[1, i] = y[4, i]
        dy[2, i] = y[5, i]
        dy[3, i] = a_amp * a * _sigmoid(v, e0, v0, r) - 2.0 * a * y[3, i] - a * a * y[0, i]
        drive = prm[P] + prm[C2] * _sigmoid(prm[C1] * y[0, i], e0, v0, r) + coupling[i]
        dy[4, i] = a_amp * a * drive - 2.0 * a * y[4, i] - a * a * y[1, i]
        dy[5, i] = (b_amp * b * prm[C4] * _sigmoid(prm[C3] * y[0, i], e0, v0, r)
                    - 2.0 * b * y[5, i] - b * b * y[2, i])


@numba.njit(cache=True)
def run_numba(y, history, head, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """Advance ``y`` in place; return the new ``head`` of the history ring buffer."""
    n = y.shape[1]
    coupling = np.empty(n)
    dv = np.empty(n)
    k1 = np.empty_like(y)
    k2 = np.empty_like(y)
    trial = np.empty_like(y)
    kick = prm[A] * prm[SMALL_A] * prm[SIGMA] * math.sqrt(dt)
    size = history.shape[0]
    acc = np.zeros(n)
    for t in range(noise.shape[0]):
        delayed_input_numba(history, head, ptr, source, weight, delay, coupling)
        for i in range(n):
            coupling[i] *= prm[G]
            dv[i] = prm[LAM] * field[i] * wave[t]
        _derivatives(y, coupling, dv, prm, k1)
        for s in range(N_STATE):
            for i in range(n):
                trial[s, i] = y[s, i] + dt * k1[s, i]
        for i in range(n):
            trial[4, i] += kick * noise[t, i]
        _derivatives(trial, coupling, dv, prm, k2)
        for s in range(N_STATE):
            for i in range(n):
                y[s, i] += 0.5 * dt * (k1[s, i] + k2[s, i])
        head += 1
        if head == size:
            head = 0
        for i in range(n):
            y[4, i] += kick * noise[t, i]
            v = y[1, i] - y[2, i] + dv[i]
            history[head, i] = _sigmoid(v, prm[E0], prm[V0], prm[R])
            acc[i] += y[1, i] - y[2, i]
        if (t + 1) % decimate == 0:
            row = (t + 1) // decimate - 1
            for i in range(n):
                out[row, i] = acc[i] / decimate
                acc[i] = 0.0
    return head


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


def run_numpy(y, history, head, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """NumPy twin of :func:`run_numba` (same arguments, same result)."""
    kick = prm[A] * prm[SMALL_A] * prm[SIGMA] * np.sqrt(dt)
    acc = np.zeros(y.shape[1])
    for t in range(noise.shape[0]):
        coupling = prm[G] * delayed_input_numpy(history, head, ptr, source, weight, delay)
        dv = prm[LAM] * field * wave[t]
        k1 = _derivatives_numpy(y, coupling, dv, prm)
        trial = y + dt * k1
        trial[4] += kick * noise[t]
        k2 = _derivatives_numpy(trial, coupling, dv, prm)
        y += 0.5 * dt * (k1 + k2)
        y[4] += kick * noise[t]
        head = (head + 1) % history.shape[0]
        history[head] = _sigmoid_numpy(y[1] - y[2] + dv, prm)
        acc += y[1] - y[2]
        if (t + 1) % decimate == 0:
            out[(t + 1) // decimate - 1] = acc / decimate
            acc[:] = 0.0
    return head
