"""``ntdb model fit``: a subject's neural-mass parameters fitted to their EEG, as a derivative.

Outputs go to ``derivatives/ntdb-nmm/sub-X/[ses-Y/]eeg/``:

- ``…_desc-<model>_params.json``: every parameter, the fitted ones with their
  uncertainty, the features (target, fitted, standard error), loss and provenance;
- ``…_desc-<model>_fit.tsv`` (+ ``.json`` describing its columns): one row per feature;
- ``…_desc-<model>_fit.png``: the fitted spectrum against the subject's.

A fit that does not converge is reported as an error and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from neurotwin_db._io import write_json, write_tsv
from neurotwin_db.bidspath import BIDSPath, check_label
from neurotwin_db.errors import FitError, InputError, OutputExistsError
from neurotwin_db.modelling.derivatives import SourceDataset, open_derivative, save_derivative
from neurotwin_db.modelling.nmm._features import read_eeg
from neurotwin_db.modelling.nmm._figure import write_spectra_figure
from neurotwin_db.modelling.nmm._fit import (
    BACKGROUND,
    BACKGROUND_MAX,
    DEFAULT_FEATURES,
    DEFAULT_PARAMETERS,
    FitResult,
    FitSettings,
    check_fittable,
    fit,
    make_target,
)
from neurotwin_db.modelling.nmm._models import model_class, parameters

PIPELINE = "ntdb-nmm"
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")
REFERENCES = {
    "jansen-rit": "Jansen & Rit 1995, Biol Cybern 73:357-366",
    "lanmm": "Sanchez-Todo et al. 2023, NeuroImage 270:119938",
}


def find_eeg(dataset: Path, subject: str, task: str, session: str | None = None) -> Path:
    """The subject's EEG recording for ``task`` (the first run if there are several)."""
    folder = Path(dataset) / f"sub-{check_label('sub', subject)}"
    if session:
        folder = folder / f"ses-{check_label('ses', session)}"
    pattern = re.compile(rf"_task-{re.escape(task)}_(.*_)?eeg({'|'.join(EEG_EXTENSIONS)})$")
    found = sorted(p for p in (folder / "eeg").glob("*_eeg.*") if pattern.search(p.name))
    if not found:
        present = sorted(p.name for p in (folder / "eeg").glob("*_eeg.*"))
        raise InputError(f"no EEG for task {task!r} in {folder / 'eeg'} (found: "
                         f"{', '.join(present) or 'nothing'}); ingest it with `ntdb ingest eeg` "
                         f"or choose another --task")
    return found[0]


def nmm_paths(dataset: Path, subject: str, task: str, model: str,
              session: str | None = None) -> dict[str, Path]:
    """Where one subject's fit is written."""
    desc = re.sub(r"[^A-Za-z0-9]", "", model)
    base = BIDSPath.create(sub=check_label("sub", subject),
                           ses=check_label("ses", session) if session else None,
                           task=check_label("task", task), desc=desc, datatype="eeg",
                           suffix="params", extension=".json")
    root = Path(dataset) / "derivatives" / PIPELINE
    fit_base = base.with_(suffix="fit")
    return {"params": root / base.relpath,
            "table": root / fit_base.with_(extension=".tsv").relpath,
            "table_sidecar": root / fit_base.with_(extension=".json").relpath,
            "figure": root / fit_base.with_(extension=".png").relpath}


def fit_subject(dataset: Path, subject: str, *, task: str = "rest", model: str = "jansen-rit",
                features: Sequence[str] | None = None, fit_parameters: Sequence[str] | None = None,
                optimizer: str = "cmaes", seeds: Sequence[int] = (0, 1, 2),
                max_evaluations: int = 120, duration_s: float = 20.0,
                background: bool = True, session: str | None = None,
                overwrite: bool = False, write: bool = True, record: bool = True,
                progress: Callable[[int, int], None] | None = None) -> dict[str, object]:
    """Fit a model to one subject's EEG features and write the ``ntdb-nmm`` derivative."""
    dataset = Path(dataset)
    cls = model_class(model)
    check_fittable(cls, fit_parameters or ())
    paths = nmm_paths(dataset, subject, task, cls.name, session)
    if write and paths["params"].exists() and not overwrite:
        raise OutputExistsError(paths["params"])
    eeg = find_eeg(dataset, subject, task, session)
    data, sfreq, channels = read_eeg(eeg)
    names = tuple(features or DEFAULT_FEATURES[cls.name])
    target = make_target(data, sfreq, names, source=str(eeg.relative_to(dataset)))
    settings = FitSettings(tuple(fit_parameters or DEFAULT_PARAMETERS[cls.name]), optimizer,
                           tuple(seeds), max_evaluations, duration_s, background=background)
    result = fit(cls(), target, settings, progress=progress)
    document = fit_document(result, settings, eeg.relative_to(dataset), len(channels))
    if not result.converged:
        raise FitError(f"the {cls.name} fit of sub-{subject} did not converge: loss "
                       f"{result.loss:.3g} for {len(names)} features (> {settings.tolerance:g} "
                       f"per feature), best {document['Fitted']}; nothing was written. Try "
                       f"more --evaluations or --seeds, fewer --parameters or --features")
    if write:
        _write(dataset, subject, paths, result, document, record)
        document["Files"] = {k: str(v.relative_to(dataset)) for k, v in paths.items()}
    return document


def fit_document(result: FitResult, settings: FitSettings, eeg: Path,
                 n_channels: int) -> dict[str, object]:
    """The ``_params.json`` content of a fit."""
    scales = result.target.scales(settings.duration_s)
    return {
        "Model": result.model.name,
        "ModelReference": REFERENCES[result.model.name],
        "Parameters": parameters(result.model),
        "Fitted": {n: {"Value": round(result.values[n], 6),
                       "SD": round(result.uncertainty[n], 6),
                       "SDFromRestarts": result.uncertainty_parts[n]["restarts"],
                       "SDFromCurvature": result.uncertainty_parts[n]["curvature"],
                       "SDFromRegion": result.uncertainty_parts[n]["region"],
                       "Bounds": list(result.model.bounds.get(n, (0.0, BACKGROUND_MAX)))}
                   for n in result.names},
        "Background": {"Share": result.values.get(BACKGROUND, 0.0),
                       "Exponent": result.target.aperiodic_exponent,
                       "Description": "Share of the EEG power given to a 1/f^Exponent "
                                      "background that the model does not generate"},
        "Features": {n: {"Target": result.target.features[n], "Fitted": result.fitted[n],
                         "StandardError": float(s)}
                     for n, s in zip(result.features, scales, strict=True)},
        "Loss": result.loss, "LossPerFeature": result.loss / len(result.features),
        "Converged": result.converged, "Tolerance": settings.tolerance,
        "Optimizer": {"Name": settings.optimizer, "Seeds": list(settings.seeds),
                      "MaxEvaluationsPerSeed": settings.max_evaluations,
                      "Evaluations": result.evaluations,
                      "Restarts": [{"Seed": r.seed, "Loss": r.loss, "Best": r.best}
                                   for r in result.restarts]},
        "Simulation": {"DurationSeconds": settings.duration_s, "StepSeconds": settings.dt_s,
                       "NoiseSeed": settings.sim_seed, "Integrator": "stochastic Heun"},
        "EEG": {"File": str(eeg), "Channels": n_channels,
                "Segments": result.target.segments,
                "SegmentSeconds": result.target.segment_s},
    }


def open_nmm(dataset: Path) -> list[SourceDataset]:
    """Create (or reuse) the ``ntdb-nmm`` derivative; returns its sources."""
    sources = [SourceDataset.of(dataset)]
    open_derivative(dataset, PIPELINE, name="neurotwin-db neural-mass model fits",
                    sources=sources,
                    description="Neural-mass model parameters fitted to EEG spectral features")
    return sources


def _write(dataset: Path, subject: str, paths: dict[str, Path], result: FitResult,
           document: dict[str, object], record: bool) -> None:
    sources = open_nmm(dataset)
    features = document["Features"]
    rows = [[n, v["Target"], v["Fitted"], v["StandardError"],
             (v["Fitted"] - v["Target"]) / v["StandardError"]]
            for n, v in features.items()]  # type: ignore[union-attr]
    write_tsv(paths["table"], ["feature", "target", "fitted", "standard_error", "z"], rows,
              overwrite=True)
    write_json(paths["table_sidecar"], {
        "feature": {"Description": "Spectral feature (see neurotwin_db.modelling.nmm)"},
        "target": {"Description": "Value in the subject's EEG"},
        "fitted": {"Description": "Value in the fitted model's simulated EEG"},
        "standard_error": {"Description": "Standard error of fitted - target"},
        "z": {"Description": "(fitted - target) / standard_error"}}, overwrite=True)
    write_spectra_figure(paths["figure"], [("EEG", result.target.spectrum),
                                           (f"{result.model.name} fit", result.fitted_spectrum)],
                         title=f"sub-{subject}: {result.model.name} fit "
                               f"(loss {result.loss:.2f})", fmax=45.0)
    write_json(paths["params"], {**document, "Sources": [s.as_bids() for s in sources]},
               overwrite=True)
    if record:
        save_derivative(dataset, PIPELINE, f"{result.model.name} fit sub-{subject}")


def _one_subject(task: tuple[Path, str, dict[str, object]]) -> dict[str, object]:
    dataset, subject, options = task
    try:
        return {"Subject": subject, **fit_subject(dataset, subject, record=False,
                                                  **options)}  # type: ignore[arg-type]
    except FitError as exc:  # one subject's failed fit must not lose the others
        return {"Subject": subject, "Converged": False, "Error": str(exc)}


def fit_cohort(dataset: Path, subjects: Sequence[str], *, jobs: int | None = None,
               scheduler: str | None = None, **options: object) -> list[dict[str, object]]:
    """Fit many subjects through :mod:`neurotwin_db.parallel`, then one DataLad save."""
    from neurotwin_db.parallel import map_tasks

    dataset = Path(dataset)
    for subject in subjects:  # missing EEG fails before any worker starts
        find_eeg(dataset, subject, str(options.get("task", "rest")),
                 options.get("session"))  # type: ignore[arg-type]
    open_nmm(dataset)
    results = map_tasks(_one_subject, [(dataset, s, dict(options)) for s in subjects],
                        jobs=jobs, scheduler=scheduler)
    save_derivative(dataset, PIPELINE, f"model fits for {', '.join('sub-' + s for s in subjects)}")
    return results
