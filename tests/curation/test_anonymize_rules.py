"""The pure anonymization rules: labels, dates, sidecars, tables and NIfTI headers."""

from __future__ import annotations

from datetime import timedelta

import nibabel as nib
import numpy as np
import pytest

from neurotwin_db.curation.anonymize._rules import (
    anonymize_table,
    clean_nifti,
    gzip_bytes,
    replace_labels,
    scrub_sidecar,
    shift_datetime,
)
from neurotwin_db.curation.phi import load_policy
from neurotwin_db.errors import InputError

POLICY = load_policy()
DAYS = timedelta(days=-4000)


def test_labels_are_replaced_whole() -> None:
    subjects = {"01": "pabc", "1": "pdef"}
    assert replace_labels("sub-01/eeg/sub-01_x.edf sub-010 sub-1", subjects) == \
        "sub-pabc/eeg/sub-pabc_x.edf sub-010 sub-pdef"


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-06", "2013-05-24"),
    ("2024-05-06T10:11:12", "2013-05-24T10:11:12"),
    ("2024-05-06T10:11:12.500000Z", "2013-05-24T10:11:12.500000Z"),
    ("2024-05-06T10:11", "2013-05-24T10:11"),
    ("10:11:12", None),
    ("rest", None),
])
def test_dates_keep_their_format_and_time(value: str, expected: str | None) -> None:
    assert shift_datetime(value, DAYS) == expected


def test_sidecars_keep_bids_fields_minus_the_deny_list() -> None:
    data = {"TaskName": "rest", "InstitutionName": "AKH", "MyNote": "x",
            "IntendedFor": ["bids::sub-01/func/sub-01_bold.nii.gz"],
            "AcquisitionDateTime": "2024-05-06T10:11:12", "SamplingFrequency": 250}
    allowed = frozenset({"TaskName", "IntendedFor", "SamplingFrequency"})
    out, notes = scrub_sidecar(data, allowed=allowed, policy=POLICY, shift=DAYS,
                               subjects={"01": "pabc"})
    assert out == {"TaskName": "rest", "IntendedFor": ["bids::sub-pabc/func/sub-pabc_bold.nii.gz"],
                   "SamplingFrequency": 250}
    assert "drop InstitutionName (identifying)" in notes
    assert "drop MyNote (not a BIDS field)" in notes


def test_dates_in_sidecars_are_shifted_or_dropped_without_a_subject() -> None:
    allowed = frozenset({"Nested"})
    data = {"Nested": {"When": "2024-05-06T10:11:12", "Value": 3}}
    shifted, _ = scrub_sidecar(data, allowed=allowed, policy=POLICY, shift=DAYS, subjects={})
    assert shifted == {"Nested": {"When": "2013-05-24T10:11:12", "Value": 3}}
    dropped, _ = scrub_sidecar(data, allowed=allowed, policy=POLICY, shift=None, subjects={})
    assert dropped == {"Nested": {"Value": 3}}


def test_tables_drop_columns_cap_ages_and_shift_every_absolute_time() -> None:
    text = ("participant_id\tname\tage\tvisit_date\nsub-01\tJane Doe\t93\t2024-05-06\n"
            "sub-02\tJohn Roe\t70\tn/a\n")
    out, notes = anonymize_table(text, "participants.tsv", policy=POLICY,
                                 subjects={"01": "pa", "02": "pb"},
                                 shifts={"01": DAYS, "02": DAYS})
    assert out == ("participant_id\tage\tvisit_date\nsub-pa\t89\t2013-05-24\n"
                   "sub-pb\t70\tn/a\n")
    assert notes == ["drop column name (identifying)", "shift 1 date(s)", "cap 1 age(s) at 89"]
    events = "onset\tduration\twall_clock\n1.0\t0.5\t2024-05-06T10:11:13\n"
    out, _ = anonymize_table(events, "sub-01/eeg/sub-01_task-x_events.tsv", policy=POLICY,
                             subjects={"01": "pa"}, shifts={"01": DAYS})
    assert "2013-05-24T10:11:13" in out
    with pytest.raises(InputError, match="no known subject"):
        anonymize_table("filename\tacq_time\nx.edf\t2024-05-06T10:00:00\n", "scans.tsv",
                        policy=POLICY, subjects={}, shifts={})


@pytest.mark.parametrize("klass", [nib.Nifti1Image, nib.Nifti2Image])
def test_nifti_text_and_extensions_go_and_voxels_stay(klass: type) -> None:
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    image = klass(data, np.eye(4))
    image.header["descrip"] = b"Jane Doe 19480315"
    image.header["aux_file"] = b"MRN0012345"
    image.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"PatientName=Doe^Jane"))
    raw = image.to_bytes()
    new, notes = clean_nifti(raw)
    assert notes == ["clear descrip", "clear aux_file", "drop 1 header extension(s)"]
    assert b"Doe" not in new and b"MRN" not in new
    back = klass.from_bytes(new)
    assert np.array_equal(np.asanyarray(back.dataobj), data)
    assert clean_nifti(new) == (new, [])  # a clean header is left as it is
    assert gzip_bytes(new) == gzip_bytes(new)  # deterministic compression
