import os
import subprocess

import pytest

from neurotwin_db import datalad as dl
from neurotwin_db.catalog import Catalog, Filters, build_catalog, get_files, plan_get

pytestmark = pytest.mark.datalad


def _annexed_present(root):
    """Relative paths of annexed files whose content is here, across installed subdatasets."""
    present = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and "annex/objects" in os.readlink(path) \
                    and os.path.exists(path):
                present.add(os.path.relpath(path, root))
    return present


@pytest.fixture
def clone(demo_db, tmp_path):
    return dl.clone(str(demo_db), tmp_path / "clone")


def test_search_works_in_a_clone_before_any_content(clone, demo_db):
    assert not (clone / "eeg-rest" / "dataset_description.json").exists()  # not installed
    rows = Catalog(clone / ".ntdb" / "catalog").search(Filters(modality=("eeg",),
                                                               sub=("01",)))
    origin = Catalog(demo_db / ".ntdb" / "catalog").search(Filters(modality=("eeg",),
                                                                   sub=("01",)))
    assert rows == origin and rows


def test_get_fetches_exactly_the_matched_files(clone):
    filters = Filters(modality=("eeg",), sub=("01",), extension=(".edf",))
    plan = plan_get(clone, filters)
    assert [f["target"] for f in plan.files] == ["eeg-rest/sub-01/eeg/sub-01_task-rest_eeg.edf"]
    assert _annexed_present(clone) == set()
    result = get_files(clone, filters)
    assert result.fetched == 1
    assert _annexed_present(clone) == {"eeg-rest/sub-01/eeg/sub-01_task-rest_eeg.edf"}
    assert os.path.getsize(clone / plan.files[0]["target"]) == plan.files[0]["size"]
    again = get_files(clone, filters)
    assert (again.fetched, again.already_present) == (0, 1)


def test_get_derivative_files_from_a_nested_subdataset(clone):
    result = get_files(clone, Filters(dataset=("mri-template",), derivative=("ntdb-tissue",),
                                      suffix=("probseg",)))
    assert result.fetched == 2
    assert _annexed_present(clone) == {
        f"mri-template/derivatives/ntdb-tissue/sub-MNI152/anat/"
        f"sub-MNI152_space-MNI152NLin2009aSym_label-{t}_probseg.nii.gz" for t in ("GM", "WM")}


def test_clone_can_be_indexed_without_content(clone, demo_db, tmp_path):
    """A clone's catalog (from git trees and annex keys) equals the origin's."""
    result = build_catalog(clone, out=tmp_path / "fresh", save=False)
    assert result.written and len(result.indexed) == 8  # 6 raw + 2 deposited
    fresh = Catalog(tmp_path / "fresh")
    origin = Catalog(demo_db / ".ntdb" / "catalog")
    cols = "dataset, path, sub, suffix, size, annexed"
    query = f"SELECT {cols} FROM files ORDER BY dataset, path"
    assert fresh.sql(query) == origin.sql(query)
    present = fresh.sql("SELECT count(*) AS n FROM files WHERE annexed AND present")
    assert present == [{"n": 0}]
    assert _annexed_present(clone) == set()
    status = subprocess.check_output(["git", "-C", str(clone), "status", "--porcelain"],
                                     text=True)
    assert status == ""


def test_search_reports_presence_in_this_copy(clone):
    from neurotwin_db.catalog import search_files

    filters = Filters(sub=("02",), extension=(".edf",))
    [row] = search_files(clone, filters)
    assert row["annexed"] and not row["present"]
    get_files(clone, filters)
    assert search_files(clone, filters)[0]["present"]


def test_relative_clone_works_from_any_folder(demo_db, tmp_path, monkeypatch):
    """`datalad clone ../db copy` records a relative origin; get must still find it."""
    monkeypatch.chdir(demo_db.parent)
    subprocess.run(["datalad", "clone", "db", str(tmp_path / "rel")], check=True,
                   capture_output=True)
    monkeypatch.chdir(tmp_path.parent)
    result = get_files(tmp_path / "rel", Filters(sub=("03",), extension=(".edf",)))
    assert result.fetched == 1


def test_get_on_a_plain_folder_says_files_are_here(plain_bids):
    from neurotwin_db.errors import CatalogError

    build_catalog(plain_bids)
    with pytest.raises(CatalogError, match="not a DataLad dataset"):
        get_files(plain_bids, Filters(sub=("01",)))
