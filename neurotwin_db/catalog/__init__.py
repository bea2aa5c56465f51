"""The database proper: registry, Parquet catalog, DuckDB queries and selective get.

A database is a DataLad superdataset whose ``.ntdb/`` folder holds its configuration,
its registry of datasets and the catalog. Researchers search the catalog before any
content is present, then fetch only what they need.
"""

from neurotwin_db.catalog._build import BuildResult, build_catalog
from neurotwin_db.catalog._database import (
    Database,
    add_dataset,
    init_database,
    is_database,
    open_database,
    record_doi,
    register_dataset,
)
from neurotwin_db.catalog._get import (
    GetResult,
    get_files,
    open_catalog,
    plan_get,
    search_files,
)
from neurotwin_db.catalog._query import SEARCH_COLUMNS, Catalog, Filters, check_read_only
from neurotwin_db.catalog._registry import DatasetEntry

__all__ = [
    "SEARCH_COLUMNS",
    "BuildResult",
    "Catalog",
    "Database",
    "DatasetEntry",
    "Filters",
    "GetResult",
    "add_dataset",
    "build_catalog",
    "check_read_only",
    "get_files",
    "init_database",
    "is_database",
    "open_catalog",
    "open_database",
    "plan_get",
    "record_doi",
    "register_dataset",
    "search_files",
]
