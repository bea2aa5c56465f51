"""BIDS derivative datasets: DataLad subdatasets that say what made them and from what.

Each derivative lives in ``<dataset>/derivatives/<pipeline>/`` (YODA style) with a
``dataset_description.json`` carrying ``DatasetType: derivative``, ``GeneratedBy`` and
``SourceDatasets`` (URL, DOI and version of every input).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neurotwin_db import __version__
from neurotwin_db import datalad as dl
from neurotwin_db._io import write_json, write_text
from neurotwin_db.bidspath import bids_version
from neurotwin_db.errors import InputError

CODE_URL = "https://pypi.org/project/neurotwin-db/"
_PIPELINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


@dataclass(frozen=True, slots=True)
class SourceDataset:
    """One input of a derivative: where it is, its DOI (if deposited) and its version."""

    url: str
    version: str
    doi: str = ""

    @classmethod
    def of(cls, dataset: Path, url: str | None = None) -> SourceDataset:
        """Describe a local dataset as an input: its ``DatasetDOI`` and its version.

        The version is the dataset's version tag at HEAD (``v1.0.0`` after ``ntdb
        deposit``), else the HEAD commit; a deposited input is so always cited by DOI.
        """
        description_path = Path(dataset) / "dataset_description.json"
        try:
            description = json.loads(description_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {description_path} ({exc}); a source of a "
                             "derivative must be a BIDS dataset") from None
        commit = dl.head_commit(Path(dataset)) or ""
        tagged = dl.version_tag(Path(dataset), commit) if commit else None
        exact = tagged and dl.git(Path(dataset), "rev-list", "-n", "1", tagged
                                  ).decode().strip() == commit
        from neurotwin_db.catalog._doi import normalize_doi  # the catalog package loads DuckDB

        doi = str(description.get("DatasetDOI") or "")
        return cls(url or str(Path(dataset).resolve()), tagged if exact else commit,
                   normalize_doi(doi) if doi else "")

    def as_bids(self) -> dict[str, str]:
        """The ``SourceDatasets`` entry."""
        entry = {"URL": self.url, "Version": self.version}
        if self.doi:
            entry["DOI"] = self.doi if self.doi.startswith("doi:") else f"doi:{self.doi}"
        return entry


def derivative_description(name: str, pipeline: str, sources: Sequence[SourceDataset], *,
                           description: str = "") -> dict[str, object]:
    """The ``dataset_description.json`` of a derivative (pure).

    >>> d = derivative_description("Tissues", "ntdb-tissue", [SourceDataset("bids::", "abc")])
    >>> d["DatasetType"], d["GeneratedBy"][0]["Name"], d["SourceDatasets"]
    ('derivative', 'ntdb-tissue', [{'URL': 'bids::', 'Version': 'abc'}])
    """
    generated: dict[str, object] = {"Name": pipeline, "Version": __version__,
                                    "CodeURL": CODE_URL}
    if description:
        generated["Description"] = description
    return {
        "Name": name,
        "BIDSVersion": bids_version(),
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [s.as_bids() for s in sources],
    }


def create_derivative(parent: Path, pipeline: str, *, name: str,
                      sources: Sequence[SourceDataset], description: str = "") -> Path:
    """Create ``parent/derivatives/<pipeline>`` as a DataLad subdataset with its description.

    The caller writes the derivative's files and then calls :func:`save_derivative`.
    """
    if not _PIPELINE.fullmatch(pipeline):
        raise InputError(f"pipeline name {pipeline!r} must use letters, digits and '-', "
                         f"e.g. 'ntdb-headmodel'")
    root = Path(parent) / "derivatives" / pipeline
    if root.exists():
        raise InputError(f"{root} already exists; choose another pipeline name or remove it "
                         f"with `datalad remove -d {parent} {root}`")
    dl.create_dataset(root, superdataset=Path(parent))
    write_json(root / "dataset_description.json",
               derivative_description(name, pipeline, sources, description=description))
    write_text(root / "README.md", f"# {name}\n\nBIDS derivative made by {pipeline} "
                                   f"(neurotwin-db {__version__}).\n")
    return root


def open_derivative(parent: Path, pipeline: str, *, name: str,
                    sources: Sequence[SourceDataset], description: str = "") -> Path:
    """The derivative ``parent/derivatives/<pipeline>``, created on first use.

    A derivative that already exists (from another subject) is reused, with its
    ``SourceDatasets`` entries updated to the sources' current versions.
    """
    root = Path(parent) / "derivatives" / pipeline
    if not (root / "dataset_description.json").is_file():
        return create_derivative(parent, pipeline, name=name, sources=sources,
                                 description=description)
    path = root / "dataset_description.json"
    current = json.loads(path.read_text(encoding="utf-8"))
    fresh = [s.as_bids() for s in sources]
    urls = {entry["URL"] for entry in fresh}
    kept = [e for e in current.get("SourceDatasets", []) if e.get("URL") not in urls]
    if kept + fresh != current.get("SourceDatasets"):
        current["SourceDatasets"] = kept + fresh
        write_json(path, current, overwrite=True)
    return root


def save_derivative(parent: Path, pipeline: str, summary: str) -> None:
    """Save the derivative subdataset, then record its new state in the parent."""
    root = Path(parent) / "derivatives" / pipeline
    dl.save(root, summary, record={"action": "derivative", "pipeline": pipeline})
    dl.save(Path(parent), f"update derivative {pipeline}", paths=[root],
            record={"action": "derivative", "pipeline": pipeline})
