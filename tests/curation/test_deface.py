import gzip
import hashlib

import nibabel as nib
import numpy as np
import pytest
from neurotwin_db.demo_datasets.head_phantom import head_phantom
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    io_orientation,
    ornt_transform,
)

from neurotwin_db.curation.anonymize.deface import deface, deface_file
from neurotwin_db.errors import InputError, OutputExistsError


@pytest.fixture(scope="module")
def phantom():
    return head_phantom()


@pytest.fixture(scope="module")
def defaced(phantom):
    return deface(phantom.image)


def _raw(img):
    """The stored (unscaled) voxel values."""
    if nib.is_proxy(img.dataobj):
        return np.asanyarray(img.dataobj.get_unscaled())
    return np.asanyarray(img.dataobj)


def _pitched(img, degrees):
    """The same voxels with the head pitched about the left-right axis (nose up if > 0)."""
    angle = np.radians(degrees)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return nib.Nifti1Image(np.asanyarray(img.dataobj), rotation @ img.affine)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_phantom_has_a_face_in_front_of_and_below_the_brain(phantom):
    assert phantom.image.shape == phantom.brain.shape == phantom.face.shape
    assert not (phantom.brain & ~phantom.head).any()  # the MNI brain fits the fsaverage head
    assert not (phantom.brain & phantom.face).any()
    assert phantom.face.sum() * 8e-3 > 100  # ml: nose, mouth, chin
    y = nib.affines.apply_affine(phantom.image.affine, np.argwhere(phantom.head))[:, 1]
    brain_front = nib.affines.apply_affine(phantom.image.affine,
                                           np.argwhere(phantom.brain))[:, 1].max()
    assert y.max() > brain_front + 20  # the nose sticks out
    assert phantom.image.header["descrip"].tobytes().startswith(b"ntdb T1w head phantom")


def test_phantom_is_deterministic(phantom):
    again = head_phantom()
    assert again.image.to_bytes() == phantom.image.to_bytes()


def test_face_removed_and_brain_kept(phantom, defaced):
    before, after = _raw(phantom.image), _raw(defaced.image)
    assert defaced.check.ok
    assert (defaced.image.get_fdata()[phantom.face] == 0).all()
    assert np.array_equal(after[phantom.brain], before[phantom.brain])
    assert not (defaced.removed & phantom.brain).any()
    assert np.array_equal(after[~defaced.removed], before[~defaced.removed])
    # about 30% of the head goes: face, jaw and the neck below the cerebellum
    assert 0.2 < defaced.check.removed_fraction < 0.4
    assert defaced.check.face_voxels > 10_000
    assert defaced.image.shape == phantom.image.shape
    assert np.array_equal(defaced.image.affine, phantom.image.affine)
    assert defaced.image.get_data_dtype() == np.int16


def test_estimated_brain_matches_the_truth(phantom, defaced):
    overlap = (defaced.brain & phantom.brain).sum()
    assert overlap / phantom.brain.sum() > 0.99
    assert overlap / defaced.brain.sum() > 0.99


@pytest.mark.parametrize("codes", [("L", "P", "S"), ("P", "I", "R")])
def test_any_voxel_axis_order_gives_the_same_cut(phantom, defaced, codes):
    ras = axcodes2ornt("RAS")
    to_codes = ornt_transform(io_orientation(phantom.image.affine), axcodes2ornt(codes))
    reoriented = phantom.image.as_reoriented(to_codes)
    assert nib.aff2axcodes(reoriented.affine) == codes

    result = deface(reoriented)

    back = ornt_transform(axcodes2ornt(codes), ras)
    assert np.array_equal(apply_orientation(result.removed, back), defaced.removed)
    assert np.array_equal(apply_orientation(_raw(result.image), back), _raw(defaced.image))


@pytest.mark.parametrize("degrees", [-15, 15])
def test_pitched_head(phantom, degrees):
    result = deface(_pitched(phantom.image, degrees))
    assert (result.image.get_fdata()[phantom.face] == 0).all()
    assert np.array_equal(_raw(result.image)[phantom.brain], _raw(phantom.image)[phantom.brain])


def test_t2w_phantom():
    t2w = head_phantom(contrast="T2w")
    result = deface(t2w.image)
    assert np.array_equal(_raw(result.image)[t2w.brain], _raw(t2w.image)[t2w.brain])
    # bright CSF joins the estimated brain, so the cut follows the inner skull: lower
    left = (result.image.get_fdata()[t2w.face] != 0).sum()
    assert left / t2w.face.sum() < 0.03


def test_deface_file(phantom, tmp_path):
    # a scaled int16 image with identifying text and an extension, as scanners write
    img = nib.Nifti1Image(_raw(phantom.image), phantom.image.affine)
    img.header.set_slope_inter(0.5, 10.0)
    img.header["descrip"] = b"Doe^John 1970-01-01"
    img.header["aux_file"] = b"john.txt"
    img.header["db_name"] = b"clinic"
    img.header["intent_name"] = b"JD"
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"Doe^John"))
    src = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(img, src)
    digest = _sha(src)

    result = deface_file(src, tmp_path / "a" / "sub-01_T1w.nii.gz")
    deface_file(src, tmp_path / "b" / "sub-01_T1w.nii.gz")

    first, second = tmp_path / "a" / "sub-01_T1w.nii.gz", tmp_path / "b" / "sub-01_T1w.nii.gz"
    assert _sha(src) == digest
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\0\0\0\0"  # gzip time stamp
    out = nib.load(first)
    assert out.get_data_dtype() == np.int16
    assert (out.dataobj.slope, out.dataobj.inter) == (0.5, 10.0)
    for field in ("descrip", "aux_file", "db_name", "intent_name"):
        assert out.header[field].tobytes().strip(b"\0") == b""
    assert len(out.header.extensions) == 0
    assert b"Doe" not in gzip.decompress(first.read_bytes())
    before = _raw(nib.load(src))
    assert np.array_equal(_raw(out)[~result.removed], before[~result.removed])
    assert (out.get_fdata()[phantom.face] == 0).all()  # zero after scaling too
    assert np.array_equal(_raw(out), _raw(result.image))


def test_defacing_twice_changes_nothing(phantom, tmp_path):
    src = tmp_path / "face.nii"
    nib.save(phantom.image, src)
    once, twice = tmp_path / "once.nii.gz", tmp_path / "twice.nii.gz"
    deface_file(src, once)
    again = deface_file(once, twice)
    assert again.check.ok
    assert once.read_bytes() == twice.read_bytes()
    with pytest.raises(OutputExistsError):
        deface_file(src, once)


def test_mni_template_is_brain_only_and_left_as_it_is():
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=2)  # skull-stripped: no face at all
    result = deface(template)
    assert result.check.ok
    assert result.check.face_voxels == 0
    assert result.check.removed_fraction == 0.0
    before, after = np.asarray(template.dataobj), _raw(result.image)
    assert result.removed.any()  # the plane still runs under the brain, through air
    assert np.abs(before[result.removed]).max() < 1e-6  # resampling leftovers; brain > 0.2
    assert np.array_equal(after[~result.removed], before[~result.removed])


def test_failed_check_raises_and_writes_nothing(phantom, tmp_path):
    upside_down = nib.Nifti1Image(np.asanyarray(phantom.image.dataobj),
                                  np.diag([1.0, 1.0, -1.0, 1.0]) @ phantom.image.affine)
    src, dst = tmp_path / "upside_down.nii.gz", tmp_path / "out" / "defaced.nii.gz"
    nib.save(upside_down, src)
    with pytest.raises(InputError, match="failed its check"):
        deface_file(src, dst)
    assert not dst.parent.exists() or not any(dst.parent.iterdir())


@pytest.mark.parametrize(("data", "message"), [
    (np.zeros((30, 30, 30, 2), np.int16), "3-D"),
    (np.zeros((30, 30, 30), np.int16), "no head"),
    (np.full((30, 30, 30), 7.0, np.float32), "no head"),
])
def test_rejects_images_without_a_head(data, message):
    with pytest.raises(InputError, match=message):
        deface(nib.Nifti1Image(data, np.eye(4)))


def test_rejects_non_nifti_paths(tmp_path):
    src = tmp_path / "head.mgz"
    src.write_bytes(b"")
    with pytest.raises(InputError, match="nii"):
        deface_file(src, tmp_path / "out.nii.gz")
    nii = tmp_path / "head.nii"
    nii.write_bytes(b"not an image")
    with pytest.raises(InputError, match="readable"):
        deface_file(nii, tmp_path / "out.nii.gz")
    with pytest.raises(InputError, match="in place"):
        deface_file(nii, nii, overwrite=True)
