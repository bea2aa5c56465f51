"""Build the catalog: index datasets in parallel, incrementally, and write Parquet."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from neurotwin_db import __version__
from neurotwin_db import datalad as dl
from neurotwin_db._io import atomic_target, write_json
from neurotwin_db.catalog._database import (
    Database,
    describe_dataset,
    is_database,
    open_database,
)
from neurotwin_db.catalog._doi import normalize_doi
from neurotwin_db.catalog._index import DatasetTables, IndexTask, index_dataset
from neurotwin_db.catalog._scan import is_git_repo
from neurotwin_db.errors import InputError
from neurotwin_db.parallel import iter_tasks
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress
from neurotwin_db.report import Issue, Report, Severity

TABLES = ("files", "metadata", "subjects", "derivatives")
DATASETS_SCHEMA = pa.schema([(name, pa.string()) for name in (
    "id", "name", "commit", "version", "doi", "license", "modality", "species", "path",
    "location")])


@dataclass
class BuildResult:
    """What a catalog build did."""

    catalog_dir: Path
    report: Report
    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files: int = 0
    written: bool = False


@dataclass(frozen=True, slots=True)
class _Target:
    row: dict[str, str]  # the datasets-table row
    root: Path
    commit: str | None
    installed: bool


def build_catalog(path: Path, *, out: Path | None = None, jobs: int | None = None,
                  scheduler: str | None = None, save: bool = True, full: bool = False,
                  progress: ProgressCallback = ignore_progress) -> BuildResult:
    """Index a database (or one BIDS dataset) into Parquet tables.

    Only datasets whose commit changed since the last build are re-indexed (``full``
    re-indexes all). When the report has an ERROR (invalid JSON, malformed
    participants.tsv) nothing is written.
    """
    path = Path(path).resolve()
    if not path.is_dir():
        raise InputError(f"{path} is not a folder; pass a database or a BIDS dataset")
    db = open_database(path) if is_database(path) else None
    if db is None:
        _check_single(path, out)
    catalog_dir = Path(out).resolve() if out else (
        db.catalog_dir if db else path / ".ntdb" / "catalog")
    if out:
        _check_out(catalog_dir, path)
    targets = _database_targets(db) if db else [_single_target(path)]
    state = {} if full else _read_state(catalog_dir)
    stale = [t for t in targets if _needs_index(t, state, catalog_dir)]
    result = BuildResult(catalog_dir, Report(),
                         skipped=[t.row["id"] for t in targets if t not in stale])
    result.report.extend(_unsaved(t) for t in targets if t.installed and _is_dirty(t.root))
    for target in stale:
        if not target.installed and db is not None:
            dl.install(db.root, [target.row["path"]])
        _install_derivatives(target.root)
    tasks = [IndexTask(t.row["id"], str(t.root), t.commit or dl.head_commit(t.root))
             if is_git_repo(t.root) else IndexTask(t.row["id"], str(t.root), None)
             for t in stale]
    tables: list[DatasetTables] = []
    for done, (_, tab) in enumerate(iter_tasks(index_dataset, tasks, jobs=jobs,
                                               scheduler=scheduler), start=1):
        tables.append(tab)
        result.report.extend(tab.issues)
        progress(Progress(tab.dataset_id, done, len(tasks), "indexed"))
    result.indexed = [t.dataset_id for t in tables]
    if result.report.failed():
        return result
    _write(catalog_dir, targets, tables, state)
    result.written = True
    result.files = _count_files(catalog_dir, [t.row["id"] for t in targets])
    if db is None and not out and is_git_repo(path):
        _exclude_from_git(path, ".ntdb/")
    if db is not None and save and catalog_dir == db.catalog_dir:
        dl.save(db.root, "catalog build", paths=[catalog_dir, *[t.row["path"] for t in targets]],
                record={"action": "catalog-build", "indexed": result.indexed,
                        "skipped": result.skipped})
    return result


def _check_single(path: Path, out: Path | None) -> None:
    if not (path / "dataset_description.json").is_file():
        raise InputError(f"{path} is not a BIDS dataset (no dataset_description.json) nor a "
                         f"Neurotwin database (no .ntdb/config.json); pass one of those")
    if out is None and is_database(path.parent):
        raise InputError(f"{path} belongs to the database {path.parent}; run `ntdb catalog "
                         f"build {path.parent}` (or pass --out DIR to index it alone)")


def _check_out(catalog_dir: Path, path: Path) -> None:
    inside = catalog_dir.is_relative_to(path)
    if inside and not catalog_dir.is_relative_to(path / ".ntdb"):
        raise InputError(f"--out {catalog_dir} is inside the indexed folder {path}; the "
                         f"catalog would index itself: choose a folder outside it")
    is_catalog = (catalog_dir / "state.json").is_file()
    if catalog_dir.exists() and any(catalog_dir.iterdir()) and not is_catalog:
        raise InputError(f"--out {catalog_dir} is a non-empty folder that holds no catalog; "
                         f"choose a new folder")


def _is_dirty(root: Path) -> bool:
    if not is_git_repo(root):
        return False
    out = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", ".",
                          ":(exclude).ntdb"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def _unsaved(target: _Target) -> Issue:
    return Issue("UNSAVED_CHANGES", Severity.WARNING,
                 "the dataset has unsaved changes; the catalog holds its last saved state",
                 None, f"datalad save -d {target.root}", target.row["id"])


def _exclude_from_git(root: Path, pattern: str) -> None:
    """Keep a local catalog out of ``git status`` (a local setting, not a commit)."""
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--git-path", "info/exclude"],
                         capture_output=True, text=True)
    exclude = root / out.stdout.strip()
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if pattern not in lines:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("\n".join([*lines, pattern]) + "\n")


def _database_targets(db: Database) -> list[_Target]:
    targets = []
    for entry in db.entries():
        root = db.root / entry.path
        installed = (root / ".git").exists()
        commit = dl.head_commit(root) if installed else _gitlink(db.root, entry.path)
        version = (dl.version_tag(root, commit) if installed and commit else None) or entry.version
        row = {"id": entry.id, "name": entry.title, "commit": commit or "", "version": version,
               "doi": normalize_doi(entry.doi), "license": entry.license,
               "modality": entry.modality, "species": entry.species, "path": entry.path,
               "location": entry.location}
        targets.append(_Target(row, root, commit, installed))
    return targets


def _single_target(root: Path) -> _Target:
    git = is_git_repo(root)
    commit = dl.head_commit(root) if git else None
    facts = {"title": root.name, "license": "", "doi": "", "species": "", "modality": ""}
    if (root / "dataset_description.json").is_file():
        facts = describe_dataset(root, str(root), strict=False)
    row = {"id": root.name, "name": facts["title"], "commit": commit or "",
           "version": (dl.version_tag(root, commit) if commit else None) or "",
           "doi": normalize_doi(facts["doi"]), "license": facts["license"],
           "modality": facts["modality"], "species": facts["species"], "path": ".",
           "location": str(root)}
    return _Target(row, root, commit, True)


def _gitlink(super_root: Path, path: str) -> str | None:
    out = subprocess.run(["git", "-C", str(super_root), "ls-tree", "HEAD", path],
                         capture_output=True, text=True).stdout.split()
    return out[2] if len(out) >= 3 and out[1] == "commit" else None


def _install_derivatives(root: Path) -> None:
    """Install (without content) derivative subdatasets so their trees can be read."""
    if not is_git_repo(root):
        return
    out = subprocess.run(["git", "-C", str(root), "ls-tree", "HEAD", "derivatives/"],
                         capture_output=True, text=True).stdout.splitlines()
    missing = [line.split("\t", 1)[1] for line in out
               if line.split()[1:2] == ["commit"] and
               not (root / line.split("\t", 1)[1] / ".git").exists()]
    dl.install(root, missing)


def _needs_index(target: _Target, state: dict[str, dict[str, str]], catalog_dir: Path) -> bool:
    seen = state.get(target.row["id"], {})
    if target.commit is None or seen.get("commit") != target.commit:
        return True
    if seen.get("ntdb") != __version__:
        return True
    return not all(_table_path(catalog_dir, t, target.row["id"]).exists() for t in TABLES)


def _table_path(catalog_dir: Path, table: str, dataset_id: str) -> Path:
    return catalog_dir / table / f"{dataset_id}.parquet"


def _read_state(catalog_dir: Path) -> dict[str, dict[str, str]]:
    path = catalog_dir / "state.json"
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["datasets"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}  # a damaged state only costs a full re-index


def _write(catalog_dir: Path, targets: list[_Target], tables: list[DatasetTables],
           state: dict[str, dict[str, str]]) -> None:
    by_id = {t.row["id"]: t for t in targets}
    for tab in tables:
        for name in TABLES:
            _write_parquet(getattr(tab, name), _table_path(catalog_dir, name, tab.dataset_id))
        state[tab.dataset_id] = {"commit": by_id[tab.dataset_id].commit or "", "ntdb": __version__}
    for gone in set(state) - set(by_id):
        for name in TABLES:
            _table_path(catalog_dir, name, gone).unlink(missing_ok=True)
        del state[gone]
    rows = [t.row for t in targets]
    _write_parquet(pa.Table.from_pylist(rows, schema=DATASETS_SCHEMA),
                   catalog_dir / "datasets.parquet")
    write_json(catalog_dir / "state.json", {"format": 1, "datasets": state}, overwrite=True)


def _write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_target(path) as tmp:  # 0644: a catalog is meant to be shared
        pq.write_table(table, tmp)


def _count_files(catalog_dir: Path, dataset_ids: list[str]) -> int:
    return sum(pq.ParquetFile(_table_path(catalog_dir, "files", i)).metadata.num_rows
               for i in dataset_ids)
