"""``ntdb twin optimize``: the montage whose field best entrains the subject's twin.

Candidates come from the subject's lead field: every two-electrode montage of the cap
at the full current budget, and the montage a linear program finds for the largest
mean normal field in the target (Saturnino et al. 2019). Their mean normal fields in the
target follow by superposition, at no solve. The strongest candidates are then run
through the twin (paired active/sham simulations) and ranked by predicted entrainment
at the stimulation frequency: the model, not the field alone, has the last word.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from neurotwin_db._io import write_json
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.derivatives import SourceDataset, open_derivative, save_derivative
from neurotwin_db.modelling.twin._build import (
    DEFAULT_TARGET,
    PIPELINE,
    check_fit_possible,
    ensure_head,
    fitted_model,
    twin_paths,
)
from neurotwin_db.modelling.twin._predict import predict_effect

Log = Callable[[str], None]


def load_or_compute_leadfield(dataset: Path, subject: str, cap: str, reference: str,
                              session: str | None, log: Log):  # noqa: ANN201 (LeadField)
    """The subject's stored lead field of ``cap``; computed (and stored) when missing."""
    from neurotwin_db.modelling.efield._leadfield import LeadField
    from neurotwin_db.modelling.efield._run_leadfield import leadfield_path, run_leadfield

    path = leadfield_path(dataset, subject, cap, reference, session)
    if not path.is_file():
        ensure_head(dataset, subject, session, log)
        log(f"no {cap} lead field for sub-{subject}: computing it (one solve per electrode)")
        run_leadfield(dataset, subject, cap=cap, reference=reference, session=session)
    return LeadField.load(path), path


def roi_gains(lead, target: tuple[np.ndarray, float]) -> np.ndarray:  # noqa: ANN001
    """Mean normal field (V/m per mA) in the target for each electrode, reference last (0)."""
    from neurotwin_db.modelling.efield._optimize import _roi, _target_directions

    _, roi = _roi(lead, np.asarray(target[0], float), float(target[1]))
    units, _ = _target_directions(lead, roi, "normal", None)
    shares = lead.volumes_m3[roi] / lead.volumes_m3[roi].sum()
    block = lead.field[:, roi].astype(float)
    return np.append(np.einsum("ekj,kj,k->e", block, units, shares), 0.0)


def candidate_montages(lead, target: tuple[np.ndarray, float], max_total_ma: float,  # noqa: ANN001
                       ) -> list[dict[str, object]]:
    """Every electrode pair at ±``max_total_ma``, and the linear program's montage."""
    from neurotwin_db.modelling.efield._optimize import optimize_montage

    gains = roi_gains(lead, target)
    names = lead.names
    rows = []
    for a, b in itertools.combinations(range(len(names)), 2):
        field = max_total_ma * (gains[a] - gains[b])
        anode, cathode = (a, b) if field >= 0 else (b, a)
        rows.append({"Montage": f"{names[anode]}:{max_total_ma:g},{names[cathode]}:"
                                f"{-max_total_ma:g}", "Kind": "pair",
                     "MeanNormalField": abs(float(field))})
    best = optimize_montage(lead, target[0], radius_mm=target[1], max_total_ma=max_total_ma,
                            max_per_electrode_ma=max_total_ma)
    rows.append({"Montage": best.montage(), "Kind": "linear program",
                 "MeanNormalField": abs(float(best.roi_mean))})
    return sorted(rows, key=lambda r: -float(r["MeanNormalField"]))  # type: ignore[arg-type]


def optimize_twin(dataset: Path, subject: str, *,
                  target: tuple[np.ndarray, float] | None = None,
                  cap: str = "standard_1020", reference: str = "Cz", model: str = "lanmm",
                  task: str = "rest", session: str | None = None, max_total_ma: float = 2.0,
                  top: int = 5, freq_hz: float = 40.0, seeds: Sequence[int] = (0, 1, 2),
                  duration_s: float = 16.0, overwrite: bool = False,
                  log: Log = lambda _m: None, **fit_options: object) -> dict[str, object]:
    """Rank montages by the twin's predicted entrainment; write the ranking."""
    dataset = Path(dataset)
    if not (np.isfinite(max_total_ma) and 0 < max_total_ma <= 2.0):
        raise InputError(f"--max-total {max_total_ma} mA is outside the safety limit; tACS "
                         "here is limited to at most 2 mA in total")
    if top < 1:
        raise InputError(f"--top {top} must be at least 1")
    paths = twin_paths(dataset, subject, task, "optimized", session)
    if paths["twin"].exists() and not overwrite:
        raise OutputExistsError(paths["twin"])
    target = target or DEFAULT_TARGET
    check_fit_possible(dataset, subject, model, task, session)
    lead, lead_path = load_or_compute_leadfield(dataset, subject, cap, reference, session, log)
    candidates = candidate_montages(lead, target, max_total_ma)
    twin, params_path, _ = fitted_model(dataset, subject, model, task, session, log,
                                        **fit_options)
    log(f"{len(candidates)} candidate montages; simulating the strongest {top} on the twin")
    ranked = []
    for row in candidates[:top]:
        effect = predict_effect(twin, float(row["MeanNormalField"]), freq_hz=freq_hz,  # type: ignore[arg-type]
                                seeds=seeds, duration_s=duration_s)
        change = effect["Change"]
        ranked.append({**row, "PredictedPLV": effect["Active"]["plv"]["Mean"],  # type: ignore[index]
                       "PLVChange": change["plv"]["Mean"],  # type: ignore[index]
                       "Power40HzChange": change["power_40hz"]["Mean"]})  # type: ignore[index]
    ranked.sort(key=lambda r: -float(r["PLVChange"]))
    document = {
        "Description": f"Montages for {freq_hz:g} Hz tACS ranked by the predicted "
                       f"entrainment of sub-{subject}'s {twin.name} twin (≤ {max_total_ma:g} "
                       "mA in total)",
        "Best": ranked[0]["Montage"], "Ranked": ranked,
        "Target": {"CentreMm": np.asarray(target[0], float).tolist(), "RadiusMm": target[1]},
        "LeadField": str(lead_path.relative_to(dataset)), "Fit": str(params_path.relative_to(
            dataset)), "Candidates": len(candidates), "Seeds": list(seeds),
    }
    sources = [SourceDataset.of(dataset)]
    open_derivative(dataset, PIPELINE, name="neurotwin-db neurotwins", sources=sources,
                    description="Predicted tACS effects of subjects' fitted neural-mass twins")
    write_json(paths["twin"], {**document, "Sources": [s.as_bids() for s in sources]},
               overwrite=True)
    save_derivative(dataset, PIPELINE, f"twin montage ranking sub-{subject}")
    return {**document, "File": str(paths["twin"].relative_to(dataset))}
