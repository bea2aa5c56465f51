"""Small meshes built in code for the FEM tests."""

from __future__ import annotations

import numpy as np
import pytest

from neurotwin_db.modelling.headmodel import HeadMesh, oriented, with_boundaries


def make_box(n: int = 8, size_mm: float = 10.0, tag: int = 2) -> HeadMesh:
    """A cube of ``n``³ voxels, each split into six tetrahedra (Kuhn), one tissue."""
    g = np.linspace(0.0, size_mm, n + 1)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    nodes = np.c_[x.ravel(), y.ravel(), z.ravel()]
    idx = np.arange((n + 1) ** 3).reshape(n + 1, n + 1, n + 1)
    corners = np.stack([idx[:-1, :-1, :-1], idx[1:, :-1, :-1], idx[:-1, 1:, :-1],
                        idx[1:, 1:, :-1], idx[:-1, :-1, 1:], idx[1:, :-1, 1:],
                        idx[:-1, 1:, 1:], idx[1:, 1:, 1:]], axis=-1).reshape(-1, 8)
    kuhn = [(0, 1, 3, 7), (0, 1, 5, 7), (0, 2, 3, 7), (0, 2, 6, 7), (0, 4, 5, 7), (0, 4, 6, 7)]
    tets = np.concatenate([corners[:, list(k)] for k in kuhn])
    return with_boundaries(oriented(HeadMesh(nodes, tets, np.full(len(tets), tag))))


@pytest.fixture
def box() -> HeadMesh:
    """A 10 mm cube of 8³ voxels (3072 tetrahedra), grey matter."""
    return make_box()


def write_eeg_dataset(root, recordings: dict[str, tuple[float, float]]):  # noqa: ANN001, ANN201
    """A database with one EEG dataset; ``recordings``: subject → (alpha Hz, gamma Hz or 0).

    Each recording is the demo's MNE simulation (1/f background + alpha), plus a 40 Hz
    rhythm where asked, written as EDF and ingested with ``ingest_eeg``.
    """
    import mne
    from neurotwin_db.demo_datasets.eeg_rest import simulate_raw

    from neurotwin_db.catalog import add_dataset, init_database
    from neurotwin_db.curation.ingest import ingest_eeg

    db = init_database(root / "db")
    add_dataset(db, "eeg", modality="eeg")
    dataset = db.root / "eeg"
    for index, (subject, (alpha_hz, gamma_hz)) in enumerate(recordings.items()):
        raw = simulate_raw(seed=index, alpha_hz=alpha_hz)
        if gamma_hz:
            data = raw.get_data()
            raw._data = 0.1 * data + 20e-6 * np.sin(2 * np.pi * gamma_hz * raw.times)
        path = root / f"rec-{subject}.edf"
        mne.export.export_raw(path, raw, fmt="edf", verbose="error")
        ingest_eeg(path, dataset, subject=subject, task="rest", line_freq=50)
    return dataset


@pytest.fixture(scope="module")
def eeg_dataset(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Subject 01: resting EEG with a 9.5 Hz alpha; 02: dominated by a 40 Hz rhythm."""
    return write_eeg_dataset(tmp_path_factory.mktemp("nmm"), {"01": (9.5, 0.0),
                                                              "02": (10.0, 40.0)})
