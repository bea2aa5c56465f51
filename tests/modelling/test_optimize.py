"""Montage optimisation on a coarse sphere lead field: limits, optimality, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.efield._electrodes import parse_montage
from neurotwin_db.modelling.efield._leadfield import LeadField, compute_leadfield
from neurotwin_db.modelling.efield._optimize import OptimizedMontage, optimize_montage
from neurotwin_db.modelling.headmodel import HeadMesh
from neurotwin_db.modelling.headmodel._sphere import sphere_head

SIGMA = {2: 0.33, 4: 0.0066, 5: 0.33}
LEFT = np.array([-65.0, 10.0, 45.0])  # inside the grey-matter ball (radius 85 mm)
TOL = 1e-6


def make_sphere(size: float = 12.0) -> HeadMesh:
    """The project's concentric sphere head (tags 2, 4, 5 from the inside out)."""
    return sphere_head((85.0, 90.0, 95.0), element_size_mm=size)


@pytest.fixture(scope="module")
def leadfield() -> LeadField:
    return compute_leadfield(make_sphere(), SIGMA, "standard_1010", "Cz")


def _roi(leadfield: LeadField, target: np.ndarray, radius: float = 10.0) -> np.ndarray:
    return np.flatnonzero(np.linalg.norm(leadfield.centroids_mm - target, axis=1) <= radius)


def _mean_along(leadfield: LeadField, currents: dict[str, float], target: np.ndarray,
                direction: np.ndarray | None) -> float:
    """Volume-weighted ROI mean of E·t; t = −normal (into the cortex) or a fixed vector."""
    roi = _roi(leadfield, target)
    field = leadfield.field_of(currents)[roi]
    units = -leadfield.normals[roi] if direction is None else np.broadcast_to(direction,
                                                                               field.shape)
    return float(np.average(np.einsum("ij,ij->i", field, units),
                            weights=leadfield.volumes_m3[roi]))


def _check_limits(result: OptimizedMontage, total: float, per: float,
                  count: int | None = None) -> None:
    currents = np.array(list(result.currents_ma.values()))
    assert abs(currents.sum()) < TOL
    assert np.abs(currents).sum() / 2 <= total + TOL
    assert np.abs(currents).max() <= per + TOL
    if count is not None:
        assert np.count_nonzero(currents) <= count


@pytest.mark.parametrize("direction", ["normal", (0.0, 0.0, 1.0), None])
@pytest.mark.parametrize(("total", "per", "count"),
                         [(2.0, 1.0, None), (1.5, 0.6, None), (2.0, 1.0, 2), (2.0, 1.0, 3)])
def test_the_optimum_respects_every_limit(leadfield: LeadField, direction: object,
                                          total: float, per: float, count: int | None) -> None:
    result = optimize_montage(leadfield, LEFT, direction=direction, max_total_ma=total,
                              max_per_electrode_ma=per, max_electrodes=count)
    _check_limits(result, total, per, count)
    assert set(result.currents_ma) == set(leadfield.names)
    np.testing.assert_allclose(result.field, leadfield.field_of(result.currents_ma))
    assert result.roi_mean > 0 and len(result.roi) == len(_roi(leadfield, LEFT))
    parsed = parse_montage(result.montage())
    assert [n for n, _ in parsed] == list(result.active)
    np.testing.assert_allclose([c for _, c in parsed], list(result.active.values()), rtol=1e-9)
    json.dumps(result.as_json())


@pytest.mark.parametrize("direction", ["normal", (1.0, 0.0, 0.0), (0.0, 0.6, 0.8)])
def test_the_optimum_beats_hand_made_montages(leadfield: LeadField, direction: object) -> None:
    vector = None if direction == "normal" else np.asarray(direction) / np.linalg.norm(direction)
    result = optimize_montage(leadfield, LEFT, direction=direction)
    assert result.roi_mean == pytest.approx(_mean_along(leadfield, result.currents_ma, LEFT,
                                                        vector), rel=1e-6)
    near = np.argsort(np.linalg.norm(leadfield.centres_mm - LEFT, axis=1))[:8]
    names = [leadfield.names[i] for i in near]
    hand = [{a: 1.0, b: -1.0} for a, b in itertools.permutations(names, 2)]
    hand += [{names[0]: 1.0, **{n: -0.25 for n in names[1:5]}},  # 4x1 ring, both ways
             {names[0]: -1.0, **{n: 0.25 for n in names[1:5]}},
             {names[0]: 1.0, names[1]: 1.0, "Cz": -1.0, "Oz": -1.0}]
    best_hand = max(_mean_along(leadfield, c, LEFT, vector) for c in hand)
    assert result.roi_mean >= best_hand - 1e-9
    pair = optimize_montage(leadfield, LEFT, direction=direction, max_electrodes=2)
    gains = [_mean_along(leadfield, {n: 1.0}, LEFT, vector) for n in leadfield.electrodes]
    assert pair.roi_mean == pytest.approx(max(max(gains), 0) - min(min(gains), 0), rel=1e-6)
    assert len(pair.active) == 2 and pair.roi_mean <= result.roi_mean + 1e-12


def test_any_direction_is_at_least_as_strong_as_fixed_ones(leadfield: LeadField) -> None:
    free = optimize_montage(leadfield, LEFT, direction=None)
    mean = np.linalg.norm([_mean_along(leadfield, free.currents_ma, LEFT, e)
                           for e in np.eye(3)])
    assert free.roi_mean == pytest.approx(mean, rel=1e-6)
    for direction in [*np.eye(3), -LEFT, (1.0, -1.0, 0.5)]:  # fixed vectors: LP(d) ≤ max|M|
        fixed = optimize_montage(leadfield, LEFT, direction=direction)
        assert free.roi_mean >= fixed.roi_mean - 1e-9


@pytest.mark.parametrize("side", [-1.0, 1.0])
def test_a_lateral_target_uses_electrodes_on_its_side(leadfield: LeadField,
                                                      side: float) -> None:
    target = np.array([65.0 * side, 10.0, 45.0])
    result = optimize_montage(leadfield, target, direction="normal", max_electrodes=4)
    currents = np.array([result.currents_ma[n] for n in leadfield.names])
    anodes = currents > 0
    centre = (currents[anodes] @ leadfield.centres_mm[anodes]) / currents[anodes].sum()
    assert np.sign(centre[0]) == np.sign(target[0])
    nearest = leadfield.names[int(np.argmin(np.linalg.norm(leadfield.centres_mm - target,
                                                           axis=1)))]
    assert result.currents_ma[nearest] > 0
    assert result.constraints["TotalCurrent"] is True and len(result.active) <= 4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target_mm": [0.0, 0.0, 200.0]}, r"within 10 mm of the target \[0.0, 0.0, 200.0\]"),
    ({"max_per_electrode_ma": 0.0}, "must be positive"),
    ({"max_total_ma": -1.0}, "must be positive"),
    ({"max_electrodes": 1}, "at least 2"),
    ({"direction": "tangential"}, "direction 'tangential' is not known"),
    ({"direction": (0, 0, 0)}, "non-zero 3-vector"),
    ({"normals": np.zeros((3, 3))}, "one 3-vector per stored element"),
    ({"radius_mm": 0.0}, "positive radius"),
])
def test_bad_requests_are_explained(leadfield: LeadField, kwargs: dict, message: str) -> None:
    arguments = {"target_mm": LEFT, **kwargs}
    with pytest.raises(InputError, match=message):
        optimize_montage(leadfield, **arguments)
