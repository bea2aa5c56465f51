"""Query the catalog with DuckDB: filtered search, read-only SQL, dataset summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from neurotwin_db.bidspath import check_label
from neurotwin_db.catalog._doi import normalize_doi
from neurotwin_db.catalog._index import DERIVATIVES_SCHEMA, METADATA_SCHEMA, files_schema
from neurotwin_db.errors import CatalogError, DatasetNotFoundError, QueryError

SEARCH_COLUMNS = ("dataset", "path", "pipeline", "sub", "ses", "task", "run", "datatype",
                  "suffix", "extension", "size", "annexed", "present")
_SUBJECTS_SCHEMA = pa.schema([("dataset", pa.string()), ("participant_id", pa.string())])


@dataclass(frozen=True, slots=True)
class Filters:
    """Search filters; each list matches any of its values, and all filters must match."""

    dataset: tuple[str, ...] = ()
    modality: tuple[str, ...] = ()
    species: tuple[str, ...] = ()
    sub: tuple[str, ...] = ()
    ses: tuple[str, ...] = ()
    task: tuple[str, ...] = ()
    run: tuple[str, ...] = ()
    datatype: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
    extension: tuple[str, ...] = ()
    derivative: tuple[str, ...] = ()
    doi: tuple[str, ...] = ()

    def checked(self) -> Filters:
        """Return a copy with labels validated and extensions given their leading dot.

        >>> Filters(sub=("sub-01",), extension=("nii.gz",)).checked().extension
        ('.nii.gz',)
        """
        for key in ("sub", "ses", "task", "run"):
            for value in getattr(self, key):
                check_label(key, value.removeprefix(f"{key}-"))
        extension = tuple(e if e.startswith(".") else f".{e}" for e in self.extension)
        return replace(self, extension=extension)

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters.

        >>> Filters(sub=("sub-01",), modality=("eeg",)).where()
        ('d.modality IN (?) AND f.sub IN (?)', ['eeg', '01'])
        """
        clauses: list[str] = []
        params: list[Any] = []
        for spec in fields(self):
            values = list(getattr(self, spec.name))
            if not values:
                continue
            if spec.name in ("sub", "ses"):
                values = [v.removeprefix(f"{spec.name}-") for v in values]
            if spec.name == "doi":
                values = [normalize_doi(v) for v in values]
                marks = ", ".join("?" * len(values))
                clauses.append(
                    f"(d.doi IN ({marks}) OR EXISTS (SELECT 1 FROM derivatives x WHERE "
                    f"x.dataset = f.dataset AND x.pipeline = f.pipeline AND "
                    f"list_has_any(x.source_dois, [{marks}])))")
                params += values * 2
                continue
            column = {"dataset": "f.dataset", "modality": "d.modality", "species": "d.species",
                      "derivative": "f.pipeline"}.get(spec.name, f"f.{spec.name}")
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
        return " AND ".join(clauses) or "TRUE", params


class Catalog:
    """An open, read-only catalog: Parquet tables loaded into an in-memory DuckDB."""

    TABLES = ("datasets", "files", "metadata", "subjects", "derivatives")

    def __init__(self, catalog_dir: Path) -> None:
        self.catalog_dir = Path(catalog_dir)
        if not (self.catalog_dir / "datasets.parquet").is_file():
            raise CatalogError(f"no catalog in {self.catalog_dir}; build it with "
                               f"`ntdb catalog build {self.catalog_dir.parent.parent}`")
        self.con = duckdb.connect(":memory:")
        empty = {"files": files_schema(), "metadata": METADATA_SCHEMA,
                 "subjects": _SUBJECTS_SCHEMA, "derivatives": DERIVATIVES_SCHEMA}
        try:
            self._load("datasets", [self.catalog_dir / "datasets.parquet"], None)
            ids = [row[0] for row in self.con.execute("SELECT id FROM datasets").fetchall()]
            for table, schema in empty.items():
                paths = [self.catalog_dir / table / f"{i}.parquet" for i in ids]
                self._load(table, paths, schema)
        except (duckdb.Error, OSError) as exc:
            first = str(exc).splitlines()[0]
            raise CatalogError(f"the catalog in {self.catalog_dir} is damaged ({first}); "
                               f"rebuild it with `ntdb catalog build --full`") from None
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def _load(self, table: str, paths: Sequence[Path], schema: pa.Schema | None) -> None:
        if paths:
            self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM "
                             f"read_parquet(?, union_by_name = true)", [[str(p) for p in paths]])
        else:
            empty = pa.table({f.name: pa.array([], f.type) for f in schema or []})
            self.con.register("_empty", empty)
            self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM _empty")
            self.con.unregister("_empty")

    def search(self, filters: Filters, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Files that match ``filters``, ordered by dataset and path."""
        where, params = filters.where()
        cols = ", ".join(f"f.{c}" for c in SEARCH_COLUMNS)
        sql = (f"SELECT {cols} FROM files f JOIN datasets d ON d.id = f.dataset "
               f"WHERE {where} ORDER BY f.dataset, f.path")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._rows(sql, params)
        if not rows:
            self._check_known(filters)
        return rows

    def _check_known(self, filters: Filters) -> None:
        """Say so when a dataset or pipeline name is not in the catalog at all."""
        for name, sql in (("dataset", "SELECT id FROM datasets"),
                          ("derivative", "SELECT DISTINCT pipeline FROM derivatives")):
            known = sorted(r[0] for r in self.con.execute(sql).fetchall())
            unknown = [v for v in getattr(filters, name) if v not in known]
            if unknown:
                raise QueryError(f"no {name} named {', '.join(map(repr, unknown))} in the "
                                 f"catalog; known: {', '.join(known) or 'none'}")

    def sql(self, statement: str) -> list[dict[str, Any]]:
        """Run one read-only SELECT over the catalog tables."""
        check_read_only(statement)
        try:
            return self._rows(statement, [])
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise QueryError(f"the query failed: {first}; the tables are "
                             f"{', '.join(self.TABLES)} (see `ntdb catalog search --help`)"
                             ) from None

    def summary(self, dataset_id: str) -> dict[str, Any]:
        """One dataset's row plus counts of subjects, files, bytes, tasks and derivatives."""
        rows = self._rows("SELECT * FROM datasets WHERE id = ?", [dataset_id])
        if not rows:
            known = [r["id"] for r in self._rows("SELECT id FROM datasets ORDER BY id", [])]
            raise DatasetNotFoundError(f"no dataset {dataset_id!r} in the catalog; known: "
                                       f"{', '.join(known) or 'none'} (rebuild with "
                                       f"`ntdb catalog build` after adding datasets)")
        info = rows[0]
        one = self._rows(
            "SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes, "
            "count(*) FILTER (WHERE present) AS present, "
            "count(DISTINCT sub) FILTER (WHERE pipeline IS NULL) AS subjects_with_data, "
            "list(DISTINCT datatype ORDER BY datatype) FILTER (WHERE datatype IS NOT NULL) "
            "AS datatypes, list(DISTINCT task ORDER BY task) FILTER (WHERE task IS NOT NULL) "
            "AS tasks FROM files WHERE dataset = ?", [dataset_id])[0]
        info.update(one)
        info["datatypes"] = info["datatypes"] or []
        info["tasks"] = info["tasks"] or []
        info["participants"] = self._rows(
            "SELECT count(*) AS n FROM subjects WHERE dataset = ?", [dataset_id])[0]["n"]
        info["derivatives"] = self._rows(
            "SELECT pipeline, name, source_dois FROM derivatives WHERE dataset = ? "
            "ORDER BY pipeline", [dataset_id])
        return info

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def check_read_only(statement: str) -> None:
    """Refuse anything but a single SELECT: the catalog is read-only to queries.

    >>> check_read_only("SELECT count(*) FROM files")
    >>> check_read_only("DELETE FROM files")
    Traceback (most recent call last):
    ...
    neurotwin_db.errors.QueryError: --sql accepts one read-only SELECT statement, got DELETE; ...
    """
    try:
        statements = duckdb.extract_statements(statement)
    except duckdb.Error as exc:
        raise QueryError(f"--sql could not be parsed: {str(exc).splitlines()[0]}") from None
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        got = ", ".join(kinds) or "nothing"
        raise QueryError(f"--sql accepts one read-only SELECT statement, got {got}; the catalog "
                         f"is read-only to queries (write a SELECT, e.g. "
                         f"\"SELECT * FROM files WHERE sub = '01'\")")
