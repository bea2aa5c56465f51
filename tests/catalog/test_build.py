import json
import subprocess

import pytest
from conftest import write

from neurotwin_db import datalad as dl
from neurotwin_db.bidspath import split_relpath
from neurotwin_db.catalog import Catalog, Filters, add_dataset, build_catalog


def _metadata(catalog, path):
    rows = catalog.sql(f"SELECT key, value FROM metadata WHERE path = '{path}'")
    return {r["key"]: json.loads(r["value"]) for r in rows}


def test_plain_folder_entities_and_inheritance(plain_bids):
    result = build_catalog(plain_bids)
    assert result.written and not result.report.failed()
    catalog = Catalog(plain_bids / ".ntdb" / "catalog")
    rows = catalog.search(Filters(sub=("02",), suffix=("eeg",), extension=(".edf",)))
    assert [r["path"] for r in rows] == ["sub-02/eeg/sub-02_task-rest_run-1_eeg.edf"]
    meta = _metadata(catalog, "sub-02/eeg/sub-02_task-rest_run-1_eeg.edf")
    # top level < subject level < file level
    assert meta == {"TaskName": "rest", "SamplingFrequency": 500, "PowerLineFrequency": 60}
    meta01 = _metadata(catalog, "sub-01/eeg/sub-01_task-rest_run-1_eeg.edf")
    assert meta01 == {"TaskName": "rest", "SamplingFrequency": 250, "PowerLineFrequency": 50}
    subjects = catalog.sql("SELECT participant_id, age FROM subjects ORDER BY 1")
    assert subjects == [{"participant_id": "sub-01", "age": "70"},
                        {"participant_id": "sub-02", "age": None}]


def test_every_file_has_the_entities_of_its_name(demo_db):
    catalog = Catalog(demo_db / ".ntdb" / "catalog")
    rows = catalog.sql("SELECT * FROM files WHERE bids AND sub IS NOT NULL")
    assert rows
    for row in rows:
        rel = row["path"] if row["pipeline"] is None else row["path"].split("/", 2)[2]
        entities, datatype, suffix, extension = split_relpath(rel)
        assert {k: row[k] for k in entities} == entities
        assert (row["datatype"], row["suffix"], row["extension"]) == (datatype, suffix, extension)


def test_demo_catalog_has_all_tables(demo_db):
    catalog = Catalog(demo_db / ".ntdb" / "catalog")
    datasets = {r["id"]: r for r in catalog.sql("SELECT * FROM datasets")}
    raw = {"eeg-rest", "mouse-ephys", "mri-dicom", "mri-template", "tacs-home", "tms-eeg"}
    deposited = {"eeg-rest-shared", "mri-template-shared"}  # anonymized, deposited, registered
    assert set(datasets) == raw | deposited
    assert {d for d in datasets if datasets[d]["doi"]} == deposited
    assert all(datasets[d]["doi"].startswith("10.5072/zenodo.") for d in deposited)
    assert datasets["eeg-rest"]["modality"] == "eeg"
    assert len(datasets["eeg-rest"]["commit"]) == 40
    deriv = catalog.sql("SELECT * FROM derivatives")
    assert sorted((d["dataset"], d["pipeline"]) for d in deriv) == [
        ("eeg-rest", "ntdb-nmm"), ("eeg-rest", "ntdb-twin"),
        ("mri-template", "ntdb-efield"), ("mri-template", "ntdb-headmodel"),
        ("mri-template", "ntdb-tissue"), ("mri-template-shared", "ntdb-tissue")]
    for d in deriv:
        assert json.loads(d["generated_by"])[0]["Name"] == d["pipeline"]
    n = catalog.sql("SELECT count(*) AS n FROM subjects WHERE dataset = 'eeg-rest'")
    assert n == [{"n": 3}]


@pytest.mark.datalad
def test_build_is_incremental(db):
    add_dataset(db, "a", modality="eeg")
    add_dataset(db, "b", modality="mri")
    first = build_catalog(db.root)
    assert sorted(first.indexed) == ["a", "b"]
    again = build_catalog(db.root)
    assert again.indexed == [] and sorted(again.skipped) == ["a", "b"]
    write(db.root / "b", "sub-01/anat/sub-01_T1w.json", "{}")
    dl.save(db.root / "b", "add a sidecar")
    third = build_catalog(db.root)
    assert third.indexed == ["b"] and third.skipped == ["a"]
    paths = [r["path"] for r in Catalog(db.catalog_dir).search(Filters(dataset=("b",)))]
    assert "sub-01/anat/sub-01_T1w.json" in paths
    status = subprocess.check_output(["git", "-C", str(db.root), "status", "--porcelain"],
                                     text=True)
    assert status == ""  # the catalog and the new subdataset state are recorded


def test_non_bids_files_are_reported_not_fatal(plain_bids):
    write(plain_bids, "sub-01/anat/my notes.txt", "x")
    write(plain_bids, "stray.bin", "x")
    write(plain_bids, "code/convert.py", "print()")
    result = build_catalog(plain_bids)
    assert result.written and not result.report.failed()
    flagged = sorted(str(i.path) for i in result.report if i.code == "FILE_NOT_BIDS")
    assert flagged == ["stray.bin", "sub-01/anat/my notes.txt"]


def test_bidsignore_silences_files(plain_bids):
    write(plain_bids, ".bidsignore", "extra/\n*_nibs.json\n")
    write(plain_bids, "extra/thing.txt", "x")
    write(plain_bids, "sub-01/nibs/sub-01_nibs.json", "{}")
    result = build_catalog(plain_bids)
    assert not [i for i in result.report if i.code == "FILE_NOT_BIDS"]


def test_invalid_json_sidecar_is_an_error_and_nothing_is_written(plain_bids):
    write(plain_bids, "sub-01/eeg/sub-01_task-rest_run-1_eeg.json", '{"SamplingFrequency": ')
    result = build_catalog(plain_bids)
    assert not result.written
    [issue] = [i for i in result.report if i.code == "INVALID_JSON"]
    assert str(issue.path) == "sub-01/eeg/sub-01_task-rest_run-1_eeg.json"
    assert not (plain_bids / ".ntdb").exists()


def test_malformed_participants_is_an_error_and_nothing_is_written(plain_bids):
    write(plain_bids, "participants.tsv", "participant_id\tage\nsub-01\t70\textra\n")
    result = build_catalog(plain_bids)
    assert not result.written
    [issue] = [i for i in result.report if i.code == "PARTICIPANTS_MALFORMED"]
    assert "line 2" in issue.message
    assert not (plain_bids / ".ntdb").exists()


def test_failed_rebuild_keeps_the_previous_catalog(plain_bids):
    build_catalog(plain_bids)
    before = (plain_bids / ".ntdb/catalog/files/plain.parquet").read_bytes()
    write(plain_bids, "participants.tsv", "age\tparticipant_id\n70\tsub-01\n")
    assert not build_catalog(plain_bids).written
    assert (plain_bids / ".ntdb/catalog/files/plain.parquet").read_bytes() == before


def test_out_option_writes_elsewhere(plain_bids, tmp_path):
    result = build_catalog(plain_bids, out=tmp_path / "cat")
    assert result.catalog_dir == tmp_path / "cat"
    assert (tmp_path / "cat" / "files" / "plain.parquet").is_file()
    assert not (plain_bids / ".ntdb").exists()


def test_a_folder_that_is_not_bids_is_refused(tmp_path):
    from neurotwin_db.errors import InputError

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a BIDS dataset"):
        build_catalog(tmp_path)
    assert not (tmp_path / ".ntdb").exists()


def test_out_must_be_new_or_a_catalog_and_outside(plain_bids, tmp_path):
    from neurotwin_db.errors import InputError

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    with pytest.raises(InputError, match="non-empty folder"):
        build_catalog(plain_bids, out=tmp_path / "busy")
    with pytest.raises(InputError, match="inside the indexed folder"):
        build_catalog(plain_bids, out=plain_bids / "catalog")
    build_catalog(plain_bids, out=tmp_path / "cat")
    assert build_catalog(plain_bids, out=tmp_path / "cat").written  # its own folder is fine


def test_catalog_files_are_readable_by_others(plain_bids):
    build_catalog(plain_bids)
    mode = (plain_bids / ".ntdb/catalog/files/plain.parquet").stat().st_mode & 0o777
    assert mode == 0o644


def test_damaged_catalog_says_rebuild_and_full_repairs_it(plain_bids):
    from neurotwin_db.errors import CatalogError

    build_catalog(plain_bids)
    (plain_bids / ".ntdb/catalog/files/plain.parquet").write_bytes(b"garbage")
    write(plain_bids, ".ntdb/catalog/files/stray.parquet", "more garbage")
    with pytest.raises(CatalogError, match="--full"):
        Catalog(plain_bids / ".ntdb" / "catalog")
    assert build_catalog(plain_bids, full=True).written
    assert Catalog(plain_bids / ".ntdb" / "catalog").search(Filters(sub=("01",)))


@pytest.mark.datalad
def test_unsaved_changes_are_reported(db):
    add_dataset(db, "a", modality="eeg")
    write(db.root / "a", "participants.tsv", "participant_id\nsub-09\n")
    result = build_catalog(db.root)
    assert [i.code for i in result.report] == ["UNSAVED_CHANGES"]
    assert result.written


@pytest.mark.datalad
def test_a_dataset_of_a_database_points_to_the_database(db):
    from neurotwin_db.errors import InputError

    add_dataset(db, "a", modality="eeg")
    with pytest.raises(InputError, match="belongs to the database"):
        build_catalog(db.root / "a")


@pytest.mark.datalad
def test_single_datalad_dataset_catalog_stays_out_of_git_status(tmp_path):
    from neurotwin_db.curation import write_skeleton

    root = dl.create_dataset(tmp_path / "ds")
    write_skeleton(root, "ds", modality="eeg", species="homo sapiens", authors=["A"],
                   license="CC0-1.0")
    dl.save(root, "skeleton")
    assert build_catalog(root).written
    status = subprocess.check_output(["git", "-C", str(root), "status", "--porcelain"],
                                     text=True)
    assert status == ""
