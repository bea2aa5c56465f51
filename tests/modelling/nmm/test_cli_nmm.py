"""`ntdb model simulate` and `ntdb model fit` from the command line."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from neurotwin_db.cli.main import cli


def _ntdb(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_simulate_a_connectome_network_and_summarise_every_node():
    result = _ntdb("model", "simulate", "--model", "jansen-rit", "--connectome", "tvb76",
                   "--coupling", "0.5", "--duration", "3s", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["Nodes"] == 76 and summary["DurationSeconds"] == 3.0
    assert summary["WallSeconds"] > 0
    peaks = [row["peak_hz"] for row in summary["PerNode"]]
    assert len(peaks) == 76 and 8 <= np.median(peaks) <= 12
    assert {"rel_alpha", "rel_theta", "rel_gamma"} <= set(summary["PerNode"][0])


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_simulate_writes_the_time_series_with_its_metadata(tmp_path, suffix):
    out = tmp_path / f"sim{suffix}"
    result = _ntdb("model", "simulate", "--model", "lanmm", "--duration", "2s",
                   "--stim-freq", "40", "--stim-field", "0.5", "--param", "p2=120",
                   "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    if suffix == ".npz":
        with np.load(out) as data:
            eeg, meta = data["eeg"], json.loads(str(data["metadata"]))
    else:
        with h5py.File(out) as f:
            eeg, meta = f["eeg"][()], json.loads(f.attrs["metadata"])
    assert eeg.shape == (1, 2000)
    assert meta["parameters"]["p2"] == 120.0 and meta["stimulation"]["Frequency"] == 40.0
    again = _ntdb("model", "simulate", "--duration", "1s", "--out", str(out))
    assert again.exit_code == 2 and "already exists" in again.output


def test_simulate_starts_from_a_fitted_params_file(tmp_path):
    params = tmp_path / "sub-01_desc-jansenrit_params.json"
    params.write_text(json.dumps({"Model": "jansen-rit", "Parameters": {"b": 40.0}}))
    result = _ntdb("model", "simulate", "--params", str(params), "--duration", "2s", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["Parameters"]["b"] == 40.0


@pytest.mark.parametrize("args, message", [
    (["--dt", "5ms"], "dt 5 ms is too large for jansen-rit"),
    (["--sham"], "--sham needs --stim-freq"),
    (["--param", "zeta=1"], "jansen-rit has no parameter zeta"),
    (["--connectome", "tvb999"], "unknown connectome"),
    (["--duration", "ten"], "is not a duration"),
    (["--out", "sim.txt"], "must end in .npz or .h5"),
    (["--param", "b=x"], "--param wants NAME=NUMBER"),
])
def test_simulate_bad_input_is_one_clear_line(args, message):
    result = _ntdb("model", "simulate", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_connectome_with_negative_weights_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    weights = np.ones((3, 3))
    weights[0, 1] = -0.5
    np.savez(bad, weights=weights, tract_lengths=np.ones((3, 3)))
    result = _ntdb("model", "simulate", "--connectome", str(bad), "--duration", "1s")
    assert result.exit_code == 2 and "negative" in result.output
    square = tmp_path / "square.npz"
    np.savez(square, weights=np.ones((3, 2)), tract_lengths=np.ones((3, 2)))
    result = _ntdb("model", "simulate", "--connectome", str(square), "--duration", "1s")
    assert result.exit_code == 2 and "square" in result.output


def test_fit_from_the_command_line_writes_the_derivative(eeg_dataset):
    result = _ntdb("model", "fit", str(eeg_dataset), "--subject", "01", "--parameters", "b",
                   "--seeds", "2", "--evaluations", "24", "--sim-duration", "10s", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["Converged"] and document["Files"]["params"].endswith(
        "sub-01_task-rest_desc-jansenrit_params.json")
    again = _ntdb("model", "fit", str(eeg_dataset), "--subject", "01")
    assert again.exit_code == 2 and "already exists" in again.output


def test_fit_bad_input(eeg_dataset):
    result = _ntdb("model", "fit", str(eeg_dataset), "--subject", "09")
    assert result.exit_code == 2 and "no EEG for task 'rest'" in result.output
    result = _ntdb("model", "fit", str(eeg_dataset), "--subject", "01", "--parameters", "x")
    assert result.exit_code == 2 and "cannot fit x" in result.output


def _field_map(path, value, offset_mm=0.0):
    import nibabel as nib

    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -100.0 + offset_mm
    nib.save(nib.Nifti1Image(np.full((50, 50, 50), value, dtype=np.float32), affine), path)
    return path


def test_per_node_fields_come_from_an_efield_map(tmp_path):
    stim_map = _field_map(tmp_path / "En.nii.gz", 0.25)
    result = _ntdb("model", "simulate", "--connectome", "tvb76", "--duration", "1s",
                   "--stim-freq", "40", "--stim-map", str(stim_map), "--json")
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)["Stimulation"]["PeakNormalField"]
    assert len(fields) == 76 and np.allclose(fields, 0.25)
    far = _field_map(tmp_path / "far.nii.gz", 0.25, offset_mm=1000.0)
    result = _ntdb("model", "simulate", "--connectome", "tvb76", "--duration", "1s",
                   "--stim-freq", "40", "--stim-map", str(far))
    assert result.exit_code == 2 and "same space" in result.output
    result = _ntdb("model", "simulate", "--duration", "1s", "--stim-freq", "40",
                   "--stim-map", str(stim_map))
    assert result.exit_code == 2 and "no node centres" in result.output


def test_a_cohort_fit_reports_each_subject_and_fails_on_any_unfitted(eeg_dataset):
    result = _ntdb("model", "fit", str(eeg_dataset), "--subject", "01", "--subject", "02",
                   "--parameters", "b", "--features", "alpha_peak_hz,rel_alpha,rel_gamma",
                   "--seeds", "2", "--evaluations", "30",
                   "--sim-duration", "10s", "--jobs", "2", "--overwrite")
    assert result.exit_code == 1, result.output
    assert "sub-01: jansen-rit fitted" in result.output
    assert "sub-02: NOT FITTED" in result.output and "did not converge" in result.output
