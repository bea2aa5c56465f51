"""``ntdb get``: fetch exactly the files a search matches."""

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
)


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@filter_options
@click.option("--dry-run", is_flag=True, help="List what would be fetched; fetch nothing.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Parallel transfers.")
@json_option
@click.pass_context
@handle_errors
def get(ctx: click.Context, path: Path, dry_run: bool, jobs: int | None,
        as_json: bool, **kwargs: Any) -> None:
    """Fetch the content of the files that match the filters, and nothing else.

    Uses `datalad get` on the database at PATH (installing subdatasets as needed).
    Exits 1 when no file matches.

    \b
    Example:
      ntdb get DB --modality eeg --sub 01 --dry-run
    """
    from neurotwin_db.catalog import get_files, plan_get

    filters = filters_from(kwargs)
    if dry_run:
        result = plan_get(path, filters)
    else:
        with progress_bar("fetching", enabled=not as_json) as update:
            result = get_files(path, filters, jobs=jobs, progress=update)
    if as_json:
        emit_json({"dry_run": dry_run, "files": [f["target"] for f in result.files],
                   "bytes": result.bytes, "fetched": result.fetched,
                   "already_present": result.already_present})
    elif dry_run and result.files:
        missing = [f for f in result.files if not f["present"]]
        size = human_size(sum(f["size"] or 0 for f in missing))
        print_rows(result.files, ["target", "size", "present"],
                   title=f"{plural(len(result.files), 'file')} match; would fetch "
                         f"{len(missing)} ({size})")
    elif result.files:
        click.echo(f"{plural(len(result.files), 'file')} matched ({human_size(result.bytes)}): "
                   f"{result.fetched} fetched, {result.already_present} already present")
    if not result.files:
        click.echo("no files match these filters; try `ntdb catalog search` first", err=True)
        ctx.exit(1)
