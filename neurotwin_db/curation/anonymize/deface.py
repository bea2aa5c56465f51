"""Deface T1w/T2w/FLAIR images without registration, and check the result.

The cut follows Quickshear (Schimke & Hale 2011, "Quickshear defacing for neuroimages",
HealthSec'11): project a brain mask onto the sagittal plane, take the lower edge of its
convex hull, and remove everything below the plane along that edge. This implementation
is our own. The brain mask is estimated from the image itself, on a grid of about 2 mm:

1. head: Otsu threshold of the image, closed by 10 mm across the dark skull, filled;
2. tissue: head voxels above the lowest of three Otsu classes (skull, CSF and air);
3. brain: tissue eroded by 4 mm (which cuts it from scalp, eyes and neck), the component
   with most voxels in the upper half of the head, grown back inside the tissue, filled.

Geometry is in world millimetres from the affine, so any voxel axis order (RAS, LPS,
PIR, ...) gives the same cut. It is measured in the brain's own frame: the brain's long
axis rises about 10 degrees towards the front in MNI space, and a head pitched otherwise
is rotated back (up to 30 degrees). The plane is the hull's tangent at the *face line*,
the coronal plane a tenth of the brain's length behind its front, lowered by a 5 mm
safety margin plus half a voxel. Estimating and cutting are repeated on the cut image
until a cut changes nothing, so defacing a defaced image changes nothing.

The check does not use the plane. It recomputes the face as the head voxels in front of
the face line and more than 10 mm below the lowest brain voxel in front of it, requires
all of them to be empty, and every estimated brain voxel to be byte-identical to the
input. :func:`deface` raises :class:`~neurotwin_db.errors.InputError` when it fails.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError, OutputExistsError

logger = logging.getLogger(__name__)

WORK_MM = 2.0  # masks are estimated on a grid of voxels about this size
CLOSE_MM = 10.0
ERODE_MM = 4.0
MARGIN_MM = 5.0
FACE_LINE = 0.1  # fraction of the brain's front-to-back length behind its front
CHECK_BELOW_MM = 10.0
PITCH_REF_DEG = 10.0  # the MNI152 brain's long axis, degrees above the y axis
MAX_PITCH_DEG = 30.0
MIN_HEAD_ML = 100.0
MIN_BRAIN_ML = 100.0
MAX_ROUNDS = 5
TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name")


@dataclass(frozen=True)
class FaceCheck:
    """Independent check of a defaced image.

    Attributes
    ----------
    face_region_empty
        Every voxel of the recomputed face region is empty in the output: stored value 0
        (or, if the image is scaled with an intercept, the stored value nearest to 0).
    brain_unchanged
        Every estimated brain voxel is byte-identical to the input.
    removed_fraction
        Fraction of the input's head voxels that were removed.
    face_voxels
        Size of the recomputed face region (0 for a brain-only image).
    face_left
        Voxels of the face region that are not empty in the output.
    brain_voxels
        Size of the estimated brain.
    brain_changed
        Estimated brain voxels that differ from the input.
    """

    face_region_empty: bool
    brain_unchanged: bool
    removed_fraction: float
    face_voxels: int
    face_left: int
    brain_voxels: int
    brain_changed: int

    @property
    def ok(self) -> bool:
        """True if the face region is empty and the brain untouched."""
        return self.face_region_empty and self.brain_unchanged


@dataclass(frozen=True)
class DefaceResult:
    """A defaced image, the region removed from it, and the check.

    Attributes
    ----------
    image
        The defaced image: the input's shape, affine, header (text fields cleared,
        extensions dropped), on-disk data type and scaling; voxels outside ``removed`` are
        byte-identical to the input. Write it with :func:`deface_file`: ``nibabel.save``
        would recompute the scaling of a scaled image.
    removed
        Voxels set to empty: all those below the cutting plane, background included.
    check
        The independent check (it passed).
    brain
        The brain mask estimated from the input.
    """

    image: nib.Nifti1Image
    removed: np.ndarray
    check: FaceCheck
    brain: np.ndarray


@dataclass(frozen=True)
class _Estimate:
    """Head and brain masks of one image, and each voxel's place in the brain's frame."""

    head: np.ndarray
    brain: np.ndarray
    front: np.ndarray  # mm towards the face along the brain's long axis, float32
    up: np.ndarray  # mm towards the top of the head, perpendicular to ``front``
    steps: np.ndarray  # (2, 3): one step along each voxel axis, in (front, up) mm


def deface(img: nib.Nifti1Image) -> DefaceResult:
    """Remove the face of a T1w/T2w/FLAIR head image, then check the result.

    Everything below a plane under the front of the brain is set to empty (Quickshear);
    :class:`InputError` is raised if the image is not a 3-D head image or if the
    independent check fails (see the module docstring).

    An in-memory image whose array type differs from its header's data type (as
    nilearn's templates: float array, uint8 header) keeps the array's type, so that no
    value is rounded.
    """
    return _deface(img)[0]


def _deface(img: nib.Nifti1Image) -> tuple[DefaceResult, bytes]:
    """:func:`deface`, also returning the output as the bytes of a ``.nii`` file."""
    stored = _stored(img)
    original = np.asanyarray(stored.dataobj.get_unscaled())
    slope, inter = stored.dataobj.slope, stored.dataobj.inter
    fill = _fill_value(original.dtype, slope, inter)
    empty = _bits(np.array([fill]))[0]
    raw = original
    values = np.nan_to_num(raw.astype(np.float64) * slope + inter)
    first = _estimate(values, stored.affine)

    # cut again until a cut changes nothing, so that defacing twice changes nothing
    removed = np.zeros(raw.shape, bool)
    for round_ in range(MAX_ROUNDS):
        below = _below_plane(first if round_ == 0 else _estimate(values, stored.affine))
        removed |= below
        cut = below & (_bits(raw) != empty)
        logger.debug("deface round %d: %d voxels cut", round_, np.count_nonzero(cut))
        if not cut.any():
            break
        values[cut] = float(fill) * slope + inter
        raw = np.where(cut, fill, raw).astype(original.dtype)

    check = _check(raw, original, fill, first, removed)
    logger.info("defaced: removed %.1f%% of the head; face region %d voxels, all empty: %s",
                100 * check.removed_fraction, check.face_voxels, check.face_region_empty)
    if not check.ok:
        raise InputError(
            f"defacing failed its check: {check.face_left} of {check.face_voxels} face "
            f"voxels left, {check.brain_changed} of {check.brain_voxels} brain voxels "
            f"changed; nothing was written. Is this a T1w/T2w/FLAIR image of a head in "
            f"its usual pose? If so, deface it by hand and check it"
        )
    payload = _nifti_bytes(stored, raw)
    result = DefaceResult(image=type(stored).from_bytes(payload), removed=removed,
                          check=check, brain=first.brain)
    return result, payload


def deface_file(src: Path, dst: Path, *, overwrite: bool = False) -> DefaceResult:
    """Deface the NIfTI file ``src`` into ``dst`` (.nii or .nii.gz), atomically.

    ``src`` is only read. A ``.nii.gz`` output is reproducible: the same input gives the
    same bytes (gzip time stamp 0, no file name). Nothing is written if the check fails.
    """
    src, dst = Path(src), Path(dst)
    if not src.name.endswith((".nii", ".nii.gz")) or not dst.name.endswith((".nii", ".nii.gz")):
        raise InputError(f"deface works on .nii/.nii.gz files, got {src} -> {dst}; "
                         f"convert the image to NIfTI first (e.g. with dcm2niix)")
    if dst.exists() and dst.resolve() == src.resolve():
        raise InputError(f"refusing to deface {src} in place; write to another path")
    if dst.exists() and not overwrite:
        raise OutputExistsError(dst)
    try:
        img = nib.load(src)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise InputError(f"{src} is not a readable NIfTI image ({exc}); check the file") from exc
    try:
        result, payload = _deface(img)
    except InputError as exc:
        raise InputError(f"{src}: {exc}") from exc
    with atomic_target(dst) as tmp, open(tmp, "wb") as out:
        if dst.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
                gz.write(payload)
        else:
            out.write(payload)
    return result


def _stored(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """``img`` as it is (or would be) stored on disk, after checking it can be defaced."""
    if not isinstance(img, nib.Nifti1Image):
        raise InputError(f"deface needs a NIfTI image, got {type(img).__name__}; "
                         f"load one with nibabel.load('*.nii.gz')")
    if len(img.shape) != 3:
        raise InputError(f"deface needs a 3-D image, got shape {img.shape}; "
                         f"deface one volume at a time (nibabel.funcs.four_to_three)")
    if nib.is_proxy(img.dataobj):
        stored = img
    else:
        array = np.asanyarray(img.dataobj)
        header = img.header.copy()
        if not np.can_cast(array.dtype, header.get_data_dtype(), "safe"):
            header.set_data_dtype(array.dtype)
        header.set_slope_inter(1.0, 0.0)
        stored = type(img).from_bytes(type(img)(array, img.affine, header).to_bytes())
    if stored.get_data_dtype().kind not in "iuf":
        raise InputError(f"deface needs a grey-scale image, got data type "
                         f"{stored.get_data_dtype()}; convert it to integers or floats")
    return stored


def _fill_value(dtype: np.dtype, slope: float, inter: float) -> np.generic:
    """The stored value closest to an empty (0) voxel."""
    if not inter or not np.isfinite(inter) or not np.isfinite(slope) or slope == 0:
        return dtype.type(0)
    target = -inter / slope
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        target = np.clip(np.round(target), info.min, info.max)
    return dtype.type(target)


def _estimate(values: np.ndarray, affine: np.ndarray) -> _Estimate:
    """Estimate head and brain (see the module docstring) and the brain's frame."""
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    factors = np.maximum(1, np.floor(WORK_MM / zooms)).astype(int)
    coarse, coarse_affine = _coarsen(values, affine, factors)
    head, brain = _masks(coarse, coarse_affine, zooms * factors)
    head, brain = _refine(head, factors, values.shape), _refine(brain, factors, values.shape)

    y, z = _field(affine[1], values.shape), _field(affine[2], values.shape)
    yz = np.column_stack([y[brain], z[brain]]).astype(np.float64)
    _, eigenvectors = np.linalg.eigh(np.cov(yz.T))
    long_axis = eigenvectors[:, -1] * np.sign(eigenvectors[0, -1])
    pitch = np.degrees(np.arctan2(long_axis[1], long_axis[0])) - PITCH_REF_DEG
    logger.debug("brain pitched %.1f degrees from MNI", pitch)
    if abs(pitch) > MAX_PITCH_DEG:
        raise InputError(f"the brain's long axis is pitched {pitch:.0f} degrees from its "
                         f"usual pose (at most {MAX_PITCH_DEG:.0f} accepted); check the "
                         f"image's affine, or reorient the head before defacing")
    cos, sin = np.cos(np.radians(pitch)), np.sin(np.radians(pitch))
    to_front, to_up = cos * affine[1] + sin * affine[2], cos * affine[2] - sin * affine[1]
    return _Estimate(head=head, brain=brain, front=_field(to_front, values.shape),
                     up=_field(to_up, values.shape),
                     steps=np.array([to_front[:3], to_up[:3]]))


def _masks(values: np.ndarray, affine: np.ndarray,
           zooms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head and brain masks of ``values`` (on the working grid)."""
    bright = values > _otsu(values.ravel(), 2)[0]
    near = ndimage.distance_transform_edt(~bright, sampling=zooms) <= CLOSE_MM
    head = ndimage.distance_transform_edt(near, sampling=zooms) > CLOSE_MM  # closed
    head = _largest(ndimage.binary_fill_holes(head | bright))
    if head.sum() * np.prod(zooms) < MIN_HEAD_ML * 1000:
        raise InputError(f"found no head in the image (head mask {head.sum()} voxels); "
                         f"is it empty, or not an anatomical image?")
    tissue = head & (values > _otsu(values[head], 3)[0])
    core = ndimage.distance_transform_edt(tissue, sampling=zooms) > ERODE_MM
    labels, n = ndimage.label(core)
    if n == 0:
        raise InputError(f"found no brain in the image (no tissue thicker than "
                         f"{2 * ERODE_MM:.0f} mm); is it a T1w/T2w/FLAIR head image?")
    z = _field(affine[2], values.shape)
    head_z = z[head]
    upper = core & (z > (head_z.min() + head_z.max()) / 2)
    votes = np.bincount(labels[upper], minlength=n + 1)[1:]
    brain = labels == 1 + int(np.argmax(votes))
    grown = ndimage.distance_transform_edt(~brain, sampling=zooms) <= ERODE_MM + zooms.max()
    brain = ndimage.binary_fill_holes(_largest(tissue & grown))
    if brain.sum() * np.prod(zooms) < MIN_BRAIN_ML * 1000:
        raise InputError(f"found no brain in the image (estimated {brain.sum()} voxels, "
                         f"under {MIN_BRAIN_ML:.0f} ml); deface works on images of human heads")
    return head, brain


def _below_plane(est: _Estimate) -> np.ndarray:
    """Voxels below the plane that Quickshear cuts along.

    The plane is the tangent of the brain's sagittal hull at the face line, lowered by
    the margin plus half a voxel.
    """
    front, up = est.front[est.brain], est.up[est.brain]
    line = float(front.max()) - FACE_LINE * float(np.ptp(front))
    try:
        hull = ConvexHull(np.column_stack([front, up]).astype(np.float64))
    except QhullError as exc:
        raise InputError(f"the estimated brain is flat ({exc}); is this a head image?") from exc
    corners = hull.points[hull.vertices]  # counter-clockwise
    start = int(np.lexsort((corners[:, 1], corners[:, 0]))[0])  # back, then bottom
    lower = np.roll(corners, -start, axis=0)
    lower = lower[: int(np.argmax(lower[:, 0])) + 1]  # back to front, along the bottom
    k = int(np.clip(np.searchsorted(lower[:, 0], line) - 1, 0, len(lower) - 2))
    (f0, u0), (f1, u1) = lower[k], lower[k + 1]
    slope = (u1 - u0) / (f1 - f0)
    normal = np.array([-slope, 1.0]) / np.hypot(1.0, slope)  # in (front, up), upwards
    half_voxel = 0.5 * float(np.abs(normal @ est.steps).sum())
    # signed distance above the tangent, in mm; the brain's voxel centres are at >= 0
    height = (est.up - u0 - slope * (est.front - f0)) * normal[1]
    return height < -(MARGIN_MM + half_voxel)


def _face_region(est: _Estimate) -> np.ndarray:
    """Head voxels in front of the face line and 10 mm below the brain in front of it."""
    front = est.front[est.brain]
    line = float(front.max()) - FACE_LINE * float(np.ptp(front))
    floor = float(est.up[est.brain & (est.front > line)].min())
    return est.head & (est.front > line) & (est.up < floor - CHECK_BELOW_MM)


def _check(raw: np.ndarray, original: np.ndarray, fill: np.generic, est: _Estimate,
           removed: np.ndarray) -> FaceCheck:
    """Check the defaced data ``raw`` against the ``original`` stored data."""
    face = _face_region(est)
    face_left = int(np.count_nonzero(_bits(raw[face]) != _bits(np.array([fill]))[0]))
    brain_changed = int(np.count_nonzero(_bits(raw[est.brain]) != _bits(original[est.brain])))
    return FaceCheck(
        face_region_empty=face_left == 0,
        brain_unchanged=brain_changed == 0,
        removed_fraction=float((removed & est.head).sum() / est.head.sum()),
        face_voxels=int(face.sum()),
        face_left=face_left,
        brain_voxels=int(est.brain.sum()),
        brain_changed=brain_changed,
    )


def _nifti_bytes(stored: nib.Nifti1Image, raw: np.ndarray) -> bytes:
    """A ``.nii`` file: ``stored`` with on-disk data ``raw`` and the same scaling.

    The header's free-text fields are emptied and its extensions dropped. (Saving the
    proxy-backed result again with nibabel would recompute the scaling.)
    """
    header = stored.header.copy()
    for name in TEXT_FIELDS:
        header[name] = b""
    header.extensions.clear()
    out = type(stored)(raw, stored.affine, header=header)
    out.header.set_slope_inter(stored.dataobj.slope, stored.dataobj.inter)
    return out.to_bytes()


def _coarsen(values: np.ndarray, affine: np.ndarray,
             factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block means of ``values`` over ``factors`` voxels, and the affine of the blocks."""
    if (factors == 1).all():
        return values, affine
    n = np.array(values.shape) // factors
    blocks = values[: n[0] * factors[0], : n[1] * factors[1], : n[2] * factors[2]]
    blocks = blocks.reshape(n[0], factors[0], n[1], factors[1], n[2], factors[2])
    corner = affine[:3, :3] @ ((factors - 1) / 2) + affine[:3, 3]
    coarse_affine = affine @ np.diag([*factors, 1])
    coarse_affine[:3, 3] = corner
    return blocks.mean(axis=(1, 3, 5)), coarse_affine


def _refine(mask: np.ndarray, factors: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` of blocks back on the full grid (the edge repeated where blocks ended)."""
    for axis, factor in enumerate(factors):
        mask = np.repeat(mask, factor, axis=axis)
    pad = [(0, full - part) for full, part in zip(shape, mask.shape, strict=True)]
    return np.pad(mask, pad, mode="edge")


def _field(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``row @ (i, j, k, 1)`` for every voxel: one world coordinate, float32."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    total = np.float32(row[3]) + sum(np.float32(row[axis]) * grids[axis].astype(np.float32)
                                     for axis in range(3))
    return np.broadcast_to(total, shape)


def _otsu(values: np.ndarray, classes: int) -> list[float]:
    """Otsu's thresholds (1979) splitting ``values`` into 2 or 3 classes."""
    lo, hi = np.percentile(values, [0.0, 99.9])
    if not hi > lo:
        raise InputError("the image is constant (no head in it); check the file")
    hist, edges = np.histogram(values, bins=128, range=(lo, hi))
    p = hist / hist.sum()
    weight = np.concatenate([[0.0], np.cumsum(p)])
    moment = np.concatenate([[0.0], np.cumsum(p * (edges[:-1] + edges[1:]) / 2)])

    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # sum over one class of M^2/W
        w, m = weight[b] - weight[a], moment[b] - moment[a]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(w > 0, m * m / w, -np.inf)

    cut = np.arange(1, 128)
    if classes == 2:
        total = score(np.zeros_like(cut), cut) + score(cut, np.full_like(cut, 128))
        return [float(edges[cut[np.argmax(total)]])]
    i, j = np.meshgrid(cut, cut, indexing="ij")
    total = score(np.zeros_like(i), i) + score(i, j) + score(j, np.full_like(j, 128))
    total[j <= i] = -np.inf
    a, b = np.unravel_index(np.argmax(total), total.shape)
    return [float(edges[cut[a]]), float(edges[cut[b]])]


def _bits(values: np.ndarray) -> np.ndarray:
    """The stored bytes of each value as one unsigned integer (so NaN equals NaN)."""
    native = values.astype(values.dtype.newbyteorder("="), copy=False)
    return native.view(f"u{values.dtype.itemsize}")


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of ``mask`` (empty if there is none)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
