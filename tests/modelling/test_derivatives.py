"""Derivatives cite their inputs: SourceDataset.of reads DatasetDOI and the version tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurotwin_db import datalad as dl
from neurotwin_db.errors import InputError
from neurotwin_db.modelling import SourceDataset, create_derivative, derivative_description


def _raw(root: Path, doi: str | None) -> Path:
    dl.create_dataset(root)
    description = {"Name": "raw", "BIDSVersion": "1.10.0"}
    if doi:
        description["DatasetDOI"] = doi
    (root / "dataset_description.json").write_text(json.dumps(description))
    dl.save(root, "description")
    return root


def test_deposited_source_is_cited_by_doi_and_tag(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw", "doi:10.5072/Zenodo.42")
    dl.tag(raw, "v1.0.0", message="deposit v1.0.0")
    source = SourceDataset.of(raw, url="https://example.org/raw")
    assert (source.doi, source.version) == ("10.5072/zenodo.42", "v1.0.0")
    assert source.as_bids() == {"URL": "https://example.org/raw", "Version": "v1.0.0",
                                "DOI": "doi:10.5072/zenodo.42"}
    derivative = create_derivative(raw, "ntdb-test", name="test", sources=[source])
    written = json.loads((derivative / "dataset_description.json").read_text())
    assert written["SourceDatasets"] == [source.as_bids()]


def test_changes_after_the_tag_are_cited_by_commit(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw", None)
    dl.tag(raw, "v1.0.0", message="v1.0.0")
    (raw / "README.md").write_text("more\n")
    dl.save(raw, "readme")
    source = SourceDataset.of(raw)
    assert source.version == dl.head_commit(raw)
    assert source.doi == ""
    assert "DOI" not in derivative_description("d", "p", [source])["SourceDatasets"][0]


def test_a_source_without_description_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dataset_description.json"):
        SourceDataset.of(tmp_path)
