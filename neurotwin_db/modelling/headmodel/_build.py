"""``ntdb model headmodel``: build a head mesh from one source and write it as a derivative.

Outputs in ``<dataset>/derivatives/ntdb-headmodel/sub-X[/ses-Y]/anat/``:
``…_desc-head_mesh.msh`` (gmsh 2.2), ``…_desc-head_mesh.json`` (conductivities,
counts, quality, provenance), ``…_desc-head_dseg.nii.gz`` (tissue labels, 1 mm) with
its ``…_desc-head_dseg.tsv`` look-up table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurotwin_db._io import write_json, write_nifti, write_text
from neurotwin_db.bidspath import BIDSPath, check_label
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.derivatives import SourceDataset, open_derivative, save_derivative
from neurotwin_db.modelling.headmodel._mesh import HeadMesh, quality, write_msh
from neurotwin_db.modelling.headmodel._raster import VoxelGrid
from neurotwin_db.modelling.headmodel._tissues import TISSUE_NAMES, conductivities

PIPELINE = "ntdb-headmodel"
SOURCES = ("template", "labels", "simnibs", "sphere")


@dataclass(frozen=True)
class HeadModel:
    """A built head: the mesh, conductivity per tag (S/m) and what made it."""

    mesh: HeadMesh
    conductivity: dict[int, float]
    method: dict[str, object]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def build_head(source: str, *, radii_mm: Sequence[float] = (),
               sphere_conductivities: Sequence[float] = (),
               labels: Path | None = None, mapping: Path | None = None,
               msh: Path | None = None, max_volume_mm3: float | None = None,
               element_size_mm: float | None = None,
               conductivity: Mapping[str | int, float] | None = None) -> HeadModel:
    """Build a head mesh from ``source`` (template, labels, simnibs or sphere)."""
    start = time.perf_counter()
    sigma = conductivities(conductivity)
    if source == "sphere":
        from neurotwin_db.modelling.headmodel._sphere import SPHERE_TAGS, sphere_head

        if not radii_mm or len(radii_mm) != len(sphere_conductivities):
            raise InputError("a sphere head needs --radii and --conductivities with one "
                             "value per shell, innermost first, e.g. --radii 85,90,95 "
                             "--conductivities 0.33,0.0066,0.33")
        mesh = sphere_head(radii_mm, element_size_mm=element_size_mm)
        tags = SPHERE_TAGS[len(radii_mm)]
        sigma = {**sigma, **{t: float(s) for t, s in zip(tags, sphere_conductivities,
                                                         strict=True)}}
        method = {"Source": "sphere", "RadiiMm": [float(r) for r in radii_mm],
                  "ShellTags": list(tags)}
    elif source == "template":
        from neurotwin_db.modelling.headmodel._template import TEMPLATE_SPACE, template_head

        mesh = template_head(max_volume_mm3=max_volume_mm3)
        method = {"Source": "template", "Template": "fsaverage (FreeSurfer; MNE BEM "
                  "surfaces, nilearn fsaverage5 pial/white)", "Space": TEMPLATE_SPACE}
    elif source == "labels":
        from neurotwin_db.modelling.headmodel._labels import labels_head

        if labels is None:
            raise InputError("--from labels needs --labels LABELS.nii.gz (and --mapping FILE "
                             "unless the labels are SimNIBS tags)")
        mesh = labels_head(labels, mapping if mapping is not None else "simnibs")
        method = {"Source": "labels", "LabelImage": Path(labels).name,
                  "Mapping": Path(mapping).name if mapping else "simnibs"}
    elif source == "simnibs":
        from neurotwin_db.modelling.headmodel._simnibs import simnibs_head

        if msh is None:
            raise InputError("--from simnibs needs --msh PATH/TO/m2m_SUBJECT/SUBJECT.msh")
        mesh = simnibs_head(msh)
        method = {"Source": "simnibs", "Mesh": Path(msh).name}
    else:
        raise InputError(f"unknown head model source {source!r}; use one of {SOURCES}")
    used = {t: sigma[t] for t in mesh.tissues() if t in sigma}
    return HeadModel(mesh, used, method, time.perf_counter() - start)


def headmodel_paths(dataset: Path, subject: str, session: str | None = None
                    ) -> dict[str, Path]:
    """Where the head model of a subject lives: mesh, sidecar, labels, look-up table."""
    root = Path(dataset) / "derivatives" / PIPELINE
    base = BIDSPath.create(sub=check_label("sub", subject),
                           ses=check_label("ses", session) if session else None,
                           desc="head", datatype="anat", suffix="mesh", extension=".msh")
    labels = base.with_(suffix="dseg", extension=".nii.gz")
    return {"mesh": root / base.relpath,
            "sidecar": root / base.with_(extension=".json").relpath,
            "labels": root / labels.relpath,
            "lut": root / labels.with_(extension=".tsv").relpath}


def mesh_sidecar(model: HeadModel, sources: Sequence[SourceDataset]) -> dict[str, object]:
    """The head mesh's JSON sidecar (pure)."""
    mesh = model.mesh
    counts = {TISSUE_NAMES.get(t, str(t)): int((mesh.tags == t).sum()) for t in mesh.tissues()}
    return {
        "Description": "Tetrahedral head mesh with SimNIBS tissue tags (gmsh 2.2).",
        "Method": model.method,
        "SpatialUnits": "mm",
        "Conductivities": {TISSUE_NAMES.get(t, str(t)): s
                           for t, s in sorted(model.conductivity.items())},
        "ConductivityUnits": "S/m",
        "TissueTags": {str(t): TISSUE_NAMES.get(t, str(t)) for t in mesh.tissues()},
        "NodeCount": mesh.n_nodes,
        "TetrahedronCount": mesh.n_tets,
        "TriangleCount": len(mesh.triangles),
        "TetrahedraPerTissue": counts,
        "Quality": quality(mesh),
        "Sources": [s.as_bids() for s in sources],
        "BuildSeconds": round(model.seconds, 2),
    }


def open_headmodels(dataset: Path) -> list[SourceDataset]:
    """Create (or reuse) the ``ntdb-headmodel`` derivative; returns its sources."""
    sources = [SourceDataset.of(dataset)]
    open_derivative(dataset, PIPELINE, name="neurotwin-db head models", sources=sources,
                    description="Tetrahedral head meshes with SimNIBS tissue tags")
    return sources


def write_headmodel(dataset: Path, subject: str, model: HeadModel, *,
                    session: str | None = None, overwrite: bool = False,
                    record: bool = True) -> dict[str, Path]:
    """Write the head model derivative and (unless ``record`` is false) save it with DataLad."""
    import nibabel as nib

    dataset = Path(dataset)
    paths = headmodel_paths(dataset, subject, session)
    if paths["mesh"].exists() and not overwrite:
        raise OutputExistsError(paths["mesh"])
    sources = open_headmodels(dataset)
    write_msh(model.mesh, paths["mesh"])
    write_json(paths["sidecar"], mesh_sidecar(model, sources), overwrite=True)
    grid = VoxelGrid.around(model.mesh)
    labels = grid.values(model.mesh.tags.astype(np.uint8), outside=0)
    write_nifti(paths["labels"], nib.Nifti1Image(labels, grid.affine), overwrite=True)
    lut = "index\tname\n" + "".join(f"{t}\t{TISSUE_NAMES.get(t, t)}\n"
                                    for t in model.mesh.tissues())
    write_text(paths["lut"], lut, overwrite=True)
    if record:
        save_derivative(dataset, PIPELINE, f"head model sub-{subject} "
                                           f"({model.method['Source']})")
    return paths


def _one_subject(task: tuple[Path, str, str | None, str, dict[str, object], bool]
                 ) -> dict[str, str]:
    """Build and write one subject's head model (a worker of :func:`build_cohort`)."""
    dataset, subject, session, source, options, overwrite = task
    model = build_head(source, **options)  # type: ignore[arg-type]
    paths = write_headmodel(dataset, subject, model, session=session, overwrite=overwrite,
                            record=False)
    return {"subject": subject, "mesh": str(paths["mesh"]), "tets": str(model.mesh.n_tets),
            "seconds": f"{model.seconds:.1f}"}


def build_cohort(dataset: Path, subjects: Sequence[str], source: str, *,
                 session: str | None = None, overwrite: bool = False, jobs: int | None = None,
                 scheduler: str | None = None, **options: object) -> list[dict[str, str]]:
    """Head models for many subjects through :mod:`neurotwin_db.parallel`, one DataLad save.

    Workers (local processes, or a Dask cluster with ``scheduler``) build and write each
    subject's files; the derivative is created before and recorded once after.
    """
    from neurotwin_db.parallel import map_tasks

    dataset = Path(dataset)
    for subject in subjects:
        mesh = headmodel_paths(dataset, subject, session)["mesh"]
        if mesh.exists() and not overwrite:
            raise OutputExistsError(mesh)
    open_headmodels(dataset)
    tasks = [(dataset, s, session, source, dict(options), overwrite) for s in subjects]
    results = map_tasks(_one_subject, tasks, jobs=jobs, scheduler=scheduler)
    save_derivative(dataset, PIPELINE, f"head models ({source}) for "
                                       f"{', '.join('sub-' + s for s in subjects)}")
    return results
