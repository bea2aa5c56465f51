"""Exact potential and field of two point electrodes on a multi-shell concentric sphere.

The classic validation case for tES finite-element solvers (Rush & Driscoll 1969): a sphere
of ``K`` concentric shells with radii ``r_1 < … < r_K = R`` and conductivities ``σ_1 … σ_K``
(innermost first); a current ``+I`` enters at the anode and leaves at the cathode, both point
electrodes on the outer surface.

The series
----------
Let ``γ`` be the angle between a point ``r`` and a source ``s`` on the surface, ``x = cos γ``
and ``P_n`` the Legendre polynomials. Per unit current entering at ``s``, the potential is
``G(r) = Σ_{n≥1} f_n(r) P_n(x)``, and in shell ``k`` (``r_{k-1} < r ≤ r_k``, ``r_0 = 0``)::

    f_n(r) = u_nk (r/r_k)^n + v_nk (r_{k-1}/r)^(n+1)

Both powers are ratios at most 1 inside their shell, so nothing overflows for large ``n``.
The coefficients follow from regularity at the centre (``v_n1 = 0``), continuity of ``f_n``
and of ``σ ∂f_n/∂r`` at every interface, and the Neumann condition at the surface: the
surface delta is ``δ(Ω - Ω_s) = Σ_n (2n+1)/(4π) P_n(x)``, so
``σ_K ∂f_n/∂r (R) = (2n+1)/(4π R²)``. With ``q_k = r_{k-1}/r_k`` and ``t_k = v_nk/u_nk``:

* outwards, ``t_1 = 0``; ``τ_k = t_k q_k^(n+1)``; ``g_k = (n - (n+1)τ_k)/(1 + τ_k)`` is
  ``r ∂_r f_n / f_n`` just inside ``r_k`` (positive); then
  ``t_{k+1} = q_{k+1}^n (σ_{k+1} n - σ_k g_k) / (σ_k g_k + σ_{k+1} (n+1))``;
* at the surface, ``u_nK = (2n+1) / (4π σ_K R (n - (n+1)τ_K))``;
* inwards, ``u_nk = u_n,k+1 (q_{k+1}^n + t_{k+1}) / (1 + τ_k)`` and ``v_nk = t_k u_nk``.

Every factor is bounded, so the recurrences are stable; tiny terms underflow harmlessly to 0.
The boundary-value problem is that of Rush & Driscoll (1969); Ferree et al. (2000) solve the
same scalp current injection problem for four shells. The ratio-normalised recurrence above
is derived here, not copied from either.

Reference (the ``n = 0`` term)
------------------------------
A single source has no solution of the Neumann problem; the ``n = 0`` term of the delta
expansion (a uniform sink over the surface) is left out, and it cancels between anode and
cathode. The potential is therefore referenced to zero mean over every concentric sphere:
``V(0) = 0`` and the mean of ``V`` over the outer surface is 0 (there is no "infinity" in a
bounded conductor).

Homogeneous sphere and convergence
----------------------------------
For one shell, ``f_n = (2n+1)/(4πσRn) (r/R)^n``, and the generating functions
``Σ ρ^n P_n = 1/D`` and ``Σ ρ^n P_n / n = ln(2 / (1 - ρx + D))`` (``ρ = r/R``,
``D = |r - s|/R``) give the closed form, with ``d = |r - s|``::

    G(r) = 1/(4πσ) [2/d - 2/R + (1/R) ln(2R / (R + d - r·s/R))]

The series converges like ``(r/R)^n``, hopelessly slowly near the surface. In the outer shell
the closed form with ``σ_K`` is therefore added exactly and only the difference
``u_nK - (2n+1)/(4πσ_K R n)`` (and ``v_nK``) is summed; that converges like
``(r_{K-1}/R)^n`` even on the surface and right next to the electrodes. Inner shells sum
the plain series, which converges like ``(r/R)^n ≤ (r_{K-1}/R)^n``. When ``n_terms`` is
None, each shell takes the smallest ``N`` whose tail bound ``(N+1)² ρ^(N+1)/(1-ρ)`` is below
``1e-10`` (``ρ`` the ratio above, the ``(N+1)²`` covers the field), capped at
``MAX_TERMS = 2000``; the cap only binds when ``r_{K-1}/R > 0.979`` (a scalp thinner than
~2 % of R), where the outer-shell series may stop short of 1e-10.

The field ``E = -∇V`` is summed analytically: with ``r̂ = r/|r|``,
``∇[f_n(r) P_n(x)] = f_n'(r) P_n(x) r̂ + (f_n(r)/r) P_n'(x) (ŝ - x r̂)``. The tangential
factor ``ŝ - x r̂`` vanishes on the electrode axis while ``P_n'(±1)`` stays finite, so points on
the axis need no special case; ``P_n`` and ``P_n'`` come from the three-term recurrence and
``P'_{n+1} = P'_{n-1} + (2n+1) P_n``.

Units: positions in mm, conductivities in S/m, current in A, potential in V, field in V/m.
Points exactly at an electrode (closer than ``1e-9 R``) are singular and come back as NaN.

References
----------
Rush S, Driscoll DA (1969) EEG electrode sensitivity - an application of reciprocity. IEEE
Trans Biomed Eng 16(1):15-22. doi:10.1109/TBME.1969.4502598

Ferree TC, Eriksen KJ, Tucker DM (2000) Regional head tissue conductivity estimation for
improved EEG analysis. IEEE Trans Biomed Eng 47(12):1584-1592. doi:10.1109/10.887939

Examples
--------
>>> E = sphere_field([[0, 0, 0]], [95], [0.33], [95, 0, 0], [-95, 0, 0])
>>> round(float(E[0, 0]), 4)  # -6 I / (4π σ R²), pointing from anode to cathode
-0.1603
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from neurotwin_db.errors import InputError

MM = 1e-3  # metres per millimetre
MAX_TERMS = 2000
TAIL_TOLERANCE = 1e-10
ELECTRODE_TOLERANCE = 0.01  # electrodes may be this far off the outer radius (relative)
OUTSIDE_TOLERANCE = 1e-6  # points may be this far outside the outer radius (relative)
SINGULAR_DISTANCE = 1e-9  # points closer than this x R to an electrode get NaN
_CHUNK = 16384  # points per block: keeps the per-term arrays in cache


@dataclass(frozen=True)
class _Sphere:
    """Radii (m, innermost first) and conductivities (S/m) of the shells."""

    radii: np.ndarray
    sigma: np.ndarray

    @property
    def outer(self) -> float:
        """Outer radius R (m)."""
        return float(self.radii[-1])


@dataclass(frozen=True)
class _Montage:
    """Unit directions of anode and cathode and the injected current (A)."""

    anode: np.ndarray
    cathode: np.ndarray
    current: float


def sphere_potential(points_mm: ArrayLike, radii_mm: ArrayLike, conductivities: ArrayLike,
                     anode_mm: ArrayLike, cathode_mm: ArrayLike, *, current_a: float = 1e-3,
                     n_terms: int | None = None) -> np.ndarray:
    """Potential (V) at ``points_mm`` (n, 3) of +current_a at the anode, -current_a at the cathode.

    Shells are given innermost first (radii in mm, conductivities in S/m). Electrodes further
    than 1 % from the outer radius are an error; the others are projected radially onto it.
    Points may lie in any shell, on the outer surface, or up to 1e-6 R outside it. With
    ``n_terms`` None each shell sums enough Legendre terms for ~1e-10 relative accuracy (at
    most 2000); an integer sums exactly n = 1..n_terms in every shell (in the outer shell,
    terms of the correction to the closed form, see the module docstring). The potential is
    referenced to zero mean over the outer surface (V = 0 at the centre); points within
    1e-9 R of an electrode give NaN.
    """
    sphere, points, montage, n_terms = _check_all(points_mm, radii_mm, conductivities,
                                                  anode_mm, cathode_mm, current_a, n_terms)
    potential, _ = _solve(points, sphere, montage, n_terms, want_field=False)
    return potential


def sphere_field(points_mm: ArrayLike, radii_mm: ArrayLike, conductivities: ArrayLike,
                 anode_mm: ArrayLike, cathode_mm: ArrayLike, *, current_a: float = 1e-3,
                 n_terms: int | None = None) -> np.ndarray:
    """Electric field E = -grad V (V/m, shape (n, 3)) of the montage of `sphere_potential`."""
    sphere, points, montage, n_terms = _check_all(points_mm, radii_mm, conductivities,
                                                  anode_mm, cathode_mm, current_a, n_terms)
    _, gradient = _solve(points, sphere, montage, n_terms, want_field=True)
    return -gradient


def rdm(a: ArrayLike, b: ArrayLike) -> float:
    """Relative difference measure ``|| a/||a|| - b/||b|| ||`` over the flattened arrays.

    0 for the same pattern, 2 for opposite ones; blind to a global scale (see `mag`).
    """
    a, b = _check_pair(a, b)
    return float(np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b)))


def mag(a: ArrayLike, b: ArrayLike) -> float:
    """Magnitude error ``|ln(||a|| / ||b||)|`` over the flattened arrays (0 when equal)."""
    a, b = _check_pair(a, b)
    return float(abs(np.log(np.linalg.norm(a) / np.linalg.norm(b))))


# --- input checks -----------------------------------------------------------------------

def _check_all(points_mm: ArrayLike, radii_mm: ArrayLike, conductivities: ArrayLike,
               anode_mm: ArrayLike, cathode_mm: ArrayLike, current_a: float,
               n_terms: int | None) -> tuple[_Sphere, np.ndarray, _Montage, int | None]:
    """Validate everything and convert to SI: sphere, points (m), montage, n_terms."""
    sphere = _check_sphere(radii_mm, conductivities)
    points = _check_points(points_mm, sphere)
    anode = _electrode_direction(anode_mm, sphere, "anode")
    cathode = _electrode_direction(cathode_mm, sphere, "cathode")
    if np.linalg.norm(anode - cathode) < SINGULAR_DISTANCE:
        raise InputError(f"anode {np.asarray(anode_mm).tolist()} and cathode "
                         f"{np.asarray(cathode_mm).tolist()} (mm) are at "
                         f"the same place; put them at different points of the outer surface")
    return sphere, points, _Montage(anode, cathode, _check_current(current_a)), _check_terms(
        n_terms)


def _check_sphere(radii_mm: ArrayLike, conductivities: ArrayLike) -> _Sphere:
    """Radii strictly increasing and positive, one positive conductivity per shell."""
    radii = np.asarray(radii_mm, dtype=float).ravel()
    sigma = np.asarray(conductivities, dtype=float).ravel()
    if radii.size == 0 or not np.all(np.isfinite(radii)) or np.any(radii <= 0):
        raise InputError(f"radii_mm must be positive finite shell radii in mm, got "
                         f"{radii.tolist()}; list them innermost first, e.g. (85, 90, 95)")
    if np.any(np.diff(radii) <= 0):
        raise InputError(f"radii_mm must be strictly increasing (innermost shell first), got "
                         f"{radii.tolist()}; sort them and drop duplicates")
    if sigma.size != radii.size:
        raise InputError(f"got {radii.size} radii but {sigma.size} conductivities; give one "
                         f"conductivity (S/m) per shell, innermost first")
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise InputError(f"conductivities must be positive finite values in S/m, got "
                         f"{sigma.tolist()}; e.g. (0.33, 0.0066, 0.33)")
    return _Sphere(radii * MM, sigma)


def _check_points(points_mm: ArrayLike, sphere: _Sphere) -> np.ndarray:
    """Points as an (n, 3) array in metres, finite and inside the outer sphere."""
    points = np.asarray(points_mm, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"points_mm must have shape (n, 3), got {points.shape}; for one "
                         f"point pass [[x, y, z]]")
    if not np.all(np.isfinite(points)):
        raise InputError("points_mm contains NaN or infinite coordinates; drop those points")
    points = points * MM
    radius = np.linalg.norm(points, axis=1)
    outside = radius > sphere.outer * (1 + OUTSIDE_TOLERANCE)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise InputError(f"{int(outside.sum())} point(s) lie outside the outer sphere, e.g. "
                         f"point {first} at {radius[first] / MM:.6g} mm from the centre > "
                         f"{sphere.outer / MM:.6g} mm; the solution exists only inside")
    return points


def _electrode_direction(position_mm: ArrayLike, sphere: _Sphere, name: str) -> np.ndarray:
    """Unit vector of an electrode that lies within 1 % of the outer radius."""
    position = np.asarray(position_mm, dtype=float)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise InputError(f"{name}_mm must be a finite 3-vector in mm, got {position_mm!r}")
    radius = float(np.linalg.norm(position)) * MM
    if abs(radius - sphere.outer) > ELECTRODE_TOLERANCE * sphere.outer:
        raise InputError(f"the {name} is {radius / MM:.6g} mm from the centre but electrodes "
                         f"must lie on the outer surface ({sphere.outer / MM:.6g} mm, within "
                         f"1 %); move it onto the outermost sphere")
    return position * MM / radius


def _check_current(current_a: float) -> float:
    """A finite current in amperes (any sign)."""
    try:
        current = float(current_a)
    except (TypeError, ValueError):
        current = np.nan
    if not np.isfinite(current):
        raise InputError(f"current_a must be a finite number of amperes, got {current_a!r}")
    return current


def _check_terms(n_terms: int | None) -> int | None:
    """None or a positive integer."""
    if n_terms is None:
        return None
    if isinstance(n_terms, bool) or not isinstance(n_terms, int | np.integer) or n_terms < 1:
        raise InputError(f"n_terms must be a positive integer or None (automatic), got "
                         f"{n_terms!r}")
    return int(n_terms)


def _check_pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two flattened float arrays of equal size, finite, neither all zero."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.size != b.size:
        raise InputError(f"cannot compare arrays of {a.size} and {b.size} values; compare "
                         f"the same points and components")
    for name, values in (("a", a), ("b", b)):
        if not np.all(np.isfinite(values)):
            raise InputError(f"{name} contains NaN or infinite values; drop those points "
                             f"(e.g. points at an electrode) before comparing")
        if not np.any(values):
            raise InputError(f"{name} is all zeros, so its norm is 0 and it has no direction; "
                             f"compare non-zero fields")
    return a, b


# --- the solution -------------------------------------------------------------------------

def _solve(points: np.ndarray, sphere: _Sphere, montage: _Montage, n_terms: int | None,
           want_field: bool, accelerate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Potential (V) and gradient (V/m) at points (m); the gradient is zeros unless wanted.

    ``accelerate=False`` sums the plain series in the outer shell too (for tests only).
    """
    radius = np.linalg.norm(points, axis=1)
    shell = np.minimum(np.searchsorted(sphere.radii, radius), len(sphere.radii) - 1)
    terms = {k: n_terms or _auto_terms(_ratio(sphere, k, radius[shell == k], accelerate))
             for k in np.unique(shell)}
    u, v = _coefficients(sphere, max(terms.values(), default=1), accelerate)
    potential = np.zeros(len(points))
    gradient = np.zeros((len(points), 3))
    for k, n_max in terms.items():
        for index in _chunks(np.flatnonzero(shell == k)):
            potential[index], gradient[index] = _shell_series(
                points[index], sphere, int(k), u[:n_max, k], v[:n_max, k], montage, want_field)
    if accelerate:
        outer = shell == len(sphere.radii) - 1
        closed_potential, closed_gradient = _closed_form_pair(points[outer], sphere, montage)
        potential[outer] += closed_potential
        gradient[outer] += closed_gradient
    return potential, gradient


def _chunks(index: np.ndarray) -> list[np.ndarray]:
    """Split point indices into blocks of at most _CHUNK."""
    return np.array_split(index, max(1, -(-len(index) // _CHUNK)))


def _ratio(sphere: _Sphere, k: int, radius: np.ndarray, accelerate: bool) -> float:
    """Geometric convergence ratio of the series in shell k for these radii."""
    if accelerate and k == len(sphere.radii) - 1:
        return float(sphere.radii[-2] / sphere.outer) if k > 0 else 0.0
    return float(radius.max() / sphere.outer)


def _auto_terms(ratio: float) -> int:
    """Smallest N whose tail bound (N+1)² ratio^(N+1) / (1 - ratio) is below the tolerance."""
    if ratio >= 1:
        return MAX_TERMS
    n = np.arange(1, MAX_TERMS + 1)
    tail = (n + 1.0) ** 2 * ratio ** (n + 1.0) / (1 - ratio)
    good = np.flatnonzero(tail <= TAIL_TOLERANCE)
    return int(n[good[0]]) if good.size else MAX_TERMS


def _coefficients(sphere: _Sphere, n_max: int, accelerate: bool) -> tuple[np.ndarray, ...]:
    """u_nk and v_nk per ampere, shape (n_max, K), for n = 1..n_max (module docstring).

    With ``accelerate`` the outer shell's u holds u_nK minus the homogeneous coefficient.
    """
    n = np.arange(1, n_max + 1, dtype=float)
    r, sigma = sphere.radii, sphere.sigma
    q = np.concatenate(([0.0], r[:-1] / r[1:]))  # q_k = r_{k-1}/r_k
    q_n = q[None, :] ** n[:, None]
    t = np.zeros((n_max, len(r)))  # t_k = v_nk / u_nk
    tau = np.zeros((n_max, len(r)))  # τ_k = t_k q_k^(n+1)
    for k in range(len(r) - 1):
        g = (n - (n + 1) * tau[:, k]) / (1 + tau[:, k])
        t[:, k + 1] = q_n[:, k + 1] * ((sigma[k + 1] * n - sigma[k] * g)
                                       / (sigma[k] * g + sigma[k + 1] * (n + 1)))
        tau[:, k + 1] = t[:, k + 1] * q_n[:, k + 1] * q[k + 1]
    scale = (2 * n + 1) / (4 * np.pi * sigma[-1] * sphere.outer)
    u = np.empty_like(t)
    u[:, -1] = scale / (n - (n + 1) * tau[:, -1])
    for k in range(len(r) - 2, -1, -1):
        u[:, k] = u[:, k + 1] * (q_n[:, k + 1] + t[:, k + 1]) / (1 + tau[:, k])
    v = t * u
    if accelerate:  # u_nK - scale/n, without the cancellation
        u[:, -1] = scale * (n + 1) * tau[:, -1] / (n * (n - (n + 1) * tau[:, -1]))
    return u, v


def _shell_series(points: np.ndarray, sphere: _Sphere, k: int, u: np.ndarray, v: np.ndarray,
                  montage: _Montage, want_field: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sum the series for points of shell k: potential and gradient, times the current."""
    radius = np.linalg.norm(points, axis=1)
    unit = _unit_vectors(points, radius)
    x_a = np.clip(unit @ montage.anode, -1.0, 1.0)
    x_c = np.clip(unit @ montage.cathode, -1.0, 1.0)
    sums = np.zeros((4, len(points)))  # V, Σ f' ΔP, Σ (f/r) P'_a, Σ (f/r) P'_c
    legendre = zip(_legendre(x_a, len(u), want_field), _legendre(x_c, len(u), want_field),
                   _radial(radius, sphere, k, u, v, want_field), strict=True)
    for (p_a, dp_a), (p_c, dp_c), (f, df, f_over_r) in legendre:
        delta = p_a - p_c
        sums[0] += f * delta
        if want_field:
            sums[1] += df * delta
            sums[2] += f_over_r * dp_a
            sums[3] += f_over_r * dp_c
    radial = sums[1] - sums[2] * x_a + sums[3] * x_c
    gradient = (radial[:, None] * unit + sums[2][:, None] * montage.anode
                - sums[3][:, None] * montage.cathode)
    return montage.current * sums[0], montage.current * gradient


def _unit_vectors(points: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Unit vectors r / |r|; any unit vector at the centre, where only n = 1 survives."""
    unit = np.tile([0.0, 0.0, 1.0], (len(points), 1))
    inside = radius > 0
    unit[inside] = points[inside] / radius[inside, None]
    return unit


def _legendre(x: np.ndarray, n_max: int, derivative: bool) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield (P_n(x), P_n'(x)) for n = 1..n_max; P_n' is None unless ``derivative``."""
    p_prev, p = np.ones_like(x), x.copy()
    d_prev, d = np.zeros_like(x), np.ones_like(x)
    for n in range(1, n_max + 1):
        yield p, (d if derivative else None)
        if derivative:
            d_prev, d = d, d_prev + (2 * n + 1) * p
        p_prev, p = p, ((2 * n + 1) / (n + 1)) * x * p - (n / (n + 1)) * p_prev


def _radial(radius: np.ndarray, sphere: _Sphere, k: int, u: np.ndarray, v: np.ndarray,
            derivative: bool) -> Iterator[tuple[np.ndarray | None, ...]]:
    """Yield (f_n, f_n', f_n/r) at the radii of shell k; the last two None unless wanted."""
    outer = float(sphere.radii[k])
    rho = radius / outer
    rho_pow = np.ones_like(radius)  # (r/r_k)^(n-1)
    inner = float(sphere.radii[k - 1]) if k > 0 else 0.0
    inv_r = 1.0 / radius if k > 0 else None  # r > 0 outside the innermost shell
    mu = inner * inv_r if k > 0 else None
    mu_pow = mu * mu if k > 0 else None  # (r_{k-1}/r)^(n+1)
    for n in range(1, len(u) + 1):
        inner_part = (u[n - 1] / outer) * rho_pow  # u (r/r_k)^(n-1) / r_k
        f_over_r = inner_part
        df = n * inner_part
        if k > 0:
            outer_part = (v[n - 1] * inv_r) * mu_pow
            f_over_r = inner_part + outer_part
            df = df - (n + 1) * outer_part
        f = f_over_r * radius
        yield f, (df if derivative else None), (f_over_r if derivative else None)
        rho_pow *= rho
        if k > 0:
            mu_pow *= mu
        if n % 32 == 0:
            _flush_tiny(rho_pow, mu_pow)


def _flush_tiny(*powers: np.ndarray | None) -> None:
    """Set powers below 1e-250 to 0 so that they never become slow subnormal numbers."""
    for power in powers:
        if power is not None:
            power *= power > 1e-250


def _closed_form_pair(points: np.ndarray, sphere: _Sphere,
                      montage: _Montage) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form homogeneous potential and gradient (σ_K) of anode minus cathode, times I."""
    v_a, g_a = _closed_form(points, sphere.outer, float(sphere.sigma[-1]), montage.anode)
    v_c, g_c = _closed_form(points, sphere.outer, float(sphere.sigma[-1]), montage.cathode)
    return montage.current * (v_a - v_c), montage.current * (g_a - g_c)


def _closed_form(points: np.ndarray, outer: float, sigma: float,
                 direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit source at ``outer * direction`` on a homogeneous sphere, without the n = 0 term.

    G = [2/d - 2/R + ln(2R / w) / R] / (4πσ) with d = |r - s| and w = R + d - r·s/R; NaN at s.
    """
    offset = points - outer * direction
    d = np.linalg.norm(offset, axis=1)
    d = np.where(d > SINGULAR_DISTANCE * outer, d, np.nan)
    w = outer + d - points @ direction
    potential = (2 / d - 2 / outer + np.log(2 * outer / w) / outer) / (4 * np.pi * sigma)
    grad_w = offset / d[:, None] - direction
    gradient = (-2 * offset / d[:, None] ** 3 - grad_w / (outer * w[:, None]))
    return potential, gradient / (4 * np.pi * sigma)
