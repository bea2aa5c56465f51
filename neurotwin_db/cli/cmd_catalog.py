"""``ntdb catalog``: build, search and show the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neurotwin_db.cli._common import (
    emit_json,
    filter_options,
    filters_from,
    handle_errors,
    human_size,
    json_option,
    plural,
    print_rows,
    progress_bar,
    render_report,
)

PATH_ARG = click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))


@click.group()
def catalog() -> None:
    """Index datasets into a Parquet catalog and query it with DuckDB."""


@catalog.command()
@PATH_ARG
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the catalog here instead of PATH/.ntdb/catalog.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on a dask.distributed cluster, e.g. tcp://host:8786.")
@click.option("--no-save", is_flag=True, help="Do not record the catalog with DataLad.")
@click.option("--full", is_flag=True, help="Re-index every dataset, changed or not.")
@json_option
@click.pass_context
@handle_errors
def build(ctx: click.Context, path: Path, out: Path | None, jobs: int | None,
          scheduler: str | None, no_save: bool, full: bool, as_json: bool) -> None:
    """Index a database (or a single BIDS dataset) at PATH into Parquet tables.

    Tables: datasets, files, metadata, subjects, derivatives. Only datasets whose
    commit changed since the last build are re-indexed. Reads git trees and annex
    keys, so clones without content are indexed too. Exits 1 (and writes nothing)
    when a sidecar or participants.tsv cannot be read.
    """
    from neurotwin_db.catalog import build_catalog

    with progress_bar("indexing", enabled=not as_json) as update:
        result = build_catalog(path, out=out, jobs=jobs, scheduler=scheduler,
                               save=not no_save, full=full, progress=update)
    logfile = (ctx.find_root().obj or {}).get("logfile")
    if logfile is not None and len(result.report):
        result.report.write_jsonl(Path(f"{logfile}.report.jsonl"))
    if as_json:
        emit_json({"catalog": str(result.catalog_dir), "written": result.written,
                   "indexed": result.indexed, "skipped": result.skipped, "files": result.files,
                   "issues": [i.as_dict() for i in result.report]})
    else:
        render_report(result.report, as_json=False)
        if result.written:
            click.echo(f"indexed {plural(len(result.indexed), 'dataset')}, skipped "
                       f"{len(result.skipped)} unchanged; {plural(result.files, 'file')} in "
                       f"{result.catalog_dir}")
        else:
            click.echo("catalog not written: fix the errors above and run again", err=True)
    ctx.exit(1 if result.report.failed() else 0)


@catalog.command()
@PATH_ARG
@filter_options
@click.option("--sql", metavar="SELECT", help="A read-only DuckDB SELECT over the tables "
              "datasets, files, metadata, subjects, derivatives.")
@click.option("--limit", type=click.IntRange(min=1), help="Return at most this many rows.")
@json_option
@handle_errors
def search(path: Path, sql: str | None, limit: int | None, as_json: bool,
           **kwargs: Any) -> None:
    """Find files across every dataset in the catalog of PATH.

    \b
    Examples:
      ntdb catalog search DB --modality eeg --task rest --sub 01
      ntdb catalog search DB --derivative ntdb-tissue --json
      ntdb catalog search DB --sql "SELECT dataset, count(*) FROM files GROUP BY 1"
    """
    from neurotwin_db.catalog import SEARCH_COLUMNS, open_catalog, search_files
    from neurotwin_db.errors import QueryError

    filters = filters_from(kwargs)
    if sql is not None:
        if filters.where()[0] != "TRUE":
            raise QueryError("--sql cannot be combined with filters; put the conditions "
                             "in the WHERE clause")
        rows = open_catalog(path)[0].sql(sql)
        rows = rows[:limit] if limit else rows
        columns = list(rows[0]) if rows else []
    else:
        rows = search_files(path, filters, limit=limit)
        columns = [c for c in SEARCH_COLUMNS if c not in ("annexed", "extension")]
    if as_json:
        emit_json(rows)
    elif rows:
        print_rows(rows, columns, title=plural(len(rows), "row"))
    if not rows:
        click.echo("nothing matched", err=True)
        click.get_current_context().exit(1)


@catalog.command()
@PATH_ARG
@click.argument("dataset_id", metavar="DATASET")
@json_option
@handle_errors
def show(path: Path, dataset_id: str, as_json: bool) -> None:
    """Summarise one DATASET of the catalog at PATH."""
    from neurotwin_db.catalog import open_catalog

    info = open_catalog(path)[0].summary(dataset_id)
    if as_json:
        emit_json(info)
        return
    for key in ("id", "name", "modality", "species", "version", "doi", "license", "commit",
                "location", "participants", "files", "present", "datatypes", "tasks"):
        value = info.get(key)
        value = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key:>12}: {'' if value is None else value}")
    click.echo(f"{'size':>12}: {human_size(info['bytes'])}")
    for deriv in info["derivatives"]:
        dois = ", ".join(deriv["source_dois"] or []) or "no DOI yet"
        click.echo(f"{'derivative':>12}: {deriv['pipeline']} ({deriv['name']}; sources: {dois})")
