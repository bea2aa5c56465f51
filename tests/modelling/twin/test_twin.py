"""`ntdb twin build|optimize` end to end on a sphere head and generated EEG."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from neurotwin_db import datalad as dl
from neurotwin_db.cli.main import cli

SPHERE = ["--from", "sphere", "--radii", "85,90,95", "--conductivities", "0.33,0.0066,0.33",
          "--element-size", "12"]
TARGET = "0,0,78:15"


def _ntdb(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def twin_dataset(eeg_dataset):
    """sub-01 with a sphere head model and a LaNMM fit (small budget)."""
    for args in (["model", "headmodel", str(eeg_dataset), "--subject", "01", *SPHERE],
                 ["model", "fit", str(eeg_dataset), "--subject", "01", "--model", "lanmm",
                  "--parameters", "A_GABAf", "--seeds", "2", "--evaluations", "24",
                  "--sim-duration", "10s"]):
        result = _ntdb(*args)
        assert result.exit_code == 0, result.output
    return eeg_dataset


def test_twin_build_chains_field_fit_and_prediction(twin_dataset):
    result = _ntdb("twin", "build", str(twin_dataset), "--subject", "01", "--montage",
                   "Cz:1.0,Oz:-1.0", "--target", TARGET, "--seeds", "2", "--json")
    assert result.exit_code == 0, result.output
    twin = json.loads(result.output)
    assert twin["Model"] == "lanmm" and twin["NodeField"]["MeanNormalField"] > 0
    assert twin["Fit"]["File"].endswith("desc-lanmm_params.json")
    headline = twin["Headline"]
    assert headline["EntrainmentPLVActive"] > headline["EntrainmentPLVSham"]
    assert set(twin["Prediction"]) == {"Active", "Sham", "Change", "Seeds"}
    written = json.loads((twin_dataset / twin["Files"]["twin"]).read_text())
    cited = {s["URL"] for s in written["Sources"]}
    assert {"bids::derivatives/ntdb-efield", "bids::derivatives/ntdb-nmm"} <= cited
    assert (twin_dataset / twin["Files"]["figure"]).read_bytes()[:4] == b"\x89PNG"
    root = twin_dataset / "derivatives" / "ntdb-twin"
    assert dl.is_dataset(root) and not dl.git(root, "status", "--porcelain").strip()


def test_no_field_predicts_no_effect(twin_dataset):
    result = _ntdb("twin", "build", str(twin_dataset), "--subject", "01", "--field", "0",
                   "--seeds", "2", "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.output)["Prediction"]["Change"]
    assert change["plv"]["Mean"] == 0 and change["power_40hz"]["Mean"] == 0


def test_twin_optimize_ranks_lead_field_montages_by_entrainment(twin_dataset):
    result = _ntdb("twin", "optimize", str(twin_dataset), "--subject", "01", "--target",
                   TARGET, "--top", "2", "--seeds", "2", "--json")
    assert result.exit_code == 0, result.output
    ranking = json.loads(result.output)
    ranked = ranking["Ranked"]
    assert len(ranked) == 2 and ranking["Best"] == ranked[0]["Montage"]
    assert ranked[0]["PLVChange"] >= ranked[1]["PLVChange"]
    assert ranking["Candidates"] > 100  # every pair of the 10-20 cap, and the linear program
    for row in ranked:
        currents = [float(part.split(":")[1]) for part in row["Montage"].split(",")]
        assert sum(c for c in currents if c > 0) <= 2.0 + 1e-9


@pytest.mark.parametrize("args, message", [
    (["build", "--subject", "07"], "no EEG for task 'rest'"),
    (["optimize", "--subject", "07"], "no EEG for task 'rest'"),
    (["build", "--subject", "01", "--field", "-1", "--overwrite"], "must be a non-negative"),
    (["optimize", "--subject", "01", "--max-total", "3"], "safety limit"),
    (["build", "--subject", "01", "--target", "0,0,300:5", "--overwrite"], "no grey matter"),
])
def test_twin_bad_input_is_one_clear_line(twin_dataset, args, message):
    command, *rest = args
    result = _ntdb("twin", command, str(twin_dataset), *rest)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
