"""A T1w-like (or T2w-like) whole head with a face, and its ground-truth brain and face.

Why: defacing has to be tested on a head that has a face, and no installed package ships
one (nilearn's MNI152 template is brain-only). The phantom is built from real shapes:

- the scalp: MNE's fsaverage head surface ``mne/data/fsaverage/fsaverage-head.fif``
  (2033 vertices, with nose, eye sockets, mouth and chin), voxelised and filled;
- the inner skull: MNE's ``fsaverage-inner_skull-bem.fif``;
- the brain: nilearn's MNI152 2009a brain mask, with the T1 template's own grey/white
  contrast inside it (Fonov et al. 2011, NeuroImage 54:313);
- the nasion: MNE's ``fsaverage-fiducials.fif``.

fsaverage's MRI (surface RAS) coordinates are MNI305, within a few millimetres of MNI152.
Checked at 2 mm: the nose tip is 24 mm in front of the brain's frontal pole, the whole MNI
brain lies inside the fsaverage head, and all but 6 ml of it inside the fsaverage inner
skull; moving the brain by 2 mm in any direction fits it no better (5 ml at best), so no
translation is applied. The intracranial space is the inner skull, but no more than 5 mm
from the brain, plus a 2 mm rim around the brain: the brain is always wrapped in CSF.

Layers and T1w-like intensities (int16, after a half-voxel Gaussian blur for partial
volume and magnitude (Rician) noise from a fixed seed): air 0, scalp (outer 4 mm of the
head, skin and fat) 850, skull (6 mm around the intracranial space) 90, CSF 160, brain
3.6 x the MNI152 T1 template (grey ~450, white ~800), eyes (two 12 mm spheres) 120, other
soft tissue of face and neck 420. The field of view is cut at z = -150 mm, across the
neck, as in a real scan. It builds in about 2 s at 2 mm and 12 s at 1 mm.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from neurotwin_db.errors import InputError

# field of view, world (MNI/fsaverage RAS) mm; the neck leaves through the bottom
FOV_LOW = (-96.0, -136.0, -150.0)
FOV_HIGH = (96.0, 112.0, 110.0)
SCALP_MM = 4.0
CSF_MM = 5.0  # the intracranial space reaches at most this far from the brain
SKULL_MM = 6.0
EYE_RADIUS_MM = 12.0
# the ground-truth face: anterior to a coronal plane FACE_BACK_MM behind the nasion and
# inferior to an axial plane FACE_BELOW_MM below it
FACE_BACK_MM = 35.0
FACE_BELOW_MM = 5.0
# layer intensities; the brain is a + b * (MNI152 T1 template, 0-255)
CONTRASTS = {
    "T1w": {"scalp": 850.0, "skull": 90.0, "csf": 160.0, "eye": 120.0, "soft": 420.0,
            "brain": (0.0, 3.6)},
    "T2w": {"scalp": 600.0, "skull": 60.0, "csf": 1000.0, "eye": 950.0, "soft": 300.0,
            "brain": (1100.0, -3.2)},
}
NOISE_SD = 12.0
TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
SEED = 20110808  # HealthSec'11, where Quickshear was published


@dataclass(frozen=True)
class HeadPhantom:
    """A phantom head image with its ground truth (masks are in the image's voxel grid).

    Attributes
    ----------
    image
        The T1w-like (or T2w-like) head, int16, RAS voxel axes, world coordinates =
        fsaverage/MNI mm; its ``descrip`` names the phantom, as scanners write theirs.
    head
        Inside the fsaverage scalp surface.
    brain
        The MNI152 brain mask resampled to the grid.
    face
        Head voxels anterior to ``y = nasion_y - 35 mm`` and inferior to
        ``z = nasion_z - 5 mm`` (world mm): the lower front of the eyes, the nose,
        cheeks, mouth and chin. It shares no voxel with the brain.
    nasion
        fsaverage's nasion (``fsaverage-fiducials.fif``), world mm.
    """

    image: nib.Nifti1Image
    head: np.ndarray
    brain: np.ndarray
    face: np.ndarray
    nasion: tuple[float, float, float]


def head_phantom(voxel_mm: float = 2.0, contrast: str = "T1w") -> HeadPhantom:
    """Build the phantom head at ``voxel_mm`` isotropic resolution (deterministic).

    ``contrast`` is ``"T1w"`` (the default) or ``"T2w"`` (bright CSF and eyes, dark white
    matter: the brain's T1 contrast inverted).
    """
    import mne

    if contrast not in CONTRASTS:
        raise InputError(f"contrast={contrast!r} is not one of {sorted(CONTRASTS)}")
    intensity = CONTRASTS[contrast]
    fsaverage = Path(mne.__file__).parent / "data" / "fsaverage"
    low, high = np.array(FOV_LOW), np.array(FOV_HIGH)
    shape = tuple(int(n) for n in np.floor((high - low) / voxel_mm) + 1)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = low

    head = _surface_mask(fsaverage / "fsaverage-head.fif", affine, shape)
    inner_skull = _surface_mask(fsaverage / "fsaverage-inner_skull-bem.fif", affine, shape)
    brain, brain_t1 = _mni_brain(affine, shape)
    nasion = _nasion(fsaverage / "fsaverage-fiducials.fif")

    depth = ndimage.distance_transform_edt(head, sampling=voxel_mm)
    scalp = head & (depth <= SCALP_MM)
    to_brain = ndimage.distance_transform_edt(~brain, sampling=voxel_mm)
    intracranial = ((inner_skull & (to_brain <= CSF_MM)) | (to_brain <= 2.0)) & ~scalp
    near_skull = ndimage.distance_transform_edt(~intracranial, sampling=voxel_mm) <= SKULL_MM
    skull = near_skull & head & ~scalp & ~intracranial
    x, y, z = _world_axes(affine, shape)
    eyes = np.zeros(shape, bool)
    for side in (-1.0, 1.0):
        centre = (side * 32.0, nasion[1] - 30.0, nasion[2] - 6.0)
        eyes |= ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
                 <= EYE_RADIUS_MM**2)
    eyes &= head & ~scalp & ~skull & ~intracranial

    image = np.zeros(shape)
    for mask, layer in ((head, "soft"), (eyes, "eye"), (scalp, "scalp"), (skull, "skull"),
                        (intracranial, "csf")):
        image[mask] = intensity[layer]
    offset, gain = intensity["brain"]
    image[brain] = offset + gain * brain_t1[brain]
    image = ndimage.gaussian_filter(image, sigma=0.5)  # partial volume at the edges
    rng = np.random.default_rng(SEED)
    noisy = np.hypot(image + rng.normal(0, NOISE_SD, shape), rng.normal(0, NOISE_SD, shape))
    data = np.round(noisy).astype(np.int16)

    face = head & (y > nasion[1] - FACE_BACK_MM) & (z < nasion[2] - FACE_BELOW_MM)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = f"ntdb {contrast} head phantom: fsaverage + MNI152".encode()
    return HeadPhantom(image=img, head=head, brain=brain, face=face, nasion=nasion)


def _world_axes(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """World x, y, z of the voxel centres of a diagonal ``affine``, broadcastable."""
    return tuple(
        (affine[axis, axis] * np.arange(n) + affine[axis, 3]).reshape(
            [-1 if a == axis else 1 for a in range(3)])
        for axis, n in enumerate(shape)
    )


def _surface_mask(path: Path, affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Voxels whose centre is inside the closed surface in ``path`` (a BEM .fif, metres).

    Each column along the third axis is filled by parity: crossings of the column with the
    triangles are counted, and a voxel is inside if an odd number lie below its centre.
    """
    import mne

    surface = mne.read_bem_surfaces(path, verbose=False)[0]
    inverse = np.linalg.inv(affine)
    vertices = surface["rr"] * 1000.0 @ inverse[:3, :3].T + inverse[:3, 3]
    crossings = np.zeros(shape, np.int32)
    for (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) in vertices[surface["tris"]]:
        det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        if det == 0:  # edge-on triangle: a column cannot cross it
            continue
        i, j = np.meshgrid(np.arange(np.ceil(min(x0, x1, x2)), np.floor(max(x0, x1, x2)) + 1),
                           np.arange(np.ceil(min(y0, y1, y2)), np.floor(max(y0, y1, y2)) + 1),
                           indexing="ij")
        a = ((y1 - y2) * (i - x2) + (x2 - x1) * (j - y2)) / det
        b = ((y2 - y0) * (i - x2) + (x0 - x2) * (j - y2)) / det
        hit = (a >= 0) & (b >= 0) & (a + b < 1)
        k = np.ceil(a[hit] * z0 + b[hit] * z1 + (1 - a[hit] - b[hit]) * z2).astype(int)
        i, j = i[hit].astype(int), j[hit].astype(int)
        keep = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1]) & (k < shape[2])
        np.add.at(crossings, (i[keep], j[keep], np.maximum(k[keep], 0)), 1)
    inside = np.cumsum(crossings, axis=2) % 2 == 1
    if inside[:, :, -1].any():  # a column crossed an odd number of times: not closed
        raise RuntimeError(f"{path.name} did not voxelise as a closed surface")
    return inside


def _mni_brain(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The MNI152 brain mask and T1 template (0-255), resampled linearly to the grid.

    The mask is nilearn's (``load_mni152_brain_mask``: the template above 0.2 of its
    maximum), computed here from the file to avoid importing ``nilearn.datasets`` (slow).
    """
    nilearn = importlib.util.find_spec("nilearn")
    assert nilearn is not None and nilearn.origin is not None, "nilearn is a dependency"
    path = Path(nilearn.origin).parent / "datasets" / "data" / TEMPLATE
    t1 = nib.load(path)
    to_source = np.linalg.inv(t1.affine) @ affine
    data = np.asarray(t1.dataobj, dtype=np.float32)
    out = [ndimage.affine_transform(volume, to_source[:3, :3], to_source[:3, 3],
                                    output_shape=shape, order=1)
           for volume in ((data > 0.2 * data.max()).astype(np.float32), data)]
    return out[0] > 0.5, out[1]


def _nasion(path: Path) -> tuple[float, float, float]:
    """fsaverage's nasion in world mm."""
    import mne

    points, _frame = mne.io.read_fiducials(path, verbose=False)
    nasion = next(p for p in points if p["ident"] == mne.io.constants.FIFF.FIFFV_POINT_NASION)
    return tuple(float(v) * 1000.0 for v in nasion["r"])  # type: ignore[return-value]
