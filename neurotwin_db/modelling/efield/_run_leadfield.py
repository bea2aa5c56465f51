"""``ntdb model leadfield`` and ``ntdb model optimize``: a cap's lead field, then the best montage.

Both write into the ``ntdb-efield`` derivative of the subject:
``…_desc-<cap>Ref<reference>_leadfield.h5`` (+ ``.json``: solver statistics and timings),
and ``…_desc-<label>_montage.json`` with the optimal currents and their predicted field
(``…_desc-<label>_magnE.nii.gz``, grey matter only, from the lead field).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurotwin_db._io import write_json, write_nifti
from neurotwin_db.bidspath import BIDSPath, check_label
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.derivatives import SourceDataset, open_derivative, save_derivative
from neurotwin_db.modelling.efield._electrodes import Shape
from neurotwin_db.modelling.efield._leadfield import LeadField, compute_leadfield
from neurotwin_db.modelling.efield._optimize import optimize_montage
from neurotwin_db.modelling.efield._run import PIPELINE, HeadInput
from neurotwin_db.modelling.headmodel._build import headmodel_paths
from neurotwin_db.modelling.headmodel._raster import VoxelGrid


def _base(dataset: Path, subject: str, session: str | None, desc: str) -> BIDSPath:
    return BIDSPath.create(sub=check_label("sub", subject),
                           ses=check_label("ses", session) if session else None,
                           desc=check_label("desc", desc), datatype="anat", suffix="leadfield",
                           extension=".h5")


def leadfield_path(dataset: Path, subject: str, cap: str, reference: str,
                   session: str | None = None) -> Path:
    """Where the lead field of ``cap`` against ``reference`` is stored."""
    desc = cap.replace("standard_", "standard") + "Ref" + "".join(
        ch for ch in reference if ch.isalnum())
    return Path(dataset) / "derivatives" / PIPELINE / _base(dataset, subject, session,
                                                            desc).relpath


def _open(dataset: Path) -> None:
    open_derivative(dataset, PIPELINE, name="neurotwin-db tES electric fields",
                    sources=[SourceDataset.of(dataset)],
                    description="Quasi-static tACS/tDCS fields (P1 FEM)")


def run_leadfield(dataset: Path, subject: str, *, cap: str = "standard_1010",
                  reference: str = "Cz", electrode: str = "point", session: str | None = None,
                  head: Path | None = None, overwrite: bool = False) -> dict[str, object]:
    """Compute and store the lead field of a cap on the subject's head model."""
    dataset = Path(dataset)
    path = leadfield_path(dataset, subject, cap, reference, session)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    head_input = HeadInput.read(head or headmodel_paths(dataset, subject, session)["mesh"])
    lead = compute_leadfield(head_input.mesh, head_input.conductivity, cap, reference,
                             template=head_input.space == "MNI305",
                             shape=Shape.parse(electrode))
    _open(dataset)
    lead.save(path, overwrite=True)
    summary = {
        "Description": f"Lead field of {cap} against {reference} (1 mA per electrode, "
                       f"Neumann injection; one AMG hierarchy for every electrode)",
        "HeadModel": str(head_input.path.name), "Cap": cap, "Reference": reference,
        "Electrodes": len(lead.electrodes), "StoredElements": int(len(lead.elements)),
        "Units": "V/m per mA",
        "Iterations": [s.iterations for s in lead.stats],
        "MaxRelativeResidual": max(s.relative_residual for s in lead.stats),
        "Timings": {k: round(v, 3) for k, v in lead.timings.items()},
    }
    write_json(path.with_suffix(".json"), summary, overwrite=True)
    save_derivative(dataset, PIPELINE, f"lead field sub-{subject} {cap} ref {reference}")
    return {**summary, "File": str(path.relative_to(dataset))}


def run_optimize(dataset: Path, subject: str, target: tuple[np.ndarray, float], *,
                 direction: str = "normal", max_total_ma: float = 2.0,
                 max_per_electrode_ma: float = 1.0, max_electrodes: int | None = None,
                 leadfield: Path | None = None, cap: str = "standard_1010",
                 reference: str = "Cz", session: str | None = None, desc: str = "optimized",
                 overwrite: bool = False) -> dict[str, object]:
    """Optimise a montage for a target from a stored lead field and write it."""
    import nibabel as nib

    dataset = Path(dataset)
    source = leadfield or leadfield_path(dataset, subject, cap, reference, session)
    if not Path(source).is_file():
        raise InputError(f"no lead field at {source}; compute it first with `ntdb model "
                         f"leadfield {dataset} --subject {subject} --cap {cap}`")
    base = _base(dataset, subject, session, desc)
    root = dataset / "derivatives" / PIPELINE
    out = root / base.with_(suffix="montage", extension=".json").relpath
    if out.exists() and not overwrite:
        raise OutputExistsError(out)
    lead = LeadField.load(Path(source))
    centre, radius = target
    result = optimize_montage(lead, centre, radius_mm=radius,
                              direction=_direction(direction), max_total_ma=max_total_ma,
                              max_per_electrode_ma=max_per_electrode_ma,
                              max_electrodes=max_electrodes)
    document = {"Description": "Montage optimised on a lead field; its field is predicted by "
                               "superposition (solve it with `ntdb model efield`)",
                "LeadField": str(Path(source).name), **result.as_json(),
                "MontageString": result.montage()}
    head = HeadInput.read(headmodel_paths(dataset, subject, session)["mesh"])
    magnitude = np.zeros(head.mesh.n_tets, dtype=np.float32)
    magnitude[lead.elements] = np.linalg.norm(result.field, axis=1)
    grid = VoxelGrid.around(head.mesh)
    maps = base.with_(space=head.space) if head.space else base
    magn_path = root / maps.with_(suffix="magnE", extension=".nii.gz").relpath
    _open(dataset)
    write_nifti(magn_path, nib.Nifti1Image(grid.values(magnitude), grid.affine), overwrite=True)
    write_json(out, document, overwrite=True)
    save_derivative(dataset, PIPELINE, f"optimised montage sub-{subject}: {result.montage()}")
    return {**document, "Files": [str(out.relative_to(dataset)),
                                  str(magn_path.relative_to(dataset))]}


def _direction(text: str) -> str | np.ndarray | None:
    if text in ("normal", "any"):
        return None if text == "any" else "normal"
    try:
        vector = np.array([float(v) for v in text.split(",")])
    except ValueError:
        vector = np.zeros(0)
    if vector.shape != (3,) or not np.linalg.norm(vector) > 0:
        raise InputError(f"--direction must be 'normal', 'any' or a vector 'x,y,z' in mesh "
                         f"axes, got {text!r}")
    return vector / np.linalg.norm(vector)
