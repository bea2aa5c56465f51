"""``ntdb model efield``: the field of a tACS montage on a subject's head model.

tACS is quasi-static at 40 Hz (Saturnino et al. 2015; the capacitive and inductive
terms are negligible below a few kHz), so one solve gives the field at peak current;
the waveform, frequency and ramps are kept as metadata.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurotwin_db import datalad as dl
from neurotwin_db._io import write_json, write_nifti
from neurotwin_db.bidspath import BIDSPath, check_label
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.derivatives import SourceDataset, open_derivative, save_derivative
from neurotwin_db.modelling.efield._electrodes import Shape, parse_montage, place_montage
from neurotwin_db.modelling.efield._figure import write_field_figure
from neurotwin_db.modelling.efield._montage import FieldSolution, solve_montage
from neurotwin_db.modelling.efield._summary import field_summary
from neurotwin_db.modelling.headmodel import HeadMesh, read_msh, write_msh
from neurotwin_db.modelling.headmodel._build import PIPELINE as HEAD_PIPELINE
from neurotwin_db.modelling.headmodel._build import headmodel_paths
from neurotwin_db.modelling.headmodel._raster import VoxelGrid
from neurotwin_db.modelling.headmodel._tissues import tissue_tag

PIPELINE = "ntdb-efield"


@dataclass(frozen=True)
class Stimulation:
    """tACS waveform metadata: the field is solved at peak current."""

    frequency_hz: float = 40.0
    waveform: str = "sine"
    ramp_up_s: float = 30.0
    ramp_down_s: float = 30.0
    duration_s: float = 1200.0

    def as_json(self) -> dict[str, object]:
        """The stimulation block of the summary."""
        return {"Frequency": self.frequency_hz, "Waveform": self.waveform,
                "RampUpDuration": self.ramp_up_s, "RampDownDuration": self.ramp_down_s,
                "StimulationDuration": self.duration_s, "QuasiStatic": True,
                "FieldAt": "peak current (the field follows the current waveform)"}


@dataclass(frozen=True)
class HeadInput:
    """A head mesh read from a head model derivative, its conductivities and its space."""

    mesh: HeadMesh
    conductivity: dict[int, float]
    path: Path
    space: str | None

    @classmethod
    def read(cls, mesh_path: Path) -> HeadInput:
        """Read a ``…_mesh.msh`` and its JSON sidecar (conductivities by tissue name)."""
        if not Path(mesh_path).is_file():
            raise InputError(f"no head model at {mesh_path}; build one first with `ntdb model "
                             f"headmodel DATASET --subject LABEL --from template`")
        mesh, _, _ = read_msh(mesh_path)
        sidecar = Path(str(mesh_path).removesuffix(".msh") + ".json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            sigma = {tissue_tag(k): float(v) for k, v in meta["Conductivities"].items()}
        except (OSError, json.JSONDecodeError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read the conductivities of {mesh_path} from {sidecar} "
                             f"({exc}); rebuild the head model with `ntdb model "
                             f"headmodel`") from None
        space = "MNI305" if meta.get("Method", {}).get("Space") == "fsaverage" else None
        return cls(mesh, sigma, Path(mesh_path), space)


def montage_label(pairs: list[tuple[str, float]]) -> str:
    """A BIDS ``desc`` label from the electrode names.

    >>> montage_label([("F3", 2.0), ("Fp2", -2.0)])
    'F3Fp2'
    """
    return "".join(re.sub(r"[^A-Za-z0-9]", "", name) for name, _ in pairs)[:60] or "montage"


def efield_paths(dataset: Path, subject: str, desc: str, session: str | None,
                 space: str | None) -> dict[str, Path]:
    """Where the outputs of one montage go in the ``ntdb-efield`` derivative."""
    root = Path(dataset) / "derivatives" / PIPELINE
    base = BIDSPath.create(sub=check_label("sub", subject),
                           ses=check_label("ses", session) if session else None,
                           desc=check_label("desc", desc), datatype="anat", suffix="efield",
                           extension=".msh")
    maps = base.with_(space=space) if space else base
    return {"mesh": root / base.relpath, "summary": root / base.with_(extension=".json").relpath,
            "figure": root / base.with_(extension=".png").relpath,
            "magnE": root / maps.with_(suffix="magnE", extension=".nii.gz").relpath,
            "En": root / maps.with_(suffix="En", extension=".nii.gz").relpath}


def run_efield(dataset: Path, subject: str, montage: str, *, session: str | None = None,
               electrode: str = "disc:10mm", head: Path | None = None,
               positions: Path | None = None, cap: str = "standard_1005",
               model: str = "dirichlet", roi: tuple[np.ndarray, float] | None = None,
               stimulation: Stimulation = Stimulation(), desc: str | None = None,
               overwrite: bool = False, write: bool = True, record: bool = True
               ) -> dict[str, object]:
    """Solve a montage on a subject's head model and write the field derivative.

    ``record=False`` writes the files without the DataLad save (a cohort saves once).
    """
    from neurotwin_db.modelling.efield._electrodes import read_positions

    dataset = Path(dataset)
    pairs = parse_montage(montage)
    shape = Shape.parse(electrode)
    head_path = head or headmodel_paths(dataset, subject, session)["mesh"]
    head_input = HeadInput.read(head_path)
    paths = efield_paths(dataset, subject, desc or montage_label(pairs), session,
                         head_input.space)
    if write and paths["mesh"].exists() and not overwrite:
        raise OutputExistsError(paths["mesh"])
    electrodes = place_montage(head_input.mesh, pairs, shape, cap=cap,
                               template=head_input.space == "MNI305",
                               positions=read_positions(positions) if positions else None)
    solution = solve_montage(head_input.mesh, head_input.conductivity, electrodes, model=model)
    summary, normal = field_summary(head_input.mesh, solution.field,
                                    solution.geometry.volumes, roi=roi)
    document = _document(head_input, electrodes, shape, solution, summary, stimulation,
                         dataset)
    if write:
        _write(dataset, subject, paths, head_input, solution, normal, document, record)
        document["Files"] = {k: str(v.relative_to(dataset)) for k, v in paths.items()}
    return document


def _document(head: HeadInput, electrodes: list, shape: Shape, solution: FieldSolution,
              summary: dict[str, object], stimulation: Stimulation, dataset: Path
              ) -> dict[str, object]:
    try:
        head_ref = str(head.path.resolve().relative_to(dataset.resolve()))
    except ValueError:
        head_ref = str(head.path)
    return {
        "Description": "tACS electric field (quasi-static P1 FEM) at peak current",
        "HeadModel": head_ref,
        "Montage": [{"Name": e.name, "CurrentMilliampere": e.current_ma,
                     "MeasuredCurrentMilliampere": round(solution.electrode_currents_ma[e.name],
                                                         6),
                     "CentreMm": np.round(e.centre_mm, 2).tolist(), "Nodes": int(len(e.nodes)),
                     **shape.describe()} for e in electrodes],
        "Stimulation": stimulation.as_json(),
        "Summary": summary,
        "Solver": solution.solver_json(),
    }


def open_efields(dataset: Path) -> list[SourceDataset]:
    """Create (or reuse) the ``ntdb-efield`` derivative; returns its sources."""
    sources = [SourceDataset.of(dataset)]
    head_root = dataset / "derivatives" / HEAD_PIPELINE
    if dl.is_dataset(head_root):
        sources.append(SourceDataset.of(head_root, url=f"bids::derivatives/{HEAD_PIPELINE}"))
    open_derivative(dataset, PIPELINE, name="neurotwin-db tES electric fields",
                    sources=sources, description="Quasi-static tACS/tDCS fields (P1 FEM)")
    return sources


def _write(dataset: Path, subject: str, paths: dict[str, Path], head: HeadInput,
           solution: FieldSolution, normal: np.ndarray, document: dict[str, object],
           record: bool) -> None:
    import nibabel as nib

    sources = open_efields(dataset)
    magnitude = solution.magnitude
    write_msh(head.mesh, paths["mesh"], node_data={"v": solution.potential},
              element_data={"E": solution.field, "magnE": magnitude})
    grid = VoxelGrid.around(head.mesh)
    for key, values in (("magnE", magnitude), ("En", normal)):
        image = nib.Nifti1Image(grid.values(values.astype(np.float32)), grid.affine)
        image.header.set_xyzt_units("mm")
        write_nifti(paths[key], image, overwrite=True)
    summary = document["Summary"]
    peak = summary.get("GM_magnE_99.9") if isinstance(summary, dict) else None
    montage = ", ".join(f"{m['Name']} {m['CurrentMilliampere']:+g} mA"
                        for m in document["Montage"])  # type: ignore[attr-defined]
    write_field_figure(paths["figure"], head.mesh, magnitude, title=f"sub-{subject}: {montage}",
                       peak=peak)
    write_json(paths["summary"], {**document, "Sources": [s.as_bids() for s in sources]},
               overwrite=True)
    if record:
        save_derivative(dataset, PIPELINE, f"efield sub-{subject} {montage}")


def _one_subject(task: tuple[Path, str, str, dict[str, object]]) -> dict[str, object]:
    """Solve one subject's montage (a worker of :func:`run_cohort`)."""
    dataset, subject, montage, options = task
    return {"Subject": subject, **run_efield(dataset, subject, montage, record=False,
                                             **options)}  # type: ignore[arg-type]


def run_cohort(dataset: Path, subjects: list[str], montage: str, *, jobs: int | None = None,
               scheduler: str | None = None, **options: object) -> list[dict[str, object]]:
    """One montage for many subjects through :mod:`neurotwin_db.parallel`, one DataLad save."""
    from neurotwin_db.parallel import map_tasks

    dataset = Path(dataset)
    parse_montage(montage)  # bad input fails before any worker starts
    for subject in subjects:
        head = options.get("head") or headmodel_paths(dataset, subject,
                                                      options.get("session"))["mesh"]
        if not Path(head).is_file():  # type: ignore[arg-type]
            raise InputError(f"no head model for sub-{subject} at {head}; build them first "
                             f"with `ntdb model headmodel`")
    open_efields(dataset)
    results = map_tasks(_one_subject, [(dataset, s, montage, dict(options)) for s in subjects],
                        jobs=jobs, scheduler=scheduler)
    save_derivative(dataset, PIPELINE, f"efield {montage} for "
                                       f"{', '.join('sub-' + s for s in subjects)}")
    return results
