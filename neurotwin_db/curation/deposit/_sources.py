"""Read what a deposit's metadata is built from: dataset_description, CITATION.cff, README.

This is the IO edge; :mod:`._datacite` turns a :class:`DatasetSources` into metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurotwin_db.curation import parse_participants
from neurotwin_db.curation.deposit._vocab import DATATYPE_SUBJECTS
from neurotwin_db.errors import InputError

README_NAMES = ("README.md", "README", "README.rst", "README.txt")
DOI_PATTERN = re.compile(r"10\.\d{4,9}/\S+")


@dataclass(frozen=True, slots=True)
class DatasetSources:
    """The metadata files of one dataset, as read."""

    root: Path
    description: dict[str, Any]
    citation: dict[str, Any] = field(default_factory=dict)  # CITATION.cff, if any
    readme: str = ""
    species: tuple[str, ...] = ()
    datatypes: tuple[str, ...] = ()


def read_sources(root: Path, files: Iterable[str] = ()) -> DatasetSources:
    """Read ``root``'s metadata files; ``files`` (relative paths) give the datatypes."""
    root = Path(root)
    path = root / "dataset_description.json"
    if not path.is_file():
        raise InputError(f"{root} has no dataset_description.json; only BIDS datasets can be "
                         f"deposited (create one with `ntdb dataset add`)")
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix it and save the dataset"
                         ) from None
    if not isinstance(description, dict):
        raise InputError(f"{path} holds a {type(description).__name__}, not a JSON object; "
                         f"see the BIDS dataset_description.json fields")
    return DatasetSources(root, description, citation=_read_cff(root / "CITATION.cff"),
                          readme=_read_readme(root), species=_species(root),
                          datatypes=datatypes_of(files))


def _read_cff(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"{path} is not valid YAML ({first}); check it with `cffconvert "
                         f"--validate` or remove it") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a CITATION.cff mapping; see https://citation-file-"
                         f"format.github.io for its format")
    return data


def _read_readme(root: Path) -> str:
    for name in README_NAMES:
        if (root / name).is_file():
            return (root / name).read_text(encoding="utf-8", errors="replace").strip()
    return ""


def _species(root: Path) -> tuple[str, ...]:
    table = root / "participants.tsv"
    if not table.is_file():
        return ()
    rows = parse_participants(table.read_text(encoding="utf-8"), source=str(table))
    return tuple(sorted({str(r["species"]).strip().lower() for r in rows if r.get("species")}))


def datatypes_of(files: Iterable[str]) -> tuple[str, ...]:
    """The BIDS datatypes (``eeg``, ``anat``, ...) that hold files.

    >>> datatypes_of(["sub-01/eeg/a.edf", "sub-01/ses-1/anat/b.nii.gz", "README.md"])
    ('anat', 'eeg')
    """
    found = set()
    for path in files:
        parts = path.split("/")
        if not parts[0].startswith("sub-") or len(parts) < 3:
            continue
        folder = parts[2] if parts[1].startswith("ses-") and len(parts) >= 4 else parts[1]
        if folder in DATATYPE_SUBJECTS:
            found.add(folder)
    return tuple(sorted(found))


def find_doi(value: object) -> str | None:
    """The DOI in ``value`` (``doi:``, resolver URL or bare), lower-cased; None if absent.

    >>> find_doi("https://doi.org/10.1016/J.NeuroImage.2023.119938"), find_doi("a text")
    ('10.1016/j.neuroimage.2023.119938', None)
    """
    if not isinstance(value, str):
        return None
    match = DOI_PATTERN.search(value.strip())
    return match.group(0).rstrip(".,;)").lower() if match else None
