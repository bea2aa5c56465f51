"""``ntdb twin build``: head model → field → fitted model → tACS prediction, as a derivative.

Each stage reuses the subject's existing derivative when there is one, and makes it
otherwise: a head model (the template head when the subject has none), the montage's
field (its mean normal component in the target region drives the model), the model fit
to the subject's EEG, then paired active/sham simulations. The twin derivative
``derivatives/ntdb-twin/sub-X/eeg/…_desc-<montage>_twin.json`` (+ PNG) gives the
predicted change in 40 Hz power, alpha peak frequency and entrainment, and cites every
stage it used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from neurotwin_db import datalad as dl
from neurotwin_db._io import write_json
from neurotwin_db.bidspath import BIDSPath, check_label
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.derivatives import SourceDataset, open_derivative, save_derivative
from neurotwin_db.modelling.nmm._figure import write_spectra_figure
from neurotwin_db.modelling.nmm._models import model_class, with_parameters
from neurotwin_db.modelling.nmm._run import PIPELINE as NMM_PIPELINE
from neurotwin_db.modelling.nmm._run import find_eeg, fit_subject, nmm_paths
from neurotwin_db.modelling.nmm._stimulation import RADMAN_LAMBDA_MV_PER_V_PER_M
from neurotwin_db.modelling.twin._predict import predict_effect

PIPELINE = "ntdb-twin"
DEFAULT_MONTAGE = "F3:2.0,Fp2:-2.0"
DEFAULT_TARGET = (np.array([-38.0, 44.0, 26.0]), 15.0)  # left DLPFC (MNI), under F3
Log = Callable[[str], None]


def twin_paths(dataset: Path, subject: str, task: str, desc: str,
               session: str | None = None) -> dict[str, Path]:
    """Where a twin's prediction is written."""
    base = BIDSPath.create(sub=check_label("sub", subject),
                           ses=check_label("ses", session) if session else None,
                           task=check_label("task", task), desc=check_label("desc", desc),
                           datatype="eeg", suffix="twin", extension=".json")
    root = Path(dataset) / "derivatives" / PIPELINE
    return {"twin": root / base.relpath, "figure": root / base.with_(extension=".png").relpath}


def ensure_head(dataset: Path, subject: str, session: str | None, log: Log) -> Path:
    """The subject's head mesh; the template head is built when there is none."""
    from neurotwin_db.modelling.headmodel._build import (
        build_head,
        headmodel_paths,
        write_headmodel,
    )

    mesh = headmodel_paths(dataset, subject, session)["mesh"]
    if not mesh.is_file():
        log(f"sub-{subject} has no head model: building the fsaverage template head")
        write_headmodel(dataset, subject, build_head("template"), session=session)
    return mesh


def target_field(dataset: Path, subject: str, montage: str, session: str | None,
                 target: tuple[np.ndarray, float], log: Log) -> dict[str, object]:
    """Mean normal field (V/m) of the montage in the target region, and where it came from."""
    from neurotwin_db.modelling.efield._electrodes import parse_montage
    from neurotwin_db.modelling.efield._run import efield_paths, montage_label, run_efield

    head = ensure_head(dataset, subject, session, log)
    desc = montage_label(parse_montage(montage))
    space = "MNI305" if json.loads(head.with_suffix(".json").read_text(encoding="utf-8")
                                   ).get("Method", {}).get("Space") == "fsaverage" else None
    exists = efield_paths(dataset, subject, desc, session, space)["mesh"].is_file()
    document = run_efield(dataset, subject, montage, session=session, roi=target,
                          write=not exists)
    roi = document["Summary"]["ROI"]  # type: ignore[index]
    log(f"field of {montage} in the target: {roi['MeanEn']:+.3f} V/m normal, "
        f"{roi['MeanMagnE']:.3f} V/m magnitude")
    return {"MeanNormalField": abs(float(roi["MeanEn"])), "MeanMagnE": roi["MeanMagnE"],
            "Target": {"CentreMm": roi["CentreMm"], "RadiusMm": roi["RadiusMm"]},
            "EField": f"derivatives/ntdb-efield ({desc})", "HeadModel": str(head.name)}


def check_fit_possible(dataset: Path, subject: str, model: str, task: str,
                       session: str | None) -> None:
    """Fail before any expensive stage when there is neither a fit nor EEG to fit."""
    if not nmm_paths(dataset, subject, task, model_class(model).name, session)["params"].is_file():
        find_eeg(dataset, subject, task, session)


def fitted_model(dataset: Path, subject: str, model: str, task: str, session: str | None,
                 log: Log, **fit_options: object):  # noqa: ANN201 (a model dataclass)
    """The subject's fitted model: read from ``ntdb-nmm`` or fitted now."""
    cls = model_class(model)
    params = nmm_paths(dataset, subject, task, cls.name, session)["params"]
    if not params.is_file():
        log(f"fitting {cls.name} to sub-{subject}'s {task} EEG")
        fit_subject(dataset, subject, task=task, model=cls.name, session=session,
                    **fit_options)  # type: ignore[arg-type]
    document = json.loads(params.read_text(encoding="utf-8"))
    return with_parameters(cls(), document["Parameters"]), params, document


def build_twin(dataset: Path, subject: str, *, montage: str = DEFAULT_MONTAGE,
               model: str = "lanmm", task: str = "rest", session: str | None = None,
               target: tuple[np.ndarray, float] | None = None,
               field_v_per_m: float | None = None, freq_hz: float = 40.0,
               seeds: Sequence[int] = (0, 1, 2, 3, 4), duration_s: float = 24.0,
               ramp_s: float = 2.0, lam: float = RADMAN_LAMBDA_MV_PER_V_PER_M,
               field_source: str = "given (--field)", overwrite: bool = False,
               log: Log = lambda _m: None, **fit_options: object) -> dict[str, object]:
    """Build a subject's twin and write its tACS prediction (active vs sham)."""
    from neurotwin_db.modelling.efield._electrodes import parse_montage
    from neurotwin_db.modelling.efield._run import montage_label

    dataset = Path(dataset)
    desc = montage_label(parse_montage(montage)) if field_v_per_m is None else "givenfield"
    paths = twin_paths(dataset, subject, task, desc, session)
    if paths["twin"].exists() and not overwrite:
        raise OutputExistsError(paths["twin"])
    check_fit_possible(dataset, subject, model, task, session)
    if field_v_per_m is None:
        node = target_field(dataset, subject, montage, session, target or DEFAULT_TARGET, log)
    else:
        if not np.isfinite(field_v_per_m) or field_v_per_m < 0:
            raise InputError(f"--field {field_v_per_m} V/m must be a non-negative number")
        node = {"MeanNormalField": float(field_v_per_m), "EField": field_source}
    twin, params_path, fit_doc = fitted_model(dataset, subject, model, task, session, log,
                                              **fit_options)
    log(f"simulating {twin.name} with {node['MeanNormalField']:.3f} V/m at {freq_hz:g} Hz, "
        f"active and sham, {len(seeds)} paired seeds")
    prediction = predict_effect(twin, float(node["MeanNormalField"]), freq_hz=freq_hz,
                                seeds=seeds, duration_s=duration_s, ramp_s=ramp_s,
                                lam_mv_per_v_per_m=lam)
    spectra = prediction.pop("_spectra")
    document = _document(subject, twin.name, montage, freq_hz, lam, node, prediction,
                         params_path.relative_to(dataset), fit_doc, duration_s, ramp_s)
    _write(dataset, subject, paths, document, spectra, freq_hz)
    return {**document, "Files": {k: str(v.relative_to(dataset)) for k, v in paths.items()}}


def _document(subject: str, model: str, montage: str, freq_hz: float, lam: float,
              node: dict[str, object], prediction: dict[str, object], params: Path,
              fit_doc: dict[str, object], duration_s: float, ramp_s: float
              ) -> dict[str, object]:
    change, sham = prediction["Change"], prediction["Sham"]  # type: ignore[index]
    base = sham["power_40hz"]["Mean"]  # type: ignore[index]
    return {
        "Description": f"Predicted effect of {freq_hz:g} Hz tACS on sub-{subject}'s "
                       f"{model} twin: active minus sham, paired seeds",
        "Model": model, "Montage": montage, "Frequency": freq_hz,
        "NodeField": node, "PolarisationLambda": lam,
        "PolarisationLambdaReference": "Radman et al. 2009, Brain Stimul 2:215-228",
        "Fit": {"File": str(params), "Fitted": fit_doc.get("Fitted"),
                "Loss": fit_doc.get("Loss")},
        "Simulation": {"DurationSeconds": duration_s, "RampSeconds": ramp_s,
                       "AnalysisWindow": [2 * ramp_s, duration_s - 2 * ramp_s]},
        "Prediction": prediction,
        "Headline": {
            "Power40HzChangePercent": round(100 * change["power_40hz"]["Mean"]  # type: ignore[index]
                                            / base, 2) if base else None,
            "AlphaPeakChangeHz": round(change["alpha_peak_hz"]["Mean"], 4),  # type: ignore[index]
            "EntrainmentPLVActive": round(prediction["Active"]["plv"]["Mean"], 4),  # type: ignore[index]
            "EntrainmentPLVSham": round(sham["plv"]["Mean"], 4),  # type: ignore[index]
        },
    }


def _write(dataset: Path, subject: str, paths: dict[str, Path], document: dict[str, object],
           spectra: dict[str, object], freq_hz: float) -> None:
    sources = [SourceDataset.of(dataset)]
    for pipeline in ("ntdb-headmodel", "ntdb-efield", NMM_PIPELINE):
        root = dataset / "derivatives" / pipeline
        if dl.is_dataset(root):
            sources.append(SourceDataset.of(root, url=f"bids::derivatives/{pipeline}"))
    open_derivative(dataset, PIPELINE, name="neurotwin-db neurotwins", sources=sources,
                    description="Predicted tACS effects of subjects' fitted neural-mass twins")
    headline = document["Headline"]
    write_spectra_figure(paths["figure"], [("sham", spectra["sham"]),
                                           ("active", spectra["active"])],
                         title=f"sub-{subject} twin: {freq_hz:g} Hz tACS, 40 Hz power "
                               f"{headline['Power40HzChangePercent']:+.0f}%",  # type: ignore[index]
                         marks=(freq_hz,))
    write_json(paths["twin"], {**document, "Sources": [s.as_bids() for s in sources]},
               overwrite=True)
    save_derivative(dataset, PIPELINE, f"twin sub-{subject}: {document['Montage']}")
