from pathlib import Path

import pytest

from neurotwin_db.bidspath import BIDSPath, bids_schema, entity_order, split_relpath
from neurotwin_db.errors import EntityError


def test_entity_order_comes_from_the_bundled_schema():
    schema = bids_schema()
    expected = tuple(schema.objects.entities[name].name for name in schema.rules.entities)
    assert entity_order() == expected
    assert entity_order().index("sub") < entity_order().index("ses") < entity_order().index(
        "task") < entity_order().index("run") < entity_order().index("desc")


def test_create_orders_entities_whatever_the_keyword_order():
    p = BIDSPath.create(run="1", task="rest", sub="01", datatype="eeg", suffix="eeg",
                        extension=".edf")
    assert p.basename == "sub-01_task-rest_run-1_eeg.edf"
    assert p.relpath == "sub-01/eeg/sub-01_task-rest_run-1_eeg.edf"


def test_parse_and_format_round_trip():
    rel = "sub-01/ses-pre/eeg/sub-01_ses-pre_task-rest_acq-hd_run-02_eeg.vhdr"
    p = BIDSPath.parse(rel)
    assert p.relpath == rel
    assert p.entity_dict == {"sub": "01", "ses": "pre", "task": "rest", "acq": "hd",
                             "run": "02"}
    assert (p.datatype, p.suffix, p.extension) == ("eeg", "eeg", ".vhdr")


def test_with_returns_a_new_object_and_can_drop_entities():
    p = BIDSPath.create(sub="01", task="rest", suffix="eeg", extension=".edf")
    q = p.with_(task=None, ses="a", extension=".json")
    assert p.basename == "sub-01_task-rest_eeg.edf"
    assert q.basename == "sub-01_ses-a_eeg.json"
    with pytest.raises(AttributeError):
        p.suffix = "bold"  # type: ignore[misc]


def test_fspath_joins_root(tmp_path: Path):
    p = BIDSPath.create(root=tmp_path, sub="01", datatype="anat", suffix="T1w",
                        extension=".nii.gz")
    assert Path(p) == tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz"


@pytest.mark.parametrize("value", ["../x", "a/b", ".."])
def test_labels_that_escape_the_root_are_refused(value):
    with pytest.raises(EntityError, match="escape the dataset root"):
        BIDSPath.create(sub=value, suffix="T1w")


def test_non_alphanumeric_label_gets_a_suggested_fix():
    with pytest.raises(EntityError, match=r"try sub='P01'"):
        BIDSPath.create(sub="P_01", suffix="T1w")


def test_index_entities_must_be_numbers_and_enums_are_checked():
    with pytest.raises(EntityError, match="index"):
        BIDSPath.create(sub="01", run="one", suffix="bold")
    with pytest.raises(EntityError, match="choose one of"):
        BIDSPath.create(sub="01", part="left", suffix="bold")
    with pytest.raises(EntityError, match="unknown BIDS entity"):
        BIDSPath.create(sub="01", foo="bar", suffix="bold")


def test_parse_refuses_paths_outside_root(tmp_path: Path):
    with pytest.raises(EntityError, match="escape"):
        BIDSPath.parse("../sub-01/anat/sub-01_T1w.nii.gz")
    with pytest.raises(EntityError, match="outside the dataset root"):
        BIDSPath.parse("/elsewhere/sub-01_T1w.nii.gz", root=tmp_path)


def test_out_of_order_names_get_the_corrected_name():
    with pytest.raises(EntityError, match="sub-01_task-rest_run-1_eeg.edf"):
        split_relpath("sub-01/eeg/sub-01_run-1_task-rest_eeg.edf")


def test_folder_must_match_the_name():
    with pytest.raises(EntityError, match="does not match the folder: sub-02"):
        split_relpath("sub-02/anat/sub-01_T1w.nii.gz")


def test_lenient_parse_returns_none():
    assert BIDSPath.parse("sub-01/anat/notes about it.txt", on_error="ignore") is None


def test_name_without_the_folder_label_says_so():
    with pytest.raises(EntityError, match="lacks sub-01"):
        split_relpath("sub-01/anat/notes.txt")


def test_prefixed_label_suggests_the_bare_label():
    with pytest.raises(EntityError, match="try sub='04'"):
        BIDSPath.create(sub="sub-04", suffix="T1w")
