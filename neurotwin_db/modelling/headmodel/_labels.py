"""Head meshes from any tissue label volume: every labelled voxel becomes six tetrahedra.

Each non-background voxel is split along its main diagonal into the six tetrahedra of
the Kuhn (Freudenthal) subdivision, the same way in every voxel, so neighbouring
voxels share faces and the mesh conforms. Tissue volumes are exact (voxel count ×
voxel volume); interfaces keep the voxel staircase (no smoothing), which is fine for
fields inside tissues but overestimates surface areas and field peaks at tissue
corners. Label→tissue mappings are dicts or YAML/JSON/TSV files
(:func:`read_label_mapping`).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel._memory import check_fits
from neurotwin_db.modelling.headmodel._mesh import HeadMesh, MeshError, with_boundaries
from neurotwin_db.modelling.headmodel._tissues import TISSUE_NAMES, tissue_tag

logger = logging.getLogger(__name__)

#: SimNIBS charm ``final_tissues.nii.gz``: labels 1–10 already are the SimNIBS tags.
CHARM_LABELS: Mapping[int, int] = MappingProxyType({tag: tag for tag in TISSUE_NAMES})
#: The tissue name that leaves a label out of the mesh.
BACKGROUND = "background"
LabelMapping = Mapping[int, "str | int | None"]

# Kuhn subdivision: one tetrahedron per axis order (a, b, c), walking 0 → e_a → e_a+e_b → 1.
_KUHN = [(np.zeros(3, int), np.eye(3, dtype=int)[a], np.eye(3, dtype=int)[[a, b]].sum(0),
          np.ones(3, int)) for a, b, _ in itertools.permutations(range(3))]


def labels_head(label_image: Any, mapping: LabelMapping | str | Path | None = None, *,
                voxel_size_mm: float | None = None) -> HeadMesh:
    """A tetrahedral head mesh of a 3-D tissue label image (NIfTI path or nibabel image).

    ``mapping`` maps label values to SimNIBS tissues (name or tag, or ``"background"``
    to leave a label out), as a dict or a YAML/JSON/TSV file; label 0 is background
    unless mapped. The default is :data:`CHARM_LABELS` (SimNIBS charm's
    ``final_tissues.nii.gz``, whose labels are the tags 1–10). ``voxel_size_mm``
    first resamples the labels (nearest neighbour, same orientation and field of view)
    to that isotropic size, to bound the mesh size: tets = 6 × labelled voxels, logged
    and checked against available memory before meshing.

    Nodes are voxel corners in world mm through the image affine; tetrahedra are
    right-handed also for left-handed (negative determinant) affines; unused corners
    are dropped. Returns the mesh with its boundary triangles (tag 1000 + inner tag).
    """
    image, name = _load(label_image)
    labels = _integer_labels(image, name)
    affine = np.asarray(image.affine, dtype=np.float64)
    if voxel_size_mm is not None:
        labels, affine = _resampled(labels, affine, voxel_size_mm)
    if mapping is None:
        table = _normalised(CHARM_LABELS, "the SimNIBS charm mapping")
    elif isinstance(mapping, (str, Path)):
        table = read_label_mapping(mapping)
    else:
        table = _normalised(mapping, "the label mapping")
    tags = _tags_by_label(labels, table, name)
    n_voxels = int(np.count_nonzero(tags))
    if not n_voxels:
        raise MeshError(f"{name} has no voxels of a mapped tissue (all its labels are "
                        f"background); check the label mapping")
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    logger.info("meshing %s: %d labelled voxels of %s mm -> %d tetrahedra", name, n_voxels,
                np.round(zooms, 3).tolist(), 6 * n_voxels)
    check_fits(6 * n_voxels, f"{name} at {zooms.max():.3g} mm voxels")
    return with_boundaries(_voxel_mesh(tags, affine))


def read_label_mapping(path: str | Path) -> dict[int, int | None]:
    """A label → SimNIBS tag mapping (None = background) from a YAML, JSON or TSV file.

    YAML and JSON hold one object ``{label: tissue}``; TSV has two columns, label and
    tissue, with an optional header row and ``#`` comments. A tissue is a SimNIBS
    name (``GM``, ``bone``…) or tag (1–10), or ``background`` to leave the label out.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json", ".tsv"):
        raise InputError(f"label mapping {path} must be .yaml, .yml, .json or .tsv")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read label mapping {path}: {exc.strerror}") from None
    try:
        if suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        elif suffix == ".json":
            raw = json.loads(text)
        else:
            rows = [line.split("\t") for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
            if rows and not rows[0][0].strip().lstrip("-").isdigit():
                rows = rows[1:]  # header
            if any(len(row) < 2 for row in rows):
                raise ValueError("every row needs a label and a tissue separated by a tab")
            raw = {row[0].strip(): row[1].strip() for row in rows}
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"cannot parse label mapping {path}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise InputError(f"label mapping {path} must map label values to tissues, e.g. "
                         f"'3: GM' (YAML) or '{{\"3\": \"GM\"}}' (JSON)")
    return _normalised(raw, f"label mapping {path}")


def _normalised(mapping: Mapping[Any, Any], source: str) -> dict[int, int | None]:
    """Integer labels → SimNIBS tags, None for background; an InputError names bad entries."""
    table: dict[int, int | None] = {}
    for label, tissue in mapping.items():
        try:
            value = int(str(label).strip())
        except ValueError:
            raise InputError(f"{source}: label {label!r} is not an integer label "
                             f"value") from None
        if tissue is None or str(tissue).strip().lower() in (BACKGROUND, "0"):
            table[value] = None
            continue
        try:
            table[value] = tissue_tag(str(tissue).strip())
        except InputError as exc:
            raise InputError(f"{source}: label {value}: {exc} (or 'background')") from None
    return table


def _tags_by_label(labels: np.ndarray, table: Mapping[int, int | None], name: str
                   ) -> np.ndarray:
    """The volume of SimNIBS tags (0 = background); unmapped labels are a MeshError."""
    table = dict(table)
    table.setdefault(0, None)
    low, high = int(labels.min()), int(labels.max())
    if high - low < 2 ** 24:  # dense label range: bincount, far faster than np.unique
        index = labels - low
        counts = np.bincount(index.ravel(), minlength=high - low + 1)
        values = np.flatnonzero(counts) + low
        counts = counts[values - low]
    else:
        values, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
        index = index.reshape(labels.shape)
    unknown = [(int(v), int(n)) for v, n in zip(values, counts, strict=True)
               if int(v) not in table]
    if unknown:
        listed = ", ".join(f"{v} ({n} voxels)" for v, n in unknown[:20])
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise MeshError(f"{name} has labels not in the mapping: {listed}{more}; map each "
                        f"to a SimNIBS tissue (e.g. '{unknown[0][0]}: GM') or to "
                        f"'background' to leave it out")
    if high - low < 2 ** 24:
        lookup = np.zeros(high - low + 1, dtype=np.int32)
        lookup[values - low] = [table[int(v)] or 0 for v in values]
    else:
        lookup = np.array([table[int(v)] or 0 for v in values], dtype=np.int32)
    return lookup[index]


def _load(label_image: Any) -> tuple[Any, str]:
    """A nibabel image from an image or a path, and a name for it in messages."""
    if hasattr(label_image, "affine") and hasattr(label_image, "dataobj"):
        filename = label_image.get_filename() if hasattr(label_image, "get_filename") else None
        return label_image, f"label image {filename}" if filename else "the label image"
    import nibabel as nib

    try:
        return nib.load(str(label_image)), f"label image {label_image}"
    except (OSError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(f"cannot read label image {label_image}: {exc}; give a NIfTI "
                         f"label volume (.nii or .nii.gz)") from None


def _integer_labels(image: Any, name: str) -> np.ndarray:
    """The image data as a 3-D int64 array, or an InputError if it is not a label map."""
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{name} must be a 3-D label volume, got shape "
                         f"{data.shape}; pick one volume of a 4-D series")
    if data.dtype.kind in "biu":
        return data.astype(np.int64, copy=False)
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data) | (data != np.round(data))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"{name} is not a label volume: {int(bad.sum())} voxels are not "
                f"whole numbers (e.g. {float(data[where])!r} at voxel {where}); give an "
                f"integer segmentation, not an intensity image or probability map")
        return data.astype(np.int64)
    raise InputError(f"{name} must hold integer labels, got {data.dtype}")


def _resampled(labels: np.ndarray, affine: np.ndarray, voxel_size_mm: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour labels on a grid of ``voxel_size_mm`` voxels, same axes and FOV."""
    size = float(voxel_size_mm)
    if not (np.isfinite(size) and size > 0):
        raise InputError(f"voxel_size_mm must be a positive size in mm, got {voxel_size_mm!r}")
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    step = size / zooms  # new voxel size in old voxels, per axis
    shape = np.maximum(np.round(np.array(labels.shape) / step), 1).astype(int)
    # A new voxel n has its centre at old voxel coordinate (n + 0.5)·step − 0.5.
    index = [np.minimum(np.floor((np.arange(n) + 0.5) * s).astype(int), old - 1)
             for n, s, old in zip(shape, step, labels.shape, strict=True)]
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * step
    new_affine[:3, 3] = affine[:3, :3] @ ((step - 1) / 2) + affine[:3, 3]
    return labels[np.ix_(*index)], new_affine


def _voxel_mesh(tags: np.ndarray, affine: np.ndarray) -> HeadMesh:
    """Six right-handed Kuhn tetrahedra per tagged voxel, nodes at voxel corners (mm)."""
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError("the label image affine is singular (zero voxel size); fix the "
                         "NIfTI header (sform/qform)")
    voxels = np.argwhere(tags)
    low = voxels.min(axis=0)
    voxels -= low
    grid = voxels.max(axis=0) + 2  # corner nodes per axis of the cropped block
    strides = np.array([grid[1] * grid[2], grid[2], 1], dtype=np.int64)
    base = voxels @ strides
    templates = []
    for corners in _KUHN:
        order = [0, 1, 2, 3]
        if np.linalg.det(np.array(corners[1:])) < 0:  # left-handed in index space
            order = [0, 1, 3, 2]
        templates.append(np.array(corners)[order] @ strides)
    offsets = np.array(templates)
    if np.linalg.det(affine[:3, :3]) < 0:  # a mirroring affine flips every tetrahedron
        offsets = offsets[:, [0, 1, 3, 2]]
    tets = (base[:, None, None] + offsets[None]).reshape(-1, 4)
    element_tags = np.repeat(tags[tuple(voxels.T + low[:, None])], len(_KUHN))
    used = np.zeros(int(np.prod(grid)), dtype=bool)
    used[tets.ravel()] = True
    new_id = np.cumsum(used) - 1
    corner = np.stack(np.unravel_index(np.flatnonzero(used), tuple(grid)), axis=1)
    index_coords = corner + low - 0.5  # corners sit half a voxel before voxel centres
    nodes = index_coords @ affine[:3, :3].T + affine[:3, 3]
    return HeadMesh(nodes, new_id[tets], element_tags)
