import numpy as np
import pytest
from scipy.signal import welch

from neurotwin_db.errors import InputError, ModelDivergenceError
from neurotwin_db.modelling.nmm import (
    JansenRit,
    LaNMM,
    Network,
    Stimulation,
    phase_locking_value,
    simulate,
)


def _network(n=5, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.6)
    np.fill_diagonal(weights, 0)
    lengths = rng.uniform(10, 120, (n, n))
    return Network(weights, lengths, tuple(f"n{i}" for i in range(n)), coupling=0.05)


def _peak(sim, lo=2.0, hi=60.0):
    f, p = welch(sim.eeg.mean(axis=0), fs=sim.sfreq, nperseg=int(4 * sim.sfreq))
    band = (f >= lo) & (f <= hi)
    return f[band][np.argmax(p[band])]


@pytest.mark.parametrize("model", [JansenRit(), LaNMM()], ids=["jansen-rit", "lanmm"])
def test_numba_and_numpy_kernels_agree_on_a_delayed_stimulated_network(model):
    stim = Stimulation(freq_hz=40.0, field_v_per_m=(0.5, 1.0, 0.0, 2.0, 0.3), ramp_s=0.05)
    runs = [simulate(model, network=_network(), duration_s=0.15, transient_s=0.05, seed=3,
                     stimulation=stim, backend=backend) for backend in ("numba", "numpy")]
    assert runs[0].eeg.shape == (5, 150)
    assert np.ptp(runs[0].eeg) > 0
    np.testing.assert_allclose(runs[0].eeg, runs[1].eeg, rtol=0, atol=1e-10)


def test_a_jansen_rit_node_with_standard_parameters_oscillates_near_10_hz():
    sim = simulate(JansenRit(), duration_s=20.0, seed=0)
    assert 9.0 <= _peak(sim) <= 11.5


def test_lanmm_makes_alpha_and_gamma():
    sim = simulate(LaNMM(), duration_s=20.0, seed=0, sfreq=500.0)
    assert 8.5 <= _peak(sim, 2, 20) <= 11.5
    assert 35.0 <= _peak(sim, 25, 60) <= 45.0


def test_same_seed_same_series_other_seed_other_series():
    a, b, c = (simulate(JansenRit(), duration_s=1.0, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.eeg, b.eeg)
    assert not np.allclose(a.eeg, c.eeg)


def test_40hz_field_entrains_the_lanmm_and_sham_does_not():
    def plv(sham):
        stim = Stimulation(40.0, 0.3, ramp_s=1.0, sham=sham)
        sim = simulate(LaNMM(), duration_s=10.0, sfreq=500.0, seed=1, stimulation=stim)
        keep = (sim.times >= 2) & (sim.times <= 8)
        return phase_locking_value(sim.eeg[0, keep], np.sin(2 * np.pi * 40 * sim.times[keep]),
                                   sim.sfreq, 40.0)

    assert plv(False) > 0.5
    assert plv(True) < 0.3


def test_sham_is_ramps_only():
    stim = Stimulation(40.0, 1.0, ramp_s=2.0, sham=True)
    t = np.linspace(0, 20, 20001)
    envelope = stim.envelope(t, 20.0)
    assert envelope[(t > 4.5) & (t < 15.5)].max() == 0
    assert envelope[np.argmin(abs(t - 2.0))] == pytest.approx(1.0)
    assert Stimulation(40.0, 1.0, ramp_s=2.0).envelope(t, 20.0)[10000] == 1.0


def test_unstable_parameters_are_reported_as_divergence_with_the_parameters():
    with pytest.raises(ModelDivergenceError, match="diverged.*sigma"):
        simulate(JansenRit(sigma=1e12), duration_s=0.5)


@pytest.mark.parametrize("model", [JansenRit(A=float("nan")), JansenRit(a=0.0),
                                   LaNMM(a_GABAf=-5.0)])
def test_nan_or_non_positive_rates_are_refused(model):
    with pytest.raises(InputError):
        simulate(model, duration_s=0.1)


def test_dt_too_large_for_the_time_constants_is_refused():
    with pytest.raises(InputError, match=r"dt 2 ms is too large for lanmm.*4\.55 ms"):
        simulate(LaNMM(), dt_s=2e-3, sfreq=500.0)
    with pytest.raises(InputError, match="must divide"):
        simulate(JansenRit(), dt_s=3e-4, sfreq=1000.0)


def test_stimulation_needs_one_field_or_one_per_node():
    with pytest.raises(InputError, match="3 field values for 5 nodes"):
        simulate(JansenRit(), network=_network(), duration_s=0.1,
                 stimulation=Stimulation(40.0, (1.0, 2.0, 3.0)))
