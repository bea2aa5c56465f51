import json

import numpy as np
import pytest

from neurotwin_db import datalad as dl
from neurotwin_db.errors import FitError, InputError
from neurotwin_db.modelling.nmm import (
    FitSettings,
    JansenRit,
    LaNMM,
    fit,
    fit_subject,
    make_target,
    simulate,
)
from neurotwin_db.modelling.nmm._fit import DEFAULT_FEATURES, DEFAULT_PARAMETERS


def _recover(true, base, seconds):
    sim = simulate(true, duration_s=60.0, seed=7, sfreq=500.0)
    target = make_target(sim.eeg, sim.sfreq, DEFAULT_FEATURES[base.name])
    settings = FitSettings(DEFAULT_PARAMETERS[base.name], max_evaluations=60,
                           duration_s=seconds, background=False)
    return fit(base, target, settings)


def _check_recovered(result, true):
    assert result.converged
    for name in result.names:
        error = abs(result.values[name] - getattr(true, name))
        # within the 95 % interval of the reported uncertainty
        assert error <= 2 * result.uncertainty[name], (name, error, result.uncertainty[name])
        assert result.uncertainty[name] < 0.25 * np.ptp(true.bounds[name])


def test_jansen_rit_parameters_are_recovered_within_their_uncertainty():
    true = JansenRit(b=55.0, C=150.0)
    _check_recovered(_recover(true, JansenRit(), 10.0), true)


@pytest.mark.slow
def test_lanmm_parameters_are_recovered_within_their_uncertainty():
    true = LaNMM(a_GABAs=53.0, A_GABAf=-27.0)
    _check_recovered(_recover(true, LaNMM(), 20.0), true)


def test_bad_fit_settings_are_refused():
    sim = simulate(JansenRit(), duration_s=40.0, sfreq=500.0)
    target = make_target(sim.eeg, sim.sfreq, ("alpha_peak_hz",))
    with pytest.raises(InputError, match="cannot fit nope; fittable parameters are A, B"):
        fit(JansenRit(), target, FitSettings(("nope",)))
    with pytest.raises(InputError, match="unknown optimizer 'sgd'"):
        fit(JansenRit(), target, FitSettings(("b",), optimizer="sgd"))
    with pytest.raises(InputError, match="at least 3 segments"):
        make_target(sim.eeg[:, :5000], sim.sfreq, ("alpha_peak_hz",))
    with pytest.raises(InputError, match="unknown spectral feature"):
        make_target(sim.eeg, sim.sfreq, ("alpha_power",))


def test_a_subject_fit_is_written_as_a_cited_derivative(eeg_dataset):
    document = fit_subject(eeg_dataset, "01", model="jansen-rit", fit_parameters=("b",),
                           seeds=(0, 1), max_evaluations=30, duration_s=10.0)
    assert document["Converged"] and document["LossPerFeature"] <= 4
    assert set(document["Fitted"]) == {"b", "background"}
    assert 0 < document["Fitted"]["b"]["SD"] < 30
    assert document["Features"]["alpha_peak_hz"]["Target"] == pytest.approx(9.5, abs=0.3)
    root = eeg_dataset / "derivatives" / "ntdb-nmm"
    params = json.loads((eeg_dataset / document["Files"]["params"]).read_text())
    assert params["Parameters"]["b"] == pytest.approx(document["Fitted"]["b"]["Value"])
    assert params["Sources"][0]["URL"]
    table = (eeg_dataset / document["Files"]["table"]).read_text().splitlines()
    assert table[0].split("\t") == ["feature", "target", "fitted", "standard_error", "z"]
    assert len(table) == 1 + len(DEFAULT_FEATURES["jansen-rit"])
    assert (eeg_dataset / document["Files"]["figure"]).read_bytes()[:4] == b"\x89PNG"
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert dl.is_dataset(root) and not dl.git(root, "status", "--porcelain").strip()


def test_a_fit_that_does_not_converge_is_reported_and_not_written(eeg_dataset):
    # sub-02's EEG is dominated by 40 Hz: a Jansen-Rit column (alpha) cannot match it
    with pytest.raises(FitError, match="did not converge.*nothing was written"):
        fit_subject(eeg_dataset, "02", model="jansen-rit", features=("rel_alpha", "rel_gamma"),
                    seeds=(0,), max_evaluations=16, duration_s=10.0, background=False)
    assert not list((eeg_dataset / "derivatives").glob("ntdb-nmm/sub-02/**/*.json"))


def test_eeg_that_is_missing_or_has_no_usable_channels_is_a_clear_error(eeg_dataset, tmp_path):
    with pytest.raises(InputError, match="no EEG for task 'sleep'.*ingest it"):
        fit_subject(eeg_dataset, "01", task="sleep")
    import mne

    from neurotwin_db.modelling.nmm import read_eeg
    raw = mne.io.RawArray(np.zeros((3, 5000)), mne.create_info(3, 250.0, "eeg"), verbose=False)
    flat = tmp_path / "flat_eeg.fif"
    raw.save(flat, verbose="error")
    with pytest.raises(InputError, match="no usable EEG channels"):
        read_eeg(flat)
