"""Simulate a neural-mass network: one call, numba or NumPy kernel, seeded noise.

The integrator is stochastic Heun (as TVB's ``HeunStochastic``): a predictor and a
corrector step with the same noise draw and the same delayed network input. Noise is
drawn from ``numpy.random.default_rng(seed)`` in blocks, so the numba and NumPy kernels
see the same draws and agree to round-off. The first ``transient_s`` seconds are run
and discarded; the stimulation clock starts after them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from neurotwin_db.errors import InputError, ModelDivergenceError
from neurotwin_db.modelling._kernels.delays import new_history
from neurotwin_db.modelling.nmm._models import Model, check_parameters, parameters
from neurotwin_db.modelling.nmm._stimulation import Stimulation

BLOCK_STEPS = 10_000
STEP_FRACTION = 0.1  # dt must resolve the fastest synaptic time constant this finely
BACKENDS = ("numba", "numpy")
PREFETCH_INPUTS = 16  # nodes × noise inputs from which noise is drawn in the background


@dataclass(frozen=True, slots=True)
class Network:
    """Nodes, their connections and conduction delays, as the kernels take them."""

    weights: np.ndarray
    tract_lengths: np.ndarray
    labels: tuple[str, ...]
    coupling: float = 0.0
    speed_mm_per_ms: float = 3.0

    @classmethod
    def single(cls) -> Network:
        """One uncoupled node."""
        return cls(np.zeros((1, 1)), np.zeros((1, 1)), ("node",))

    @classmethod
    def of(cls, connectome, coupling: float, speed_mm_per_ms: float = 3.0) -> Network:
        """A network from a :class:`Connectome` (weights row = target)."""
        if not (np.isfinite(speed_mm_per_ms) and speed_mm_per_ms > 0):
            raise InputError(f"conduction speed {speed_mm_per_ms} mm/ms is not a positive "
                             "number; give --speed in mm/ms (3 is typical)")
        if not np.isfinite(coupling):
            raise InputError(f"global coupling {coupling} is not a finite number")
        return cls(np.asarray(connectome.weights, float),
                   np.asarray(connectome.tract_lengths, float), tuple(connectome.labels),
                   float(coupling), float(speed_mm_per_ms))

    def csr(self, dt_s: float) -> tuple[np.ndarray, ...]:
        """``ptr, source, weight, delay`` of the non-zero connections (delay in steps)."""
        targets, sources = np.nonzero(self.weights)
        ptr = np.zeros(len(self.labels) + 1, dtype=np.int64)
        np.add.at(ptr, targets + 1, 1)
        steps = np.rint(self.tract_lengths[targets, sources]
                        / self.speed_mm_per_ms / (dt_s * 1e3)).astype(np.int64)
        return (np.cumsum(ptr), sources.astype(np.int64),
                self.weights[targets, sources].astype(float), steps)


@dataclass(frozen=True, slots=True)
class Simulation:
    """A simulated EEG proxy per node, with what made it."""

    eeg: np.ndarray  # (n_nodes, n_samples), mV
    sfreq: float
    labels: tuple[str, ...]
    model: str
    params: dict[str, float]
    dt_s: float
    seed: int
    wall_s: float
    stimulation: dict[str, object] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray:
        """Sample times (s) from the end of the transient."""
        return np.arange(self.eeg.shape[1]) / self.sfreq


def simulate(model: Model, *, network: Network | None = None, duration_s: float = 10.0,
             dt_s: float = 1e-4, sfreq: float = 1000.0, seed: int = 0,
             stimulation: Stimulation | None = None, transient_s: float = 1.0,
             backend: str = "numba") -> Simulation:
    """Simulate ``duration_s`` seconds (after a discarded transient) and return the EEG proxy.

    Raises :class:`ModelDivergenceError` when the state becomes NaN or runs away, and
    :class:`InputError` for a step too large for the model's time constants.
    """
    network = network or Network.single()
    check_parameters(model)
    decimate = _check_steps(model, duration_s, dt_s, sfreq, transient_s, backend)
    n = len(network.labels)
    run = getattr(model.kernel, f"run_{backend}")
    lam = stimulation.lam_mv_per_v_per_m if stimulation else 0.0
    prm = model.vector(network.coupling, lam)
    ptr, source, weight, delay = network.csr(dt_s)
    rng = np.random.default_rng(seed)
    state = np.zeros((model.kernel.N_STATE, n))
    state[: model.kernel.N_STATE // 2] = rng.normal(0.0, 0.1, (model.kernel.N_STATE // 2, n))
    history, position = new_history(n, delay)
    field_v = stimulation.fields(n) if stimulation else np.zeros(n)
    transient_steps = int(round(transient_s / dt_s / decimate)) * decimate
    total_steps = transient_steps + int(round(duration_s * sfreq)) * decimate
    out = np.empty((total_steps // decimate, n))
    chunk = BLOCK_STEPS - BLOCK_STEPS % decimate
    begins = range(0, total_steps, chunk)
    sizes = [min(chunk, total_steps - begin) for begin in begins]
    started = time.perf_counter()
    with closing(_noise_chunks(rng, sizes, (model.noise_inputs, n))) as noises:
        for begin, steps, noise in zip(begins, sizes, noises, strict=True):
            wave = _wave(stimulation, begin, steps, dt_s, transient_steps, duration_s)
            rows = slice(begin // decimate, (begin + steps) // decimate)
            position = run(state, history, position, ptr, source, weight, delay, prm, dt_s,
                           noise[:, 0] if model.noise_inputs == 1 else noise, wave, field_v,
                           decimate, out[rows])
            _check_finite(model, state, out[rows], (begin + steps) * dt_s - transient_s)
    wall = time.perf_counter() - started
    return Simulation(np.ascontiguousarray(out[transient_steps // decimate:].T), sfreq,
                      network.labels, model.name, parameters(model), dt_s, seed, wall,
                      stimulation.describe() if stimulation else None)


def _noise_chunks(rng: np.random.Generator, sizes: list[int],
                  shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """The noise chunks ``rng.standard_normal((size, *shape))``, drawn in this order.

    With many noise inputs a background thread draws the next chunk while the kernel
    (which releases the GIL) integrates the current one; the draws are the same.
    """
    if shape[0] * shape[1] < PREFETCH_INPUTS:
        for size in sizes:
            yield rng.standard_normal((size, *shape))
        return
    with ThreadPoolExecutor(1, thread_name_prefix="nmm-noise") as pool:
        pending = pool.submit(rng.standard_normal, (sizes[0], *shape))
        for size in sizes[1:]:
            noise = pending.result()
            pending = pool.submit(rng.standard_normal, (size, *shape))
            yield noise
        yield pending.result()


def _wave(stimulation: Stimulation | None, begin: int, steps: int, dt_s: float,
          transient_steps: int, duration_s: float) -> np.ndarray:
    if stimulation is None:
        return np.zeros(steps)
    t = (np.arange(begin, begin + steps) - transient_steps) * dt_s
    wave = stimulation.waveform(t, duration_s)
    wave[t < 0] = 0.0
    return wave


def _check_steps(model: Model, duration_s: float, dt_s: float, sfreq: float,
                 transient_s: float, backend: str) -> int:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not (duration_s > 0 and transient_s >= 0 and dt_s > 0 and sfreq > 0):
        raise InputError(f"duration {duration_s} s, transient {transient_s} s, dt {dt_s} s "
                         f"and sampling rate {sfreq} Hz must all be positive")
    fastest = min(model.time_constants())
    if dt_s > STEP_FRACTION * fastest:
        raise InputError(
            f"dt {dt_s * 1e3:g} ms is too large for {model.name}: its fastest synaptic time "
            f"constant is {fastest * 1e3:.2f} ms; use dt ≤ {STEP_FRACTION * fastest * 1e3:.2g}"
            " ms (0.1 ms is the usual choice)")
    decimate = 1.0 / (dt_s * sfreq)
    if decimate < 1 or abs(decimate - round(decimate)) > 1e-6:
        raise InputError(f"the output rate {sfreq} Hz must divide the step rate "
                         f"{1 / dt_s:g} Hz; choose e.g. sfreq {1 / dt_s / 10:g} Hz")
    return int(round(decimate))


def _check_finite(model: Model, state: np.ndarray, out: np.ndarray, t_s: float) -> None:
    if np.isfinite(state).all() and np.isfinite(out).all() and np.abs(state).max() < 1e6:
        return
    raise ModelDivergenceError(
        f"{model.name} diverged by t = {t_s:.3f} s (state became NaN or exceeded 1e6); the "
        f"parameters are unstable: {parameters(model)}; move them back toward the defaults "
        "or reduce dt")
