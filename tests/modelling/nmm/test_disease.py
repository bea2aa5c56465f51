"""The LaNMM AD path reproduces the published direction of the EEG biomarkers."""

from __future__ import annotations

import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.nmm._disease import (
    AD_STAGES,
    METRICS,
    disease_trajectory,
    stage_model,
    write_trajectory_figure,
)
from neurotwin_db.modelling.nmm._models import JansenRit, LaNMM

SEEDS = (0, 1, 2)
DURATION_S = 20.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trajectory() -> dict[str, dict]:
    rows = disease_trajectory(AD_STAGES, seeds=SEEDS, duration_s=DURATION_S)
    return {row["stage"]: row for row in rows}


def differs(a: dict, b: dict, metric: str) -> float:
    """a - b for ``metric``, and check it is larger than 3 seed-to-seed sds."""
    diff = a[metric] - b[metric]
    margin = 3 * max(a[f"{metric}_sd"], b[f"{metric}_sd"])
    assert abs(diff) > margin, (metric, a[metric], b[metric], margin)
    return diff


def test_stages_are_ordered_and_cumulative() -> None:
    assert list(AD_STAGES) == ["healthy", "early", "intermediate", "late"]
    assert AD_STAGES["healthy"] == {}
    names = list(AD_STAGES)
    for before, after in zip(names, names[1:], strict=False):
        assert set(AD_STAGES[before]) <= set(AD_STAGES[after])
    # fast (PV) inhibition weakens first, and stays weak
    assert AD_STAGES["early"]["A_GABAf"] > LaNMM().A_GABAf
    assert all(AD_STAGES[s]["A_GABAf"] == AD_STAGES["early"]["A_GABAf"] for s in names[1:])


def test_rows_carry_every_metric_and_spectrum(trajectory) -> None:
    assert list(trajectory) == list(AD_STAGES)
    for row in trajectory.values():
        assert row["n_seeds"] == len(SEEDS)
        for metric in METRICS:
            assert np.isfinite(row[metric]) and row[f"{metric}_sd"] >= 0
        assert row["psd"].shape == row["freqs"].shape
    assert trajectory["late"]["changes"] == AD_STAGES["late"]


def test_late_stage_slows_alpha_peak_and_raises_relative_theta(trajectory) -> None:
    healthy, late = trajectory["healthy"], trajectory["late"]
    assert differs(late, healthy, "alpha_peak_hz") < -1.0  # Hz
    assert differs(late, healthy, "dominant_hz") < -1.0
    assert differs(late, healthy, "rel_theta") > 0.1
    assert differs(late, healthy, "rel_alpha") < 0


def test_early_stage_has_more_40hz_and_gamma_power(trajectory) -> None:
    healthy, early = trajectory["healthy"], trajectory["early"]
    assert differs(early, healthy, "power_40hz") > 0
    assert early["power_40hz"] > 2 * healthy["power_40hz"]
    assert differs(early, healthy, "rel_gamma") > 0


def test_pv_loss_alone_does_not_slow(trajectory) -> None:
    """As the module docstring says: slowing needs the later kinetic changes."""
    healthy, early = trajectory["healthy"], trajectory["early"]
    assert abs(early["alpha_peak_hz"] - healthy["alpha_peak_hz"]) < 0.3
    assert abs(early["rel_theta"] - healthy["rel_theta"]) < 0.01
    assert trajectory["intermediate"]["alpha_peak_hz"] < healthy["alpha_peak_hz"] - 0.5


def test_figure_is_written_atomically_as_png(trajectory, tmp_path) -> None:
    out = tmp_path / "figs" / "ad.png"
    assert write_trajectory_figure(list(trajectory.values()), out) == out
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.stat().st_size > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["ad.png"]  # no temporary file left


def test_figure_refuses_bad_rows(tmp_path) -> None:
    with pytest.raises(InputError, match="no trajectory rows"):
        write_trajectory_figure([], tmp_path / "a.png")
    with pytest.raises(InputError, match="lacks"):
        write_trajectory_figure([{"stage": "x"}], tmp_path / "a.png")
    assert not any(tmp_path.iterdir())


def test_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="no disease stages"):
        disease_trajectory({})
    with pytest.raises(InputError, match="no seeds"):
        disease_trajectory(seeds=())
    with pytest.raises(InputError, match="integers"):
        disease_trajectory(seeds=(0.5,))
    with pytest.raises(InputError, match="no parameter"):
        disease_trajectory({"bad": {"A_GABAz": 1.0}}, seeds=(0,), duration_s=4.0)
    with pytest.raises(InputError, match="LaNMM"):
        stage_model({}, base=JansenRit())


def test_stage_model_applies_changes_to_a_given_base() -> None:
    base = LaNMM(p1=180.0)
    late = stage_model(AD_STAGES["late"], base=base)
    assert (late.p1, late.a_AMPA, late.A_GABAf) == (180.0, 85.0, -22.0)
    assert base.a_AMPA == 100.0
