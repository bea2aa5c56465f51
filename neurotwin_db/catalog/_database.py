"""The Neurotwin database: a DataLad superdataset with ``.ntdb/`` and a dataset registry."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from neurotwin_db import __version__
from neurotwin_db import datalad as dl
from neurotwin_db._io import write_json, write_text
from neurotwin_db.catalog._registry import (
    DatasetEntry,
    find_entry,
    read_registry,
    write_registry,
)
from neurotwin_db.curation import MODALITIES, SPECIES, parse_participants, write_skeleton
from neurotwin_db.errors import DataladError, InputError, NotADatabaseError

_DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]*")
_DATATYPE_MODALITY = {"anat": "mri", "dwi": "mri", "func": "mri", "fmap": "mri",
                      "perf": "mri", "eeg": "eeg"}


@dataclass(frozen=True, slots=True)
class Database:
    """A Neurotwin database rooted at ``root``."""

    root: Path

    @property
    def ntdb_dir(self) -> Path:
        """The database's own folder, ``.ntdb/``."""
        return self.root / ".ntdb"

    @property
    def catalog_dir(self) -> Path:
        """Where the Parquet catalog lives."""
        return self.ntdb_dir / "catalog"

    @property
    def registry_path(self) -> Path:
        """The versioned registry file."""
        return self.ntdb_dir / "registry.json"

    def entries(self) -> list[DatasetEntry]:
        """The registered datasets."""
        return read_registry(self.registry_path)

    def entry(self, dataset_id: str) -> DatasetEntry:
        """One registered dataset by id."""
        return find_entry(self.entries(), dataset_id)


def is_database(path: Path) -> bool:
    """Whether ``path`` is a Neurotwin database."""
    return (Path(path) / ".ntdb" / "config.json").is_file()


def open_database(path: Path) -> Database:
    """Open the database at ``path`` or raise NotADatabaseError."""
    path = Path(path).resolve()
    if not is_database(path):
        raise NotADatabaseError(path)
    config = path / ".ntdb" / "config.json"
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{config} is damaged ({exc}); restore it with "
                         f"`git -C {path} checkout -- .ntdb/config.json`") from None
    return Database(path)


def init_database(path: Path, *, name: str | None = None) -> Database:
    """Create a new database at ``path``: a DataLad superdataset with ``.ntdb/``."""
    path = Path(path).resolve()
    if name is not None and not _NAME.fullmatch(name):
        raise InputError(f"database name {name!r} is not allowed; use letters, digits, "
                         f"spaces, '.', '_' and '-'")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path} is not an empty folder; `ntdb init` needs a new or empty "
                         f"folder (to add datasets to an existing database, use "
                         f"`ntdb dataset add`)")
    enclosing = next((p for p in path.parents if dl.is_dataset(p)), None)
    if enclosing is not None:
        raise InputError(f"{path} is inside the DataLad dataset {enclosing}; create the "
                         f"database outside any dataset (or add a dataset to a database "
                         f"with `ntdb dataset add`)")
    dl.ensure_tools()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {path}: {exc.strerror}; choose a writable folder"
                         ) from None
    dl.create_dataset(path)
    db = Database(path)
    write_json(db.ntdb_dir / "config.json",
               {"format": 1, "name": name or path.name, "created_with": __version__})
    write_registry(db.registry_path, [])
    write_text(path / ".ntdb" / ".gitattributes", "** annex.largefiles=nothing\n")
    dl.save(path, f"init database {name or path.name}", record={"action": "init"})
    return db


def add_dataset(db: Database, name: str, *, modality: str, species: str | None = None,
                title: str | None = None, authors: list[str] | None = None,
                license: str = "CC-BY-4.0") -> DatasetEntry:
    """Create a new BIDS dataset ``name`` as a subdataset of ``db`` and register it."""
    _check_id(name, db)
    if modality not in MODALITIES:
        raise InputError(f"modality {modality!r} is not known; choose one of {list(MODALITIES)}")
    species = species or ("mus musculus" if modality == "rodent" else "homo sapiens")
    if species not in SPECIES:
        raise InputError(f"species {species!r} is not supported; choose one of {list(SPECIES)}")
    if modality == "rodent" and species == "homo sapiens":
        raise InputError("modality 'rodent' needs an animal species, e.g. --species "
                         "'mus musculus'")
    target = db.root / name
    dl.create_dataset(target)  # the superdataset records it below, in one commit
    write_skeleton(target, title or name, modality=modality, species=species,
                   authors=authors or [_git_user()], license=license)
    dl.save(target, f"create BIDS dataset {name}",
            record={"action": "dataset-add", "modality": modality})
    entry = DatasetEntry(id=name, title=title or name, modality=modality, species=species,
                         version="", doi="", license=license, path=name, location=name)
    _register(db, entry, action="dataset-add")
    return entry


def register_dataset(db: Database, source: str, *, name: str | None = None,
                     modality: str | None = None, species: str | None = None) -> DatasetEntry:
    """Clone an existing DataLad dataset into ``db`` as a subdataset and register it."""
    name = name or Path(source.rstrip("/")).name.removesuffix(".git")
    _check_id(name, db)
    if modality is not None and modality not in MODALITIES:
        raise InputError(f"modality {modality!r} is not known; choose one of {list(MODALITIES)}")
    if Path(source).exists():
        source = str(Path(source).resolve())
        if not dl.is_dataset(Path(source)):
            raise InputError(f"{source} is not a DataLad dataset; make it one with "
                             f"`datalad create --force {source}` and `datalad save`")
        facts = describe_dataset(Path(source), source)
    else:  # a URL: clone once aside, to check it before touching the database
        with tempfile.TemporaryDirectory(prefix="ntdb-register-") as tmp:
            try:
                probe = dl.clone(source, Path(tmp) / "probe")
            except DataladError as exc:
                raise InputError(f"cannot clone {source}: {exc}; check the URL or path"
                                 ) from None
            facts = describe_dataset(probe, source)
    target = db.root / name
    dl.clone(source, target, superdataset=db.root)
    commit = dl.head_commit(target) or ""
    entry = DatasetEntry(
        id=name, title=facts["title"], modality=modality or facts["modality"],
        species=species or facts["species"], version=dl.version_tag(target, commit) or "",
        doi=facts["doi"], license=facts["license"], path=name, location=source)
    _register(db, entry)
    return entry


def record_doi(db: Database, dataset_id: str, *, doi: str, version: str) -> DatasetEntry:
    """Record the DOI and version (tag) of a deposited dataset in the registry (one save)."""
    entry = db.entry(dataset_id).with_(doi=doi.removeprefix("doi:"), version=version)
    _register(db, entry, action="deposit")
    return entry


def _register(db: Database, entry: DatasetEntry, *, action: str = "register") -> None:
    entries = [e for e in db.entries() if e.id != entry.id] + [entry]
    write_registry(db.registry_path, entries)
    dl.save(db.root, f"{action} {entry.id}", paths=[db.registry_path, entry.path],
            record={"action": action, "dataset": entry.id})


def _check_id(name: str, db: Database) -> None:
    if not _DATASET_ID.fullmatch(name):
        clean = re.sub(r"[^A-Za-z0-9-]", "", name).lstrip("-") or "mydataset"
        raise InputError(f"dataset name {name!r} is not allowed; use letters, digits and '-' "
                         f"(no '/', '..' or spaces), e.g. {clean!r}")
    if any(e.id == name for e in db.entries()):
        raise InputError(f"a dataset named {name!r} is already registered in {db.root}; "
                         f"choose another NAME (see `ntdb dataset list {db.root}`)")
    if (db.root / name).exists():
        raise InputError(f"{db.root / name} already exists on disk; choose another NAME or "
                         f"move that folder away")


def describe_dataset(root: Path, source: str, *, strict: bool = True) -> dict[str, str]:
    """Read title, license, DOI, species and modality from a dataset's metadata files.

    With ``strict=False`` a malformed participants.tsv leaves the species empty (the
    catalog build reports it as an issue instead).
    """
    desc_path = root / "dataset_description.json"
    if not desc_path.is_file():
        raise InputError(f"{source} has no dataset_description.json; only BIDS datasets can "
                         f"be registered (create one with `ntdb dataset add`)")
    try:
        desc = json.loads(desc_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: dataset_description.json is not valid JSON ({exc})") from None
    species = "homo sapiens"
    participants = root / "participants.tsv"
    if participants.is_file():
        try:
            rows = parse_participants(participants.read_text(encoding="utf-8"),
                                      source=f"{source}/participants.tsv")
        except InputError:
            if strict:
                raise
            rows = []
        found = sorted({r["species"] for r in rows if r.get("species")})
        species = ", ".join(found) if found else species
    if (root / ".git").exists():
        tree = subprocess.run(["git", "-C", str(root), "ls-tree", "-r", "-d", "--name-only",
                               "HEAD"], capture_output=True, text=True).stdout.split()
    else:
        tree = [p.name for pattern in ("sub-*/*/", "sub-*/ses-*/*/") for p in root.glob(pattern)]
    kinds = {_DATATYPE_MODALITY[p.rsplit("/", 1)[-1]] for p in tree
             if p.rsplit("/", 1)[-1] in _DATATYPE_MODALITY}
    modality = ("rodent" if species != "homo sapiens" else
                kinds.pop() if len(kinds) == 1 else "multi")
    doi = str(desc.get("DatasetDOI", "")).removeprefix("doi:")
    return {"title": str(desc.get("Name", Path(source).name)), "license":
            str(desc.get("License", "")), "doi": doi, "species": species, "modality": modality}


def _git_user() -> str:
    out = subprocess.run(["git", "config", "--get", "user.name"], capture_output=True, text=True)
    return out.stdout.strip() or "Unknown author"
