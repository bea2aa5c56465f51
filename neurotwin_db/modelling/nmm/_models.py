"""Neural-mass models: parameters as frozen dataclasses, with their cited defaults.

Each model knows its kernel (in ``modelling/_kernels/``), how to pack its parameters
into the kernel's vector, its time constants (to refuse a too-large step) and the
bounds within which a fit may move each parameter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from neurotwin_db.errors import InputError
from neurotwin_db.modelling._kernels import jansen_rit as _jr
from neurotwin_db.modelling._kernels import lanmm as _lanmm


@dataclass(frozen=True, slots=True)
class JansenRit:
    """Jansen-Rit cortical column (Jansen & Rit 1995, Biol Cybern 73:357-366).

    Defaults are the paper's standard values: A = 3.25 mV, B = 22 mV, a = 100/s,
    b = 50/s, C = 135 with C1..C4 = C, 0.8C, 0.25C, 0.25C, e0 = 2.5/s, v0 = 6 mV,
    r = 0.56/mV, and a mean input p = 220/s inside the paper's 120-320/s range, which
    gives an alpha rhythm near 10 Hz. ``sigma`` is the intensity of the white-noise part
    of p (in 1/s·√s); 2.0 matches p drawn every 1 ms with a standard deviation of
    63/s, about the spread of the paper's uniform 120-320/s input.
    """

    A: float = 3.25
    B: float = 22.0
    a: float = 100.0
    b: float = 50.0
    C: float = 135.0
    e0: float = 2.5
    v0: float = 6.0
    r: float = 0.56
    p: float = 220.0
    sigma: float = 2.0

    name: ClassVar[str] = "jansen-rit"
    kernel: ClassVar[ModuleType] = _jr
    noise_inputs: ClassVar[int] = 1
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "A": (2.0, 8.0), "B": (10.0, 40.0), "a": (50.0, 150.0), "b": (20.0, 80.0),
        "C": (80.0, 250.0), "p": (100.0, 320.0), "sigma": (0.0, 10.0),
    }

    def vector(self, coupling: float = 0.0, lam: float = 0.0) -> np.ndarray:
        """The kernel's parameter vector (see ``_kernels/jansen_rit.py``)."""
        v = np.empty(_jr.N_PARAMS)
        v[[_jr.A, _jr.B, _jr.SMALL_A, _jr.SMALL_B]] = self.A, self.B, self.a, self.b
        v[[_jr.C1, _jr.C2, _jr.C3, _jr.C4]] = (self.C, 0.8 * self.C, 0.25 * self.C,
                                               0.25 * self.C)
        v[[_jr.E0, _jr.V0, _jr.R, _jr.P]] = self.e0, self.v0, self.r, self.p
        v[[_jr.G, _jr.SIGMA, _jr.LAM]] = coupling, self.sigma, lam
        return v

    def rates(self) -> tuple[float, ...]:
        """Synaptic rates (1/s)."""
        return self.a, self.b

    def time_constants(self) -> tuple[float, ...]:
        """Synaptic time constants (s)."""
        return tuple(1.0 / rate for rate in self.rates())


@dataclass(frozen=True, slots=True)
class LaNMM:
    """Laminar neural mass model (Sanchez-Todo et al. 2023, NeuroImage 270:119938).

    A Jansen-Rit-like slow loop (deep pyramids P1, spiny stellate SS and slow SST
    inhibition: alpha) coupled with a PING-like fast loop (superficial pyramids P2 and
    fast PV inhibition: gamma). Defaults are the paper's: A_AMPA = 3.25, A_GABAs = -22,
    A_GABAf = -30 mV; a_AMPA = 100, a_GABAs = 50, a_GABAf = 220 /s; C0 = 108, C1 = 33.7,
    C3 = 135, C4 = 33.75, C5 = 70, C6 = 550, C8 = 200, C9 = 100, C10 = 80, C11 = 200,
    C12 = 30; e0 = 2.5/s, v0 = 6 mV, v0_P2 = 1 mV, r = 0.56/mV; external inputs
    p1 = 200/s (noisy in the paper, N(200, 30)) and p2 = 90/s. ``sigma1`` = 1.0
    (1/s·√s) matches a standard deviation of 30/s drawn every 1 ms; p2 is noise-free.
    """

    A_AMPA: float = 3.25
    A_GABAs: float = -22.0
    A_GABAf: float = -30.0
    a_AMPA: float = 100.0
    a_GABAs: float = 50.0
    a_GABAf: float = 220.0
    C0: float = 108.0
    C1: float = 33.7
    C3: float = 135.0
    C4: float = 33.75
    C5: float = 70.0
    C6: float = 550.0
    C8: float = 200.0
    C9: float = 100.0
    C10: float = 80.0
    C11: float = 200.0
    C12: float = 30.0
    e0: float = 2.5
    v0: float = 6.0
    v0_p2: float = 1.0
    r: float = 0.56
    p1: float = 200.0
    p2: float = 90.0
    sigma1: float = 1.0
    sigma2: float = 0.0

    name: ClassVar[str] = "lanmm"
    kernel: ClassVar[ModuleType] = _lanmm
    noise_inputs: ClassVar[int] = 2
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "A_GABAf": (-60.0, -10.0), "A_GABAs": (-40.0, -5.0), "a_GABAs": (30.0, 80.0),
        "a_GABAf": (100.0, 400.0), "C6": (100.0, 1000.0), "C9": (20.0, 300.0),
        "C10": (0.0, 200.0), "p1": (100.0, 320.0), "p2": (0.0, 300.0),
    }

    def vector(self, coupling: float = 0.0, lam: float = 0.0) -> np.ndarray:
        """The kernel's parameter vector (see ``_kernels/lanmm.py``)."""
        k = _lanmm
        v = np.empty(k.N_PARAMS)
        pairs = {k.A_AMPA: self.A_AMPA, k.A_GABAS: self.A_GABAs, k.A_GABAF: self.A_GABAf,
                 k.R_AMPA: self.a_AMPA, k.R_GABAS: self.a_GABAs, k.R_GABAF: self.a_GABAf,
                 k.C0: self.C0, k.C1: self.C1, k.C3: self.C3, k.C4: self.C4, k.C5: self.C5,
                 k.C6: self.C6, k.C8: self.C8, k.C9: self.C9, k.C10: self.C10,
                 k.C11: self.C11, k.C12: self.C12, k.E0: self.e0, k.V0: self.v0,
                 k.V0_P2: self.v0_p2, k.R: self.r, k.P1: self.p1, k.P2: self.p2,
                 k.G: coupling, k.SIGMA1: self.sigma1, k.SIGMA2: self.sigma2, k.LAM: lam}
        for index, value in pairs.items():
            v[index] = value
        return v

    def rates(self) -> tuple[float, ...]:
        """Synaptic rates (1/s)."""
        return self.a_AMPA, self.a_GABAs, self.a_GABAf

    def time_constants(self) -> tuple[float, ...]:
        """Synaptic time constants (s)."""
        return tuple(1.0 / rate for rate in self.rates())


Model = JansenRit | LaNMM
MODELS: dict[str, type[JansenRit] | type[LaNMM]] = {"jansen-rit": JansenRit, "lanmm": LaNMM}


def model_class(name: str) -> type[JansenRit] | type[LaNMM]:
    """The model class called ``name`` (``jansen-rit`` or ``lanmm``)."""
    try:
        return MODELS[name.lower()]
    except KeyError:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def parameters(model: Model) -> dict[str, float]:
    """The model's parameters as a plain dict (for JSON sidecars)."""
    return {f.name: float(getattr(model, f.name)) for f in dataclasses.fields(model)}


def with_parameters(model: Model, values: dict[str, Any]) -> Model:
    """A copy of ``model`` with some parameters replaced; unknown names are an error."""
    names = {f.name for f in dataclasses.fields(model)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"{model.name} has no parameter {', '.join(unknown)}; "
                         f"its parameters are {', '.join(sorted(names))}")
    return dataclasses.replace(model, **{k: float(v) for k, v in values.items()})


def check_parameters(model: Model) -> None:
    """Refuse NaN, infinite or sign-flipped parameters before any simulation."""
    for name, value in parameters(model).items():
        if not math.isfinite(value):
            raise InputError(f"{model.name} parameter {name} is {value}; every parameter "
                             f"must be a finite number ({parameters(model)})")
    if min(model.rates()) <= 0:
        raise InputError(f"{model.name} has a non-positive synaptic rate "
                         f"({parameters(model)}); rates must be > 0 per second")
