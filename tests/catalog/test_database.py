import json
import subprocess

import pytest

from neurotwin_db.catalog import add_dataset, init_database, open_database, register_dataset
from neurotwin_db.errors import InputError, NotADatabaseError

pytestmark = pytest.mark.datalad


def _clean(path):
    return subprocess.check_output(["git", "-C", str(path), "status", "--porcelain"],
                                   text=True) == ""


def test_init_creates_a_clean_superdataset(db):
    assert (db.root / ".ntdb" / "config.json").is_file()
    assert db.entries() == []
    assert _clean(db.root)


def test_init_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        init_database(tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_open_database_rejects_other_folders(tmp_path):
    with pytest.raises(NotADatabaseError, match="ntdb init"):
        open_database(tmp_path)


def test_dataset_add_writes_a_bids_skeleton_and_registers_it(db):
    entry = add_dataset(db, "mice", modality="rodent", authors=["A. Author"])
    root = db.root / "mice"
    desc = json.loads((root / "dataset_description.json").read_text())
    assert {"Name", "BIDSVersion", "DatasetType", "License", "Authors"} <= set(desc)
    assert desc["Authors"] == ["A. Author"]
    header = (root / "participants.tsv").read_text().splitlines()[0].split("\t")
    assert header[:2] == ["participant_id", "species"]
    assert {"strain", "strain_rrid"} <= set(header)
    for name in ("README.md", "CHANGES", "participants.json", ".bidsignore"):
        assert (root / name).is_file()
    assert entry.species == "mus musculus"
    assert [e.id for e in open_database(db.root).entries()] == ["mice"]
    assert _clean(db.root) and _clean(root)


@pytest.mark.parametrize("name", ["../evil", "a/b", "bad name", ""])
def test_dataset_add_refuses_bad_names_and_creates_nothing(db, name):
    before = sorted(p.name for p in db.root.iterdir())
    with pytest.raises(InputError, match="not allowed"):
        add_dataset(db, name, modality="eeg")
    assert sorted(p.name for p in db.root.iterdir()) == before
    assert not (db.root.parent / "evil").exists()


def test_dataset_add_checks_modality_and_species(db):
    with pytest.raises(InputError, match="animal species"):
        add_dataset(db, "r", modality="rodent", species="homo sapiens")
    with pytest.raises(InputError, match="modality"):
        add_dataset(db, "r", modality="fmri")
    assert db.entries() == []


def test_register_clones_an_existing_dataset(db, tmp_path):
    other = init_database(tmp_path / "other")
    add_dataset(other, "eeg1", modality="eeg", title="EEG one")
    source = other.root / "eeg1"
    entry = register_dataset(db, str(source))
    assert (entry.id, entry.title, entry.location) == ("eeg1", "EEG one", str(source))
    assert (db.root / "eeg1" / "dataset_description.json").is_file()
    assert _clean(db.root)


def test_register_refuses_a_non_bids_dataset_without_touching_the_db(db, tmp_path):
    from neurotwin_db import datalad as dl

    plain = dl.create_dataset(tmp_path / "plain")
    head = subprocess.check_output(["git", "-C", str(db.root), "rev-parse", "HEAD"])
    with pytest.raises(InputError, match="dataset_description.json"):
        register_dataset(db, str(plain))
    assert subprocess.check_output(["git", "-C", str(db.root), "rev-parse", "HEAD"]) == head
    assert not (db.root / "plain").exists()


def test_init_inside_a_repository_is_refused(db):
    with pytest.raises(InputError, match="inside the DataLad dataset"):
        init_database(db.root / "nested")
    assert not (db.root / "nested").exists()


def test_register_by_relative_path_records_an_absolute_location(db, tmp_path, monkeypatch):
    other = init_database(tmp_path / "other")
    add_dataset(other, "eeg1", modality="eeg")
    monkeypatch.chdir(tmp_path)
    entry = register_dataset(db, "other/eeg1", name="copy")
    assert entry.location == str(tmp_path / "other" / "eeg1")


def test_register_refuses_a_folder_that_is_not_datalad(db, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a DataLad dataset"):
        register_dataset(db, str(tmp_path / "plain"))


def test_existing_name_messages(db):
    add_dataset(db, "a", modality="eeg")
    with pytest.raises(InputError, match="already registered"):
        add_dataset(db, "a", modality="eeg")
    (db.root / "b").mkdir()
    with pytest.raises(InputError, match="already exists on disk"):
        add_dataset(db, "b", modality="eeg")
