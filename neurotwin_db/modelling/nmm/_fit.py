"""Fit a neural-mass model's parameters to spectral features of EEG.

The loss is a chi-square: ``Σ ((f_sim - f_target) / s)²`` over the chosen features,
where ``s`` is the standard error of the difference. It is estimated from the spread of
each feature across segments of the target recording, combined for the target's length
and the simulation's, and never smaller than the feature's test-retest floor. Each
simulation in a fit reuses one noise seed (common random numbers), so the loss is a
deterministic function of the parameters; each restart draws its own noise.

Each optimiser restart (CMA-ES from the ``cma`` package, or scipy's differential
evolution) starts from its own seed and simulates with its own noise, so the spread of
the restarts also measures how much the simulation noise moves the optimum. The
reported uncertainty of a parameter combines:

- the spread of the best values of the restarts that fit equally well (loss within
  Δχ² = k of the best, for k fitted dimensions; worse local minima are left out);
- the larger of two local measures: the curvature of the loss at the best point
  (covariance ``2 H⁻¹``, the inverse Fisher information of a chi-square loss), and half
  the extent of the Δχ² = 1 region on a grid around the best point (which does not
  assume a quadratic valley).

A fit converges when the best loss per feature is at most ``tolerance`` (default 4: on
average, every feature is matched within two standard errors).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import trapezoid

from neurotwin_db.errors import InputError, ModelDivergenceError
from neurotwin_db.modelling.nmm._features import (
    SpectralFeatures,
    Spectrum,
    spectral_features,
    welch_psd,
)
from neurotwin_db.modelling.nmm._models import Model, with_parameters
from neurotwin_db.modelling.nmm._simulate import simulate

DEFAULT_FEATURES = {
    "jansen-rit": ("alpha_peak_hz", "rel_theta", "rel_alpha", "rel_beta"),
    "lanmm": ("alpha_peak_hz", "rel_theta", "rel_alpha", "rel_beta", "rel_gamma", "power_40hz"),
}
DEFAULT_PARAMETERS = {"jansen-rit": ("b", "C"), "lanmm": ("a_GABAs", "A_GABAf")}
OPTIMIZERS = ("cmaes", "de")
# The smallest standard error a feature gets: about the test-retest variability of resting
# EEG (the individual alpha frequency to ~0.3 Hz, relative band power to a few percent).
# A model need not match a recording more closely than the recording matches itself.
SCALE_FLOOR = {"alpha_peak_hz": 0.3, "power_40hz": 0.1, "aperiodic_exponent": 0.1,
               "aperiodic_offset": 0.1}
DEFAULT_SCALE_FLOOR = 0.03
DIVERGED_LOSS = 1e6
BACKGROUND = "background"
BACKGROUND_MAX = 0.95
FMAX = 45.0


@dataclass(frozen=True, slots=True)
class Target:
    """What a fit aims at: feature values, their standard errors and the spectrum."""

    features: dict[str, float]
    spread: dict[str, float]  # per-segment standard deviation of each feature
    segments: int
    segment_s: float
    spectrum: Spectrum
    source: str = ""
    aperiodic_exponent: float = 1.0  # of the recording: the background's 1/f slope

    def scales(self, simulated_s: float) -> np.ndarray:
        """Standard error of (simulated - target) for each feature."""
        k_sim = max(simulated_s / self.segment_s, 1.0)
        factor = math.sqrt(1.0 / self.segments + 1.0 / k_sim)
        return np.array([max(self.spread[n] * factor, SCALE_FLOOR.get(n, DEFAULT_SCALE_FLOOR))
                         for n in self.features])


def features_of(data: np.ndarray, sfreq: float) -> tuple[SpectralFeatures, Spectrum]:
    """Spectral features of a (channels, times) array, as they are computed for EEG."""
    spectrum = welch_psd(data, sfreq, fmin=1.0, fmax=min(80.0, sfreq / 2 - 1))
    return spectral_features(spectrum), spectrum


def make_target(data: np.ndarray, sfreq: float, names: Sequence[str], *,
                segment_s: float = 10.0, source: str = "") -> Target:
    """Target features of a recording, and their spread over ``segment_s`` segments."""
    data = np.atleast_2d(np.asarray(data, dtype=float))
    whole, spectrum = features_of(data, sfreq)
    values = whole.vector(names)
    missing = [n for n, v in zip(names, values, strict=True) if not math.isfinite(v)]
    if missing:
        raise InputError(f"feature(s) {', '.join(missing)} cannot be computed from "
                         f"{source or 'the data'}; leave them out of --features")
    step = int(round(segment_s * sfreq))
    pieces = [data[:, i:i + step] for i in range(0, data.shape[1] - step + 1, step)]
    if len(pieces) < 3:
        raise InputError(f"{source or 'the data'} lasts {data.shape[1] / sfreq:.1f} s; a fit "
                         f"needs at least 3 segments of {segment_s:g} s to estimate feature "
                         "errors")
    per_segment = np.array([features_of(p, sfreq)[0].vector(names) for p in pieces])
    spread = np.nanstd(per_segment, axis=0, ddof=1)
    exponent = whole.aperiodic_exponent if math.isfinite(whole.aperiodic_exponent) else 1.0
    return Target(dict(zip(names, map(float, values), strict=True)),
                  dict(zip(names, map(float, spread), strict=True)), len(pieces), segment_s,
                  spectrum, source, float(exponent))


@dataclass(frozen=True, slots=True)
class FitSettings:
    """How a fit runs: what to vary, the optimiser, restarts and simulation length."""

    parameters: tuple[str, ...]
    optimizer: str = "cmaes"
    seeds: tuple[int, ...] = (0, 1, 2)
    max_evaluations: int = 120
    duration_s: float = 20.0
    dt_s: float = 1e-4
    sim_seed: int = 12345
    tolerance: float = 4.0
    background: bool = True


def mix_background(spectrum: Spectrum, share: float, exponent: float) -> Spectrum:
    """The model's spectrum plus an aperiodic background holding ``share`` of the power.

    Both parts are normalised to unit power first, so ``share`` is the fraction of the
    total that is background. The background is ``1/f^exponent`` with the recording's own
    exponent: what the neural mass does not model (other sources, measurement noise),
    in the spirit of the channel-noise terms of DCM for cross-spectra.
    """
    freqs = spectrum.freqs
    model = spectrum.mean() / max(float(trapezoid(spectrum.mean(), freqs)), 1e-300)
    background = np.power(freqs, -exponent)
    background /= float(trapezoid(background, freqs))
    return Spectrum(freqs, (1.0 - share) * model + share * background, ("model",))


@dataclass
class Restart:
    """One optimiser run: its seed, best parameters, loss and evaluations."""

    seed: int
    best: dict[str, float]
    loss: float
    evaluations: int


@dataclass
class FitResult:
    """A finished fit. ``converged`` is False when the loss stayed above tolerance."""

    model: Model
    names: tuple[str, ...]
    features: tuple[str, ...]
    loss: float
    converged: bool
    restarts: list[Restart]
    uncertainty: dict[str, float]
    uncertainty_parts: dict[str, dict[str, float | None]]
    fitted: dict[str, float]
    target: Target
    fitted_spectrum: Spectrum
    evaluations: int
    values: dict[str, float] = field(default_factory=dict)  # fitted values, background too


def check_fittable(model: Model | type, names: Sequence[str]) -> None:
    """Refuse parameters the model cannot fit, naming the ones it can."""
    unknown = [n for n in names if n not in model.bounds]
    if unknown:
        raise InputError(f"{model.name} cannot fit {', '.join(unknown)}; fittable "
                         f"parameters are {', '.join(model.bounds)}")


class Objective:
    """Loss of a point of the unit cube, mapped linearly onto the parameters' bounds.

    With ``settings.background`` the last coordinate is the background share (0-0.95).
    """

    def __init__(self, base: Model, target: Target, settings: FitSettings) -> None:
        check_fittable(base, settings.parameters)
        self.base, self.target, self.settings = base, target, settings
        bounds = {n: base.bounds[n] for n in settings.parameters}
        if settings.background:
            bounds[BACKGROUND] = (0.0, BACKGROUND_MAX)
        self.dimensions = tuple(bounds)
        self.low = np.array([lo for lo, _ in bounds.values()])
        self.high = np.array([hi for _, hi in bounds.values()])
        self.names = tuple(target.features)
        self.goal = np.array([target.features[n] for n in self.names])
        self.scale = target.scales(settings.duration_s)
        self.evaluations = 0
        self.sim_seed = settings.sim_seed

    def values(self, unit: np.ndarray) -> dict[str, float]:
        """Parameter values (and background share) at a point of the unit cube."""
        values = self.low + np.clip(unit, 0.0, 1.0) * (self.high - self.low)
        return dict(zip(self.dimensions, map(float, values), strict=True))

    def model(self, unit: np.ndarray) -> Model:
        """The model at a point of the unit cube."""
        values = self.values(unit)
        return with_parameters(self.base, {n: values[n] for n in self.settings.parameters})

    def simulated(self, unit: np.ndarray) -> tuple[SpectralFeatures, Spectrum]:
        """Features of the model's simulated EEG (fixed noise seed), with its background."""
        sim = simulate(self.model(unit), duration_s=self.settings.duration_s,
                       dt_s=self.settings.dt_s, seed=self.sim_seed, sfreq=500.0)
        spectrum = welch_psd(sim.eeg, sim.sfreq, fmin=1.0, fmax=80.0)
        share = self.values(unit).get(BACKGROUND, 0.0)
        if share:
            spectrum = mix_background(spectrum, share, self.target.aperiodic_exponent)
        return spectral_features(spectrum), spectrum

    def __call__(self, unit: np.ndarray) -> float:
        self.evaluations += 1
        unit = np.clip(np.asarray(unit, float), 0.0, 1.0)
        try:
            feats, _ = self.simulated(unit)
        except ModelDivergenceError:
            return DIVERGED_LOSS
        z = (feats.vector(self.names) - self.goal) / self.scale
        z[~np.isfinite(z)] = 100.0
        return float(np.sum(z * z))


def fit(base: Model, target: Target, settings: FitSettings, *,
        progress: Callable[[int, int], None] | None = None) -> FitResult:
    """Fit ``settings.parameters`` of ``base`` to ``target`` with restarts."""
    if settings.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {settings.optimizer!r}; choose cmaes or de")
    if not settings.parameters:
        raise InputError("nothing to fit: give at least one parameter")
    objective = Objective(base, target, settings)
    restarts, best_units = [], []
    for done, seed in enumerate(settings.seeds):
        objective.sim_seed = settings.sim_seed + seed  # its own noise: a bootstrap too
        unit, loss = _optimise(objective, seed, settings)
        best_units.append(unit)
        restarts.append(Restart(seed, objective.values(unit), loss, objective.evaluations))
        if progress:
            progress(done + 1, len(settings.seeds))
    best = int(np.argmin([r.loss for r in restarts]))
    unit = best_units[best]
    objective.sim_seed = settings.sim_seed + restarts[best].seed
    loss = restarts[best].loss
    converged = loss / len(objective.names) <= settings.tolerance
    if converged:
        uncertainty, parts = _uncertainty(objective, unit, restarts)
    else:  # not a result: its uncertainty is not worth the evaluations
        uncertainty = dict.fromkeys(objective.dimensions, math.nan)
        parts = {n: {"restarts": None, "region": None, "curvature": None}
                 for n in objective.dimensions}
    fitted_features, fitted_spectrum = objective.simulated(unit)
    return FitResult(
        model=objective.model(unit), names=objective.dimensions, features=objective.names,
        loss=loss, converged=converged,
        restarts=restarts, uncertainty=uncertainty, uncertainty_parts=parts,
        fitted=dict(zip(objective.names, map(float, fitted_features.vector(objective.names)),
                        strict=True)),
        target=target, fitted_spectrum=fitted_spectrum, evaluations=objective.evaluations,
        values=restarts[best].best)


def _optimise(objective: Objective, seed: int, settings: FitSettings
              ) -> tuple[np.ndarray, float]:
    k = len(objective.dimensions)
    start = np.random.default_rng(seed).uniform(0.2, 0.8, k)
    if settings.optimizer == "cmaes" and k >= 2:
        return _cmaes(objective, start, seed, settings.max_evaluations)
    return _differential_evolution(objective, seed, k, settings.max_evaluations)


def _cmaes(objective: Objective, start: np.ndarray, seed: int, budget: int
           ) -> tuple[np.ndarray, float]:
    import cma

    options = {"bounds": [0.0, 1.0], "seed": seed + 1, "maxfevals": budget, "verbose": -9,
               "tolx": 1e-3, "tolfun": 1e-2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cma's notes on small budgets
        es = cma.CMAEvolutionStrategy(start, 0.25, options)
        while not es.stop():
            candidates = es.ask()
            es.tell(candidates, [objective(np.asarray(c)) for c in candidates])
    return np.clip(np.asarray(es.result.xbest, float), 0.0, 1.0), float(es.result.fbest)


def _differential_evolution(objective: Objective, seed: int, k: int, budget: int
                            ) -> tuple[np.ndarray, float]:
    from scipy.optimize import differential_evolution

    popsize = 6
    generations = max(1, budget // (popsize * k) - 1)
    result = differential_evolution(objective, [(0.0, 1.0)] * k, seed=seed, popsize=popsize,
                                    maxiter=generations, polish=False, tol=1e-3, init="sobol")
    return np.asarray(result.x, float), float(result.fun)


def _uncertainty(objective: Objective, unit: np.ndarray, restarts: list[Restart]
                 ) -> tuple[dict[str, float], dict[str, dict[str, float | None]]]:
    names = objective.dimensions
    equally_good = _equally_good(restarts, len(names))
    spread = (np.std([[r.best[n] for n in names] for r in equally_good], axis=0, ddof=1)
              if len(equally_good) > 1 else np.zeros(len(names)))
    width = objective.high - objective.low
    region = _region_half_width(objective, unit, min(r.loss for r in restarts)) * width
    curvature = _curvature_sd(objective, unit) * width
    # a direction without positive curvature is measured by the region alone
    local = np.where(np.isfinite(curvature), np.maximum(region, curvature), region)
    total = np.sqrt(spread ** 2 + local ** 2)
    parts = {n: {"restarts": float(s), "region": float(r),
                 "curvature": None if not np.isfinite(c) else float(c)}
             for n, s, r, c in zip(names, spread, region, curvature, strict=True)}
    return dict(zip(names, map(float, total), strict=True)), parts


def _region_half_width(objective: Objective, unit: np.ndarray, best: float,
                       span: float = 0.05) -> np.ndarray:
    """Half the extent, per axis, of the Δχ² ≤ 1 region, from a grid around the best point.

    For a chi-square loss that is one standard deviation, measured without assuming the
    valley is quadratic (nor aligned with the axes). The grid (7 points per axis up to two
    dimensions, 5 beyond) doubles its span while the region reaches its edge.
    """
    k = len(unit)
    points_per_axis = 7 if k <= 2 else 5
    while True:
        offsets = np.linspace(-span, span, points_per_axis)
        grid = np.stack(np.meshgrid(*[offsets] * k, indexing="ij"), axis=-1).reshape(-1, k)
        losses = np.array([objective(np.clip(unit + g, 0.0, 1.0)) for g in grid])
        inside = grid[losses <= best + 1.0]
        spacing = offsets[1] - offsets[0]
        if not len(inside):
            return np.full(k, spacing / 2)
        at_edge = np.isclose(np.abs(inside), span).any()
        if not at_edge or span >= 0.4:
            return (inside.max(axis=0) - inside.min(axis=0)) / 2 + spacing / 2
        span *= 2


def _equally_good(restarts: list[Restart], dimensions: int) -> list[Restart]:
    """Restarts whose loss is within ``dimensions`` of the best (Δχ² ≤ k).

    That is about the 68 % joint region; the others stopped in worse local minima and
    say nothing about the spread of equally good fits.
    """
    best = min(r.loss for r in restarts)
    return [r for r in restarts if r.loss <= best + dimensions]


def _curvature_sd(objective: Objective, unit: np.ndarray, step: float = 0.02) -> np.ndarray:
    """Standard deviations from a central-difference Hessian of the loss (unit cube).

    Each axis's step is halved (down to 1/32 of ``step``) until the loss rises by at
    most 8 along it, so a steep, curved valley is measured where it is still quadratic.
    """
    k = len(unit)
    centre = np.clip(unit, step, 1.0 - step)
    f0 = objective(centre)
    steps = np.array([_axis_step(objective, centre, f0, i, step) for i in range(k)])
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            a, b = np.eye(k)[i] * steps[i], np.eye(k)[j] * steps[j]
            if i == j:
                value = objective(centre + a) - 2 * f0 + objective(centre - a)
            else:
                value = (objective(centre + a + b) - objective(centre + a - b)
                         - objective(centre - a + b) + objective(centre - a - b)) / 4.0
            hessian[i, j] = hessian[j, i] = value / (steps[i] * steps[j])
    try:
        covariance = 2.0 * np.linalg.inv(hessian)
        variances = np.diag(covariance)
        if np.all(variances > 0) and np.all(np.linalg.eigvalsh(hessian) > 0):
            return np.sqrt(variances)
    except np.linalg.LinAlgError:
        pass  # a singular Hessian: fall back to the per-axis curvature below
    diagonal = np.diag(hessian)
    return np.where(diagonal > 0, np.sqrt(2.0 / np.where(diagonal > 0, diagonal, 1.0)), np.nan)


def _axis_step(objective: Objective, centre: np.ndarray, f0: float, axis: int,
               step: float) -> float:
    offset = np.eye(len(centre))[axis]
    while step > 0.02 / 32 and max(objective(centre + step * offset),
                                   objective(centre - step * offset)) - f0 > 8.0:
        step /= 2
    return step
