"""``ntdb init``: create a database."""

from __future__ import annotations

from pathlib import Path

import click

from neurotwin_db.cli._common import emit_json, handle_errors, json_option


@click.command()
@click.argument("db", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Human-readable name (default: the folder name).")
@json_option
@handle_errors
def init(db: Path, name: str | None, as_json: bool) -> None:
    """Create a Neurotwin database at DB: a DataLad superdataset with .ntdb/.

    DB must not exist or be empty. Add datasets with `ntdb dataset add` or
    `ntdb dataset register`, then index them with `ntdb catalog build`.
    """
    from neurotwin_db.catalog import init_database

    database = init_database(db, name=name)
    if as_json:
        emit_json({"database": str(database.root)})
    else:
        click.echo(f"created database {database.root}")
