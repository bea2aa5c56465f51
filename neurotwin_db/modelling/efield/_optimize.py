"""Montage optimisation on a lead field: the most field along a direction in a target.

In the spirit of SimNIBS's TDCSoptimize (Saturnino et al. 2019, "Accessibility of cortical
regions to focal TES: dependence on spatial position, safety, and practical constraints",
NeuroImage 203:116119, doi:10.1016/j.neuroimage.2019.116119), written independently: the
mean field component along the target direction in a spherical grey-matter ROI (volume
weighted) is linear in the electrode currents, so maximising it under

- currents summing to zero (the reference is an electrode like the others),
- total injected current ``Σ|I|/2 ≤ max_total_ma``,
- ``|I_i| ≤ max_per_electrode_ma``,

is a linear program, solved by HiGHS on split currents ``I = I⁺ − I⁻``. A limit on the
number of electrodes makes it combinatorial; SimNIBS uses branch and bound, this module
a greedy backward elimination (a heuristic): solve, then re-solve on the active
electrodes without each one in turn, keep the best, and repeat until few enough are left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from neurotwin_db.errors import InputError, NeurotwinError
from neurotwin_db.modelling.efield._leadfield import LeadField
from neurotwin_db.modelling.efield._summary import GM, weighted_percentile

ACTIVE_MA = 1e-9  # currents below this (mA) count as zero


@dataclass(frozen=True, eq=False)
class OptimizedMontage:
    """Optimal currents (mA, every electrode and the reference) and what they achieve.

    ``roi_mean`` is the volume-weighted mean field component (V/m) along ``direction``
    in the ROI (indices into the lead field's stored elements); ``field`` is the field
    (V/m) in every stored element.
    """

    currents_ma: dict[str, float]
    target_mm: np.ndarray
    radius_mm: float
    direction: str | np.ndarray
    roi: np.ndarray
    roi_mean: float
    field: np.ndarray
    metrics: dict[str, object]
    constraints: dict[str, object]

    @property
    def active(self) -> dict[str, float]:
        """The electrodes that carry current, largest anode first."""
        pairs = [(n, c) for n, c in self.currents_ma.items() if c != 0]
        return dict(sorted(pairs, key=lambda p: -p[1]))

    def montage(self) -> str:
        """The active electrodes as a montage string, e.g. ``'F3:1,Fp2:-1'``."""
        return ",".join(f"{n}:{c:.12g}" for n, c in self.active.items())

    def as_json(self) -> dict[str, object]:
        """The result as a JSON object for summaries."""
        direction = (self.direction if isinstance(self.direction, str)
                     else np.round(self.direction, 6).tolist())
        return {"Montage": [{"Name": n, "CurrentMilliampere": round(c, 9)}
                            for n, c in self.active.items()],
                "TargetMm": self.target_mm.tolist(), "RadiusMm": self.radius_mm,
                "Direction": direction, "RoiElements": int(len(self.roi)),
                "RoiMeanField": round(self.roi_mean, 6), **self.metrics,
                "ActiveConstraints": self.constraints,
                "Method": "linear program (HiGHS), after Saturnino et al. 2019, "
                          "doi:10.1016/j.neuroimage.2019.116119"}


def optimize_montage(leadfield: LeadField, target_mm: np.ndarray, *, radius_mm: float = 10.0,
                     direction: str | np.ndarray | None = "normal",
                     normals: np.ndarray | None = None, max_total_ma: float = 2.0,
                     max_per_electrode_ma: float = 1.0,
                     max_electrodes: int | None = None) -> OptimizedMontage:
    """Currents that maximise the mean field along ``direction`` in a grey-matter ROI.

    ``direction`` is ``"normal"`` (into the cortex, the sign of ``En`` in field
    summaries; ``normals`` are outward cortex normals per stored element, by default
    the lead field's), a 3-vector (mesh axes), or ``None`` for the largest mean field
    vector in any direction (found by screening directions and fixed-point ascent, a
    heuristic; the result's ``direction`` is then the vector found).
    """
    limits = _check_limits(max_total_ma, max_per_electrode_ma, max_electrodes)
    target = np.asarray(target_mm, dtype=float).reshape(-1)
    if target.shape != (3,) or not np.all(np.isfinite(target)) or not radius_mm > 0:
        raise InputError(f"the target must be x, y, z in mm of the head mesh with a positive "
                         f"radius; got {target_mm} and radius {radius_mm} mm")
    candidates, roi = _roi(leadfield, target, float(radius_mm))
    block = leadfield.field[:, roi].astype(float)
    shares = leadfield.volumes_m3[roi] / leadfield.volumes_m3[roi].sum()
    if direction is None:  # the reference's own field is zero: append a zero row
        mean_fields = np.vstack([np.einsum("ekj,k->ej", block, shares), np.zeros(3)])
        currents, label = _best_direction(mean_fields, limits)
        objective = float(np.linalg.norm(currents @ mean_fields))
    else:
        units, label = _target_directions(leadfield, roi, direction, normals)
        gain = np.append(np.einsum("ekj,kj,k->e", block, units, shares), 0.0)
        currents = _limited(gain, limits)
        objective = float(currents @ gain)
    names = leadfield.names
    field = leadfield.field_of(dict(zip(names, currents, strict=True)))
    return OptimizedMontage(
        dict(zip(names, (float(c) for c in currents), strict=True)), target, float(radius_mm),
        label, roi, objective, field, _metrics(leadfield, candidates, roi, field, currents),
        _active_constraints(names, currents, limits))


def _check_limits(total: float, per: float, count: int | None) -> tuple[float, float, int]:
    if not (np.isfinite(total) and total > 0 and np.isfinite(per) and per > 0):
        raise InputError(f"current limits must be positive: got max_total_ma={total} and "
                         f"max_per_electrode_ma={per}; with these no current can flow "
                         f"(typical: 2 mA total, 1 mA per electrode)")
    if count is not None and (int(count) != count or count < 2):
        raise InputError(f"max_electrodes must be a whole number of at least 2 (a montage "
                         f"needs an anode and a cathode), got {count}")
    return float(total), float(per), int(count) if count is not None else 0


def _roi(leadfield: LeadField, target: np.ndarray, radius: float
         ) -> tuple[np.ndarray, np.ndarray]:
    grey = np.flatnonzero(leadfield.tags == GM)
    candidates = grey if len(grey) else np.arange(len(leadfield.elements))
    distance = np.linalg.norm(leadfield.centroids_mm[candidates] - target, axis=1)
    roi = candidates[distance <= radius]
    if not len(roi):
        raise InputError(f"no grey-matter element of the lead field lies within {radius:g} mm "
                         f"of the target {np.round(target, 1).tolist()} mm (the nearest is "
                         f"{distance.min():.1f} mm away); move the target onto the cortex "
                         f"(mesh coordinates, mm) or enlarge the radius")
    return candidates, roi


def _target_directions(leadfield: LeadField, roi: np.ndarray, direction: object,
                       normals: np.ndarray | None) -> tuple[np.ndarray, str | np.ndarray]:
    if isinstance(direction, str):
        if direction != "normal":
            raise InputError(f"direction {direction!r} is not known; use 'normal' (into the "
                             f"cortex), a 3-vector such as (0, 0, 1), or None (any direction)")
        table = leadfield.normals if normals is None else np.asarray(normals, dtype=float)
        if table.shape != leadfield.centroids_mm.shape:
            raise InputError(f"normals need one 3-vector per stored element "
                             f"{leadfield.centroids_mm.shape}, got shape {table.shape}")
        length = np.linalg.norm(table[roi], axis=1, keepdims=True)
        if not np.all(length > 0):
            raise InputError("some ROI elements have no cortex normal; pass normals=... "
                             "(outward, one per stored element) or a direction vector")
        return -table[roi] / length, "normal"
    vector = np.asarray(direction, dtype=float).reshape(-1)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)) or not np.any(vector):
        raise InputError(f"direction {direction!r} is not understood; use 'normal', a non-zero "
                         f"3-vector such as (0, 0, 1), or None (any direction)")
    unit = vector / np.linalg.norm(vector)
    return np.broadcast_to(unit, (len(roi), 3)), unit


def _best_direction(mean_fields: np.ndarray, limits: tuple[float, float, int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Largest |mean field|: screen directions, then ascend ``d ← M(I*(d))/|M(I*(d))|``.

    |M| is convex in the currents, so it may have local maxima: the ascent starts from
    the best few of ~70 directions (principal axes and a Fibonacci hemisphere).
    """
    k = np.arange(64) + 0.5
    polar, azimuth = np.arccos(k / 64), np.pi * (1 + 5 ** 0.5) * k
    starts = np.vstack([np.linalg.svd(mean_fields, full_matrices=False)[2],
                        np.column_stack([np.sin(polar) * np.cos(azimuth),
                                         np.sin(polar) * np.sin(azimuth), np.cos(polar)])])
    everyone = np.ones(len(mean_fields), dtype=bool)
    screen = [float(d @ mean_fields.T @ _linear_program(mean_fields @ d, everyone, limits))
              for d in starts]
    best, best_norm, best_dir = np.zeros(len(mean_fields)), -1.0, starts[0]
    for unit in starts[np.argsort(screen)[-4:]]:
        previous = -1.0
        for _ in range(30):
            currents = _limited(mean_fields @ unit, limits)
            vector = currents @ mean_fields
            size = float(np.linalg.norm(vector))
            if size > best_norm:
                best, best_norm, best_dir = currents, size, vector / max(size, 1e-300)
            if size <= previous * (1 + 1e-9) or size == 0:
                break
            unit, previous = vector / size, size
    return best, best_dir


def _limited(gain: np.ndarray, limits: tuple[float, float, int]) -> np.ndarray:
    """The LP, then greedy backward elimination while too many electrodes are active."""
    currents = _linear_program(gain, np.ones(len(gain), dtype=bool), limits)
    while limits[2] and np.count_nonzero(currents) > limits[2]:
        active = np.flatnonzero(currents)
        trials = []
        for drop in active:  # remove the electrode whose loss costs the least
            allowed = np.zeros(len(gain), dtype=bool)
            allowed[active[active != drop]] = True
            trials.append(_linear_program(gain, allowed, limits))
        currents = max(trials, key=lambda trial: float(trial @ gain))
    return currents


def _linear_program(gain: np.ndarray, allowed: np.ndarray,
                    limits: tuple[float, float, int]) -> np.ndarray:
    n = len(gain)
    total, per, _ = limits
    bounds = [(0.0, per if ok else 0.0) for ok in allowed] * 2
    result = linprog(np.concatenate([-gain, gain]), A_ub=np.ones((1, 2 * n)),
                     b_ub=[2 * total], A_eq=np.concatenate([np.ones(n), -np.ones(n)])[None],
                     b_eq=[0.0], bounds=bounds, method="highs")
    if result.status != 0:
        raise NeurotwinError(f"the montage optimisation failed ({result.message}); check the "
                             f"lead field for non-finite values")
    currents = result.x[:n] - result.x[n:]
    currents[np.abs(currents) < ACTIVE_MA] = 0.0
    if (active := np.flatnonzero(currents)).size:
        currents[active] -= currents.sum() / active.size  # remove round-off, keep Σ = 0
    return currents


def _metrics(leadfield: LeadField, candidates: np.ndarray, roi: np.ndarray,
             field: np.ndarray, currents: np.ndarray) -> dict[str, object]:
    magnitude = np.linalg.norm(field, axis=1)
    volumes = leadfield.volumes_m3
    outside = np.setdiff1d(candidates, roi)
    peak = weighted_percentile(magnitude[candidates], volumes[candidates], 99.9)
    roi_mean = float(np.average(magnitude[roi], weights=volumes[roi]))
    out_mean = (float(np.average(magnitude[outside], weights=volumes[outside]))
                if len(outside) else float("nan"))
    focal = candidates[magnitude[candidates] >= 0.75 * peak]
    return {"RoiMeanMagnE": round(roi_mean, 6), "OutsideMeanMagnE": round(out_mean, 6),
            "RoiToOutsideRatio": round(roi_mean / out_mean, 4) if out_mean > 0 else None,
            "PeakMagnE_99.9": round(peak, 6),
            "FocalityCm3": round(float(volumes[focal].sum() * 1e6), 4),
            "TotalCurrentMilliampere": round(float(np.abs(currents).sum() / 2), 9),
            "Units": "V/m"}


def _active_constraints(names: tuple[str, ...], currents: np.ndarray,
                        limits: tuple[float, float, int]) -> dict[str, object]:
    total, per, count = limits
    injected = float(np.abs(currents).sum() / 2)
    return {"TotalCurrent": bool(injected >= total * (1 - 1e-6)),
            "PerElectrode": [n for n, c in zip(names, currents, strict=True)
                             if abs(c) >= per * (1 - 1e-6)],
            "MaxElectrodes": bool(count and np.count_nonzero(currents) >= count)}
