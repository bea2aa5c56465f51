"""The database registry: one versioned JSON file listing the database's datasets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from neurotwin_db._io import write_json
from neurotwin_db.errors import DatasetNotFoundError, InputError
from neurotwin_db.schemas import validate_instance

REGISTRY_FORMAT = 1


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """One registered dataset."""

    id: str
    title: str
    modality: str
    species: str
    version: str
    doi: str
    license: str
    path: str  # subdataset path relative to the database root
    location: str  # path or URL of the sibling it came from

    def with_(self, **changes: str) -> DatasetEntry:
        """Return a copy with fields changed."""
        return replace(self, **changes)


def read_registry(path: Path) -> list[DatasetEntry]:
    """Read and validate the registry file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        restore = f"git -C {path.parent.parent} checkout -- .ntdb/registry.json"
        raise InputError(f"{path} is not valid JSON ({exc}); restore it with `{restore}`"
                         ) from None
    validate_instance(data, "registry", source=str(path))
    return [DatasetEntry(**item) for item in data["datasets"]]


def write_registry(path: Path, entries: list[DatasetEntry]) -> Path:
    """Write the registry (sorted by id), atomically."""
    payload = {"format": REGISTRY_FORMAT,
               "datasets": [asdict(e) for e in sorted(entries, key=lambda e: e.id)]}
    validate_instance(payload, "registry", source=str(path))
    return write_json(path, payload, overwrite=True)


def find_entry(entries: list[DatasetEntry], dataset_id: str) -> DatasetEntry:
    """Return the entry with ``dataset_id`` or raise a helpful DatasetNotFoundError."""
    for entry in entries:
        if entry.id == dataset_id:
            return entry
    known = ", ".join(e.id for e in entries) or "none yet"
    raise DatasetNotFoundError(f"no dataset {dataset_id!r} in the registry; registered: {known} "
                               f"(add one with `ntdb dataset add` or `ntdb dataset register`)")
