"""Fetch exactly the files a search matches, with ``datalad get``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db.catalog._database import is_database, open_database
from neurotwin_db.catalog._query import Catalog, Filters
from neurotwin_db.errors import CatalogError
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress


@dataclass
class GetResult:
    """The files a get matched, and what happened to each."""

    root: Path
    files: list[dict[str, Any]] = field(default_factory=list)  # search rows + "target"
    fetched: int = 0
    already_present: int = 0

    @property
    def bytes(self) -> int:
        """Total size of the matched files."""
        return sum(f["size"] or 0 for f in self.files)


def open_catalog(path: Path) -> tuple[Catalog, Path | None, dict[str, str] | None]:
    """Open the catalog of a database, of a single dataset, or a catalog folder itself.

    Returns the catalog, the folder its file paths start from (None when unknown), and
    for a database where each dataset lives (id -> path).
    """
    path = Path(path).resolve()
    if is_database(path):
        db = open_database(path)
        return Catalog(db.catalog_dir), db.root, {e.id: e.path for e in db.entries()}
    if (path / ".ntdb" / "catalog").is_dir():
        return Catalog(path / ".ntdb" / "catalog"), path, None
    if (path / "datasets.parquet").is_file():  # a catalog folder, as `build --out` writes
        catalog = Catalog(path)
        rows = catalog.sql("SELECT location FROM datasets")
        single = len(rows) == 1 and Path(rows[0]["location"]).is_dir()
        return catalog, Path(rows[0]["location"]) if single else None, None
    raise CatalogError(f"{path} has no catalog; run `ntdb catalog build {path}` first")


def search_files(path: Path, filters: Filters, *, limit: int | None = None
                 ) -> list[dict[str, Any]]:
    """Search the catalog at ``path``, checking ``present`` in this copy.

    Each row gets its ``target`` (the path from the dataset or database root), and
    ``present`` is checked now, here: the catalog may have been built in another clone.
    """
    catalog, root, where = open_catalog(path)
    rows = catalog.search(filters, limit=limit)
    for row in rows:
        prefix = "." if where is None else where.get(row["dataset"])
        if prefix is None:
            raise CatalogError(f"dataset {row['dataset']!r} is in the catalog but not in the "
                               f"registry; rebuild it with `ntdb catalog build {path}`")
        row["target"] = row["path"] if prefix == "." else f"{prefix}/{row['path']}"
        if root is not None:
            row["present"] = os.path.exists(root / row["target"])
    return rows


def plan_get(path: Path, filters: Filters) -> GetResult:
    """Resolve ``filters`` to the files to fetch (no data is touched)."""
    _, root, _ = open_catalog(path)
    if root is None:
        raise CatalogError(f"{path} is a catalog folder without its dataset; run `ntdb get` "
                           f"on the database or dataset it indexes")
    return GetResult(root, search_files(path, filters))


def get_files(path: Path, filters: Filters, *, jobs: int | None = None,
              progress: ProgressCallback = ignore_progress) -> GetResult:
    """Fetch the content of every file that matches ``filters``, and nothing else."""
    result = plan_get(path, filters)
    if not dl.is_dataset(result.root):
        raise CatalogError(f"{result.root} is not a DataLad dataset, so there is nothing to "
                           f"fetch: its files are on disk (list them with --dry-run)")
    targets = {str(result.root / f["target"]): f for f in result.files}
    if not targets:
        return result
    done = 0
    for res in dl.get(result.root, [f["target"] for f in result.files], jobs=jobs):
        if res.get("type") != "file" or res.get("path") not in targets:
            continue
        done += 1
        if res.get("status") == "notneeded":
            result.already_present += 1
        else:
            result.fetched += 1
        progress(Progress(targets[res["path"]]["target"], done, len(targets), res["status"]))
    return result
