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

The kernels are organised as in ``jansen_rit.py`` (blocks of steps sharing one network
input, each step a vectorised loop over nodes, :func:`~jansen_rit.fast_exp`); the delayed
output is the P1 firing ``S(v_P1)``, written to ``history`` at the start of each step
and reused by Heun's predictor. With ``C3 = 4 C4`` (the defaults) ``S(v_SS)`` and
``S(v_SST)`` share one exponential.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from neurotwin_db.modelling._kernels.delays import (
    advance_in_blocks,
    block_input_numpy,
    emit_average,
    make_room_numpy,
    store_firing,
)
from neurotwin_db.modelling._kernels.jansen_rit import (
    paired_exp,
    quadruple_factor,
    sigmoid,
)

(A_AMPA, A_GABAS, A_GABAF, R_AMPA, R_GABAS, R_GABAF, C0, C1, C3, C4, C5, C6, C8, C9, C10,
 C11, C12, E0, V0, V0_P2, R, P1, P2, G, SIGMA1, SIGMA2, LAM) = range(27)
N_PARAMS = 27
N_STATE = 14
_HALF = 7
_DT, _KICK1, _KICK2, _FACTOR = range(N_PARAMS, N_PARAMS + 4)  # appended by _constants


@numba.njit(cache=True, nogil=True)
def _constants(prm, dt):
    """The parameters as a tuple, then dt, the two noise kicks and the shared-exp factor."""
    scale = prm[A_AMPA] * prm[R_AMPA] * math.sqrt(dt)
    return to_fixed_tuple(prm, N_PARAMS) + (
        dt, scale * prm[SIGMA1], scale * prm[SIGMA2],
        quadruple_factor(prm[C3], prm[C4], prm[V0], prm[R]))


@numba.njit(cache=True, inline="always")
def _synapse(gain: float, rate: float, firing: float, x: float, dx: float) -> float:
    return gain * rate * firing - 2.0 * rate * dx - rate * rate * x


@numba.njit(cache=True, inline="always")
def _v_p1(x, dv, k):
    return k[C0] * x[1] + k[C1] * x[2] + k[C10] * x[3] + x[5] + dv


@numba.njit(cache=True, inline="always")
def _v_p2(x, dv, k):
    return k[C11] * x[0] + k[C5] * x[3] + k[C6] * x[4] + x[6] + dv


@numba.njit(cache=True, inline="always", error_model="numpy")
def _accelerations(x, firing, dv, coupling, k):
    """Rows 7-13 of the time derivative of one node's state tuple; ``firing`` = S(v_P1)."""
    e0, v0, r, g_ampa, r_ampa = k[E0], k[V0], k[R], k[A_AMPA], k[R_AMPA]
    e_ss, e_sst = paired_exp(x[0], k[C3], k[C4], v0, r, k[_FACTOR])
    v_pv = k[C12] * x[0] + k[C8] * x[3] + k[C9] * x[4]
    return (_synapse(g_ampa, r_ampa, firing, x[0], x[7]),
            _synapse(g_ampa, r_ampa, 2.0 * e0 / (1.0 + e_ss), x[1], x[8]),
            _synapse(k[A_GABAS], k[R_GABAS], 2.0 * e0 / (1.0 + e_sst), x[2], x[9]),
            _synapse(g_ampa, r_ampa, sigmoid(_v_p2(x, dv, k), e0, k[V0_P2], r), x[3],
                     x[10]),
            _synapse(k[A_GABAF], k[R_GABAF], sigmoid(v_pv, e0, v0, r), x[4], x[11]),
            _synapse(g_ampa, r_ampa, k[P1] + coupling, x[5], x[12]),
            _synapse(g_ampa, r_ampa, k[P2] + coupling, x[6], x[13]))


@numba.njit(cache=True, inline="always")
def _axpy(a, h, b):
    """``a + h b`` for 7-tuples."""
    return (a[0] + h * b[0], a[1] + h * b[1], a[2] + h * b[2], a[3] + h * b[3],
            a[4] + h * b[4], a[5] + h * b[5], a[6] + h * b[6])


@numba.njit(cache=True, inline="always")
def _mean_step(a, h, b, c):
    """``a + h (b + c)`` for 7-tuples: Heun's corrector with ``h = dt / 2``."""
    return (a[0] + h * (b[0] + c[0]), a[1] + h * (b[1] + c[1]), a[2] + h * (b[2] + c[2]),
            a[3] + h * (b[3] + c[3]), a[4] + h * (b[4] + c[4]), a[5] + h * (b[5] + c[5]),
            a[6] + h * (b[6] + c[6]))


@numba.njit(cache=True, inline="always")
def _kick(v, xi1, xi2):
    """The noise on the input velocities (rows 12 and 13) of a 7-tuple of velocities."""
    return (v[0], v[1], v[2], v[3], v[4], v[5] + xi1, v[6] + xi2)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _step(x, firing, coupling, xi1, xi2, dv, k):
    """One stochastic Heun step of one node: state tuple ``x`` → the next one.

    ``firing`` is ``S(v_P1)`` of ``x``; ``xi1``, ``xi2`` the scaled noise draws.
    """
    dt = k[_DT]
    psp, velocity = x[:_HALF], x[_HALF:]
    accel = _accelerations(x, firing, dv, coupling, k)
    z = _axpy(psp, dt, velocity) + _kick(_axpy(velocity, dt, accel), xi1, xi2)
    trial = sigmoid(_v_p1(z, dv, k), k[E0], k[V0], k[R])
    accel_z = _accelerations(z, trial, dv, coupling, k)
    half = 0.5 * dt
    return (_mean_step(psp, half, velocity, z[_HALF:])
            + _kick(_mean_step(velocity, half, accel, accel_z), xi1, xi2))


@numba.njit(cache=True, inline="always")
def _load(state, i):
    """Node ``i``'s state tuple from the node-major ``state``."""
    b = N_STATE * i
    return (state[b], state[b + 1], state[b + 2], state[b + 3], state[b + 4], state[b + 5],
            state[b + 6], state[b + 7], state[b + 8], state[b + 9], state[b + 10],
            state[b + 11], state[b + 12], state[b + 13])


@numba.njit(cache=True, inline="always")
def _store(state, i, x):
    """Write node ``i``'s state tuple into the node-major ``state``."""
    b = N_STATE * i
    state[b], state[b + 1], state[b + 2], state[b + 3], state[b + 4], state[b + 5] = x[:6]
    state[b + 6], state[b + 7], state[b + 8], state[b + 9], state[b + 10] = x[6:11]
    state[b + 11], state[b + 12], state[b + 13] = x[11:]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _fire_all(state, field, wave_t, k, out):
    """P1 firing ``S(v_P1)`` of every node."""
    lam = k[LAM] * wave_t
    for i in range(out.shape[0]):
        out[i] = sigmoid(_v_p1(_load(state, i), lam * field[i], k), k[E0], k[V0], k[R])


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _advance_block(state, history, position, first, steps, coupling, firing, noise, wave,
                   field, k, decimate, acc, out):
    """Every node through the block of ``steps`` steps from step ``first``, in place.

    As ``jansen_rit._advance_block``; ``noise`` is ``(steps, 2, n)``.
    """
    for s in range(steps):
        t = first + s
        if s > 0:
            _fire_all(state, field, wave[t], k, firing)
            store_firing(history, position + s, firing)
        lam = k[LAM] * wave[t]
        for i in range(firing.shape[0]):
            dv = lam * field[i]
            x = _step(_load(state, i), firing[i], coupling[s, i], k[_KICK1] * noise[t, 0, i],
                      k[_KICK2] * noise[t, 1, i], dv, k)
            _store(state, i, x)
            acc[i] += _v_p1(x, dv, k) + _v_p2(x, dv, k)
        emit_average(acc, t, decimate, out)


@numba.njit(cache=True, nogil=True)
def run_numba(x, history, position, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """Advance ``x`` in place; ``noise`` is ``(steps, 2, n)``; return the next position."""
    return advance_in_blocks(_fire_all, _advance_block, x, history, position, ptr, source,
                             weight, delay, prm[G], _constants(prm, dt), noise, wave, field,
                             decimate, out)


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


def run_numpy(x, history, position, ptr, source, weight, delay, prm, dt, noise, wave, field,
              decimate, out):
    """NumPy twin of :func:`run_numba` (same arguments, same result), one step at a time."""
    scale = prm[A_AMPA] * prm[R_AMPA] * np.sqrt(dt)
    kicks = np.array([scale * prm[SIGMA1], scale * prm[SIGMA2]])[:, None]
    max_delay = int(delay.max(initial=0))
    coupling = np.empty((1, x.shape[1]))
    acc = np.zeros(x.shape[1])
    for t in range(noise.shape[0]):
        position = make_room_numpy(history, position, 1, max_delay)
        dv = prm[LAM] * field * wave[t]
        history[:, position] = _sigmoid_numpy(_potentials_numpy(x, dv, prm)[0], prm[V0], prm)
        block_input_numpy(history, position, 1, ptr, source, weight, delay, prm[G], coupling)
        k1 = _derivatives_numpy(x, coupling[0], dv, prm)
        trial = x + dt * k1
        trial[12:] += kicks * noise[t]
        k2 = _derivatives_numpy(trial, coupling[0], dv, prm)
        x += 0.5 * dt * (k1 + k2)
        x[12:] += kicks * noise[t]
        position += 1
        v_p1, v_p2 = _potentials_numpy(x, dv, prm)
        acc += v_p1 + v_p2
        if (t + 1) % decimate == 0:
            out[(t + 1) // decimate - 1] = acc / decimate
            acc[:] = 0.0
    return position
