"""The analytic multi-shell sphere: closed form, reciprocity, field, interfaces, convergence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import eval_legendre

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.efield import _analytic
from neurotwin_db.modelling.efield._analytic import mag, rdm, sphere_field, sphere_potential

CURRENT = 1e-3
THREE = ((85.0, 90.0, 95.0), (0.33, 0.0066, 0.33))
FOUR = ((80.0, 82.0, 88.0, 95.0), (0.33, 1.654, 0.01, 0.465))
HOMOGENEOUS = ((85.0, 90.0, 95.0), (0.33, 0.33, 0.33))
ANODE = np.array([95.0, 0.0, 0.0])
CATHODE = 95.0 * np.array([0.0, np.sqrt(0.5), np.sqrt(0.5)])


def _directions(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def _points(n: int, r_min: float, r_max: float, seed: int = 0) -> np.ndarray:
    radius = np.random.default_rng(seed + 1).uniform(r_min, r_max, n)
    return _directions(n, seed) * radius[:, None]


def _away_from_electrodes(points: np.ndarray, distance: float = 5.0) -> np.ndarray:
    keep = ((np.linalg.norm(points - ANODE, axis=1) > distance)
            & (np.linalg.norm(points - CATHODE, axis=1) > distance))
    return points[keep]


def _axis_points() -> np.ndarray:
    """Points on the anode axis (cos γ = ±1), at the centre and on the cathode axis."""
    a, c = ANODE / 95.0, CATHODE / 95.0
    return np.array([0.5 * a, -0.9 * a, 0.3 * c, -0.99 * c, 0.0 * a])


# --- closed form of a homogeneous sphere, written independently in SI units -------------

def _green(points_mm: np.ndarray, source_mm: np.ndarray, radius_mm: float,
           sigma: float) -> np.ndarray:
    """Unit current at a surface point of a homogeneous sphere (zero-mean reference)."""
    r, s, big_r = points_mm * 1e-3, source_mm * 1e-3, radius_mm * 1e-3
    d = np.linalg.norm(r - s, axis=1)
    return (2 / d - 2 / big_r + np.log(2 * big_r / (d + big_r - r @ s / big_r)) / big_r) / (
        4 * np.pi * sigma)


def _homogeneous(points_mm: np.ndarray, sigma: float = 0.33) -> np.ndarray:
    return CURRENT * (_green(points_mm, ANODE, 95.0, sigma) - _green(points_mm, CATHODE, 95.0,
                                                                      sigma))


def _gradient_fd(function, points_mm: np.ndarray, h_mm: float = 1e-4) -> np.ndarray:
    """Central differences of a potential (V) with respect to positions, in V/m."""
    columns = [(function(points_mm + h_mm * e) - function(points_mm - h_mm * e)) / (2 * h_mm
                                                                                     * 1e-3)
               for e in np.eye(3)]
    return np.stack(columns, axis=1)


def test_closed_form_is_harmonic() -> None:
    points = _away_from_electrodes(_points(50, 5, 93, seed=3))
    h = 1e-3  # mm
    second = np.stack([_homogeneous(points + h * e) - 2 * _homogeneous(points)
                       + _homogeneous(points - h * e) for e in np.eye(3)]) / (h * 1e-3) ** 2
    assert np.all(np.abs(second.sum(axis=0)) < 1e-5 * np.abs(second).sum(axis=0))


def test_closed_form_satisfies_the_neumann_condition() -> None:
    surface = _away_from_electrodes(95.0 * _directions(40, seed=4), distance=10.0)

    def radial_derivative(function, h: float = 1e-4) -> np.ndarray:
        unit = surface / 95.0
        return (function(surface + h * unit) - function(surface - h * unit)) / (2 * h * 1e-3)

    single = radial_derivative(lambda p: _green(p, ANODE, 95.0, 0.33))
    # one source: its n = 0 part is a uniform sink -1/(4πR²) spread over the surface
    np.testing.assert_allclose(0.33 * single, -1 / (4 * np.pi * 0.095**2), rtol=1e-6)
    pair = radial_derivative(_homogeneous)
    gradient = np.linalg.norm(_gradient_fd(_homogeneous, surface * 0.999), axis=1)
    assert np.all(np.abs(pair) < 1e-6 * gradient)


def test_closed_form_equals_the_legendre_series() -> None:
    points = _points(20, 0, 60, seed=5)
    x = points @ ANODE / (np.linalg.norm(points, axis=1) * 95.0 + 1e-300)
    rho = np.linalg.norm(points, axis=1) / 95.0
    series = sum((2 * n + 1) / n * rho**n * eval_legendre(n, x) for n in range(1, 120))
    expected = series / (4 * np.pi * 0.33 * 0.095)
    np.testing.assert_allclose(_green(points, ANODE, 95.0, 0.33), expected, rtol=1e-12,
                               atol=1e-15)


# --- the module -------------------------------------------------------------------------

def test_homogeneous_shells_equal_the_closed_form() -> None:
    points = np.vstack([_away_from_electrodes(_points(3000, 0, 95, seed=6), 0.5),
                        _axis_points(), 95.0 * _directions(20, seed=7)])
    points = _away_from_electrodes(points, 0.5)
    potential = sphere_potential(points, *HOMOGENEOUS, ANODE, CATHODE)
    expected = _homogeneous(points)
    np.testing.assert_allclose(potential, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    field = sphere_field(points, *HOMOGENEOUS, ANODE, CATHODE)
    expected_field = -_gradient_fd(_homogeneous, points, h_mm=1e-4)
    error = np.linalg.norm(field - expected_field, axis=1) / np.linalg.norm(expected_field, axis=1)
    assert error.max() < 1e-5
    assert rdm(field, expected_field) < 1e-7
    assert mag(field, expected_field) < 1e-7


def test_plain_series_matches_the_closed_form_in_the_outer_shell() -> None:
    """The outer shell adds the closed form; the plain series must agree where it converges."""
    points = _points(200, 90, 0.98 * 95, seed=8)
    sphere = _analytic._check_sphere(*THREE)
    montage = _analytic._Montage(ANODE / 95.0, CATHODE / 95.0, CURRENT)
    plain, plain_grad = _analytic._solve(points * 1e-3, sphere, montage, 2000, want_field=True,
                                         accelerate=False)
    fast = sphere_potential(points, *THREE, ANODE, CATHODE)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-10 * np.abs(plain).max())
    field = sphere_field(points, *THREE, ANODE, CATHODE)
    np.testing.assert_allclose(field, -plain_grad, rtol=0, atol=1e-9 * np.abs(plain_grad).max())


@pytest.mark.parametrize("model", [THREE, FOUR])
def test_coefficients_solve_the_interface_equations(model) -> None:
    """A dense solve of the raw interface conditions, n by n, gives the same truncated series."""
    radii, sigma = np.array(model[0]) / 95.0, np.array(model[1])  # radii in units of R
    shells = len(radii)
    bounds = zip(np.r_[0.0, radii[:-1]], radii, strict=True)
    points = np.vstack([_points(30, 95 * (lo + 0.01), 95 * (hi - 0.01), seed=10 + k)
                        for k, (lo, hi) in enumerate(bounds)])
    n_max = 40
    rho = np.linalg.norm(points, axis=1) / 95.0
    shell = np.searchsorted(radii, rho)
    x_a = points @ ANODE / (rho * 95.0**2)
    x_c = points @ CATHODE / (rho * 95.0**2)
    expected = np.zeros(len(points))
    for n in range(1, n_max + 1):
        a, b = _interface_solution(n, radii, sigma)
        radial = a[shell] * rho**n + b[shell] * rho ** (-n - 1.0)
        expected += CURRENT * radial * (eval_legendre(n, x_a) - eval_legendre(n, x_c))
    sphere = _analytic._check_sphere(*model)
    montage = _analytic._Montage(ANODE / 95.0, CATHODE / 95.0, CURRENT)
    got, _ = _analytic._solve(points * 1e-3, sphere, montage, n_max, want_field=False,
                              accelerate=False)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    assert shells == len(np.unique(shell))


def _interface_solution(n: int, radii: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    """A_k, B_k of V = Σ (A_k ρ^n + B_k ρ^-(n+1)) P_n with ρ = r/R, by a dense linear solve."""
    shells = len(radii)
    matrix = np.zeros((2 * shells, 2 * shells))  # unknowns A_1, B_1, A_2, B_2, ...
    rhs = np.zeros(2 * shells)
    matrix[0, 1] = 1.0  # regular at the centre: B_1 = 0
    row = 1
    for k in range(shells - 1):
        r = radii[k]
        value = [r**n, r ** (-n - 1.0)]
        slope = [n * r ** (n - 1.0), -(n + 1) * r ** (-n - 2.0)]
        matrix[row, 2 * k:2 * k + 2] = value
        matrix[row, 2 * k + 2:2 * k + 4] = [-value[0], -value[1]]
        matrix[row + 1, 2 * k:2 * k + 2] = [sigma[k] * slope[0], sigma[k] * slope[1]]
        matrix[row + 1, 2 * k + 2:2 * k + 4] = [-sigma[k + 1] * slope[0], -sigma[k + 1] * slope[1]]
        row += 2
    matrix[row, -2:] = [sigma[-1] * n, -sigma[-1] * (n + 1)]  # σ ∂V/∂ρ at ρ = 1
    rhs[row] = (2 * n + 1) / (4 * np.pi * 0.095)
    solution = np.linalg.solve(matrix, rhs)
    solution[1] = 0.0  # exactly, not to rounding: ρ^-(n+1) is huge near the centre
    return solution[0::2], solution[1::2]


@pytest.mark.parametrize("model", [THREE, FOUR])
def test_reciprocity(model) -> None:
    a, b, c, d = 95.0 * _directions(4, seed=11)
    v_cd = sphere_potential(np.array([a, b]), *model, c, d)
    v_ab = sphere_potential(np.array([c, d]), *model, a, b)
    assert abs(v_cd[0] - v_cd[1]) > 1e-3  # a real signal, not 0 = 0
    np.testing.assert_allclose(v_cd[0] - v_cd[1], v_ab[0] - v_ab[1], rtol=1e-10)


@pytest.mark.parametrize("model", [THREE, FOUR, HOMOGENEOUS])
def test_field_is_minus_the_gradient(model) -> None:
    radii = np.r_[0.0, model[0]]
    points = [_axis_points()[:-1]]  # the centre would be in two shells' difference stencil
    for inner, outer in zip(radii[:-1], radii[1:], strict=True):
        points.append(_points(15, inner + 0.2 * (outer - inner), outer - 0.2 * (outer - inner),
                              seed=int(outer)))
    points = _away_from_electrodes(np.vstack(points))
    field = sphere_field(points, *model, ANODE, CATHODE)
    expected = -_gradient_fd(lambda p: sphere_potential(p, *model, ANODE, CATHODE), points)
    error = np.linalg.norm(field - expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert error.max() < 1e-6


def test_field_at_the_centre() -> None:
    """Only n = 1 reaches the centre, where r/|r| is undefined: the field must still be right."""
    field = sphere_field(np.zeros((1, 3)), *THREE, ANODE, CATHODE)
    fd = -_gradient_fd(lambda p: sphere_potential(p, *THREE, ANODE, CATHODE), np.zeros((1, 3)))
    np.testing.assert_allclose(field, fd, rtol=1e-7, atol=1e-12)
    assert np.all(np.isfinite(field))


@pytest.mark.parametrize("model", [THREE, FOUR])
def test_potential_and_current_are_continuous_across_interfaces(model) -> None:
    radii, sigma = model
    directions = _directions(30, seed=12)
    for k, radius in enumerate(radii[:-1]):
        below = directions * radius * (1 - 1e-12)
        above = directions * radius * (1 + 1e-12)
        v_below, v_above = (sphere_potential(p, *model, ANODE, CATHODE) for p in (below, above))
        np.testing.assert_allclose(v_above, v_below, rtol=0, atol=1e-9 * np.abs(v_below).max())
        e_below, e_above = (sphere_field(p, *model, ANODE, CATHODE) for p in (below, above))
        j_below = sigma[k] * np.sum(e_below * directions, axis=1)
        j_above = sigma[k + 1] * np.sum(e_above * directions, axis=1)
        np.testing.assert_allclose(j_above, j_below, rtol=0, atol=1e-8 * np.abs(j_below).max())
        tangential = (e_below - e_above) - np.sum((e_below - e_above) * directions, axis=1)[
            :, None] * directions
        assert np.abs(tangential).max() < 1e-8 * np.abs(e_below).max()
        # the normal field itself jumps by the conductivity ratio: the check above is not empty
        assert np.abs(j_below / sigma[k + 1] - j_below / sigma[k]).max() > 1e-3 * np.abs(
            e_below).max()


@pytest.mark.parametrize("model", [THREE, FOUR])
def test_no_current_leaves_the_surface_away_from_electrodes(model) -> None:
    surface = _away_from_electrodes(95.0 * _directions(50, seed=13), distance=2.0)
    field = sphere_field(surface, *model, ANODE, CATHODE)
    normal = np.sum(field * surface / 95.0, axis=1)
    assert np.abs(normal).max() < 1e-9 * np.linalg.norm(field, axis=1).max()


@pytest.mark.parametrize("model", [THREE, FOUR])
def test_series_is_converged(model) -> None:
    points = _away_from_electrodes(np.vstack([_points(500, 0, 95, seed=14), _axis_points(),
                                              95.0 * _directions(20, seed=15)]), 0.5)
    auto = sphere_potential(points, *model, ANODE, CATHODE)
    many = sphere_potential(points, *model, ANODE, CATHODE, n_terms=2000)
    assert np.abs(auto - many).max() < 1e-10 * np.abs(many).max()
    auto_field = sphere_field(points, *model, ANODE, CATHODE)
    many_field = sphere_field(points, *model, ANODE, CATHODE, n_terms=2000)
    assert np.abs(auto_field - many_field).max() < 1e-10 * np.abs(many_field).max()
    few = sphere_potential(points, *model, ANODE, CATHODE, n_terms=3)
    assert np.abs(few - many).max() > 1e-4 * np.abs(many).max()  # n_terms is honoured


def test_current_scales_and_swapping_electrodes_flips_the_sign() -> None:
    points = _points(50, 0, 90, seed=16)
    v = sphere_potential(points, *THREE, ANODE, CATHODE)
    np.testing.assert_allclose(sphere_potential(points, *THREE, ANODE, CATHODE, current_a=2e-3),
                               2 * v, rtol=1e-13)
    np.testing.assert_allclose(sphere_potential(points, *THREE, CATHODE, ANODE), -v, rtol=1e-13)


def test_electrodes_slightly_off_the_surface_are_projected() -> None:
    points = _points(20, 0, 90, seed=17)
    exact = sphere_potential(points, *THREE, ANODE, CATHODE)
    moved = sphere_potential(points, *THREE, ANODE * 1.005, CATHODE * 0.995)
    np.testing.assert_allclose(moved, exact, rtol=1e-13)


def test_points_at_an_electrode_are_nan_without_warnings() -> None:
    points = np.array([ANODE, CATHODE, [0.0, 0.0, 0.0]])
    assert np.isnan(sphere_potential(points, *THREE, ANODE, CATHODE)[:2]).all()
    field = sphere_field(points, *THREE, ANODE, CATHODE)
    assert np.isnan(field[:2]).all() and np.isfinite(field[2]).all()


def test_no_points() -> None:
    assert sphere_potential(np.zeros((0, 3)), *THREE, ANODE, CATHODE).shape == (0,)
    assert sphere_field(np.zeros((0, 3)), *THREE, ANODE, CATHODE).shape == (0, 3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"radii_mm": (90, 85, 95)}, "strictly increasing"),
    ({"radii_mm": (0, 90, 95)}, "positive"),
    ({"radii_mm": (85, 95)}, "2 radii but 3 conductivities"),
    ({"conductivities": (0.33, 0.0, 0.33)}, "positive"),
    ({"points_mm": [[0, 0, 96]]}, "outside the outer sphere"),
    ({"points_mm": [0, 0, 10]}, "shape"),
    ({"points_mm": [[0, 0, np.nan]]}, "NaN"),
    ({"anode_mm": (80, 0, 0)}, "anode is 80 mm"),
    ({"cathode_mm": (0, 0)}, "cathode_mm must be a finite 3-vector"),
    ({"cathode_mm": (95, 0, 0)}, "same place"),
    ({"n_terms": 0}, "n_terms"),
    ({"n_terms": 2.5}, "n_terms"),
    ({"current_a": np.inf}, "current_a"),
])
def test_bad_input(kwargs, message) -> None:
    arguments = {"points_mm": [[0, 0, 10]], "radii_mm": THREE[0], "conductivities": THREE[1],
                 "anode_mm": ANODE, "cathode_mm": CATHODE} | kwargs
    for function in (sphere_potential, sphere_field):
        with pytest.raises(InputError, match=message):
            function(**arguments)


def test_rdm_and_mag() -> None:
    a = np.random.default_rng(18).normal(size=(10, 3))
    assert rdm(a, 3 * a) < 1e-15 and rdm(a, -a) == pytest.approx(2)
    assert mag(a, 2 * a) == pytest.approx(np.log(2)) and mag(a, a) == 0
    assert rdm([1, 0], [0, 1]) == pytest.approx(np.sqrt(2))
    with pytest.raises(InputError, match="all zeros"):
        rdm(a, np.zeros_like(a))
    with pytest.raises(InputError, match="30 and 3"):
        mag(a, a[0])
