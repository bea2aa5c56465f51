"""``ntdb dataset``: add, register and list the datasets of a database."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from neurotwin_db.cli._common import (
    MODALITY_CHOICE,
    emit_json,
    handle_errors,
    json_option,
    print_rows,
)

SPECIES_CHOICE = click.Choice(["homo sapiens", "mus musculus", "rattus norvegicus"])
DB_ARG = click.argument("db", type=click.Path(exists=True, file_okay=False, path_type=Path))


@click.group()
def dataset() -> None:
    """Add, register and list the datasets of a database."""


@dataset.command()
@DB_ARG
@click.argument("name")
@click.option("--modality", required=True, type=MODALITY_CHOICE, help="What the dataset holds.")
@click.option("--species", type=SPECIES_CHOICE,
              help="Species (default: homo sapiens; mus musculus for rodent).")
@click.option("--title", help="Dataset title (default: NAME).")
@click.option("--author", "authors", multiple=True, help="An author (repeatable).")
@click.option("--license", "license_", default="CC-BY-4.0", show_default=True,
              help="SPDX license identifier.")
@json_option
@handle_errors
def add(db: Path, name: str, modality: str, species: str | None, title: str | None,
        authors: tuple[str, ...], license_: str, as_json: bool) -> None:
    """Create a new BIDS dataset NAME as a DataLad subdataset of DB and register it."""
    from neurotwin_db.catalog import add_dataset, open_database

    entry = add_dataset(open_database(db), name, modality=modality, species=species,
                        title=title, authors=list(authors) or None, license=license_)
    if as_json:
        emit_json(asdict(entry))
    else:
        click.echo(f"added dataset {entry.id} ({entry.modality}, {entry.species}) at "
                   f"{Path(db) / entry.path}")


@dataset.command()
@DB_ARG
@click.argument("source")
@click.option("--name", help="Dataset id in the database (default: last part of SOURCE).")
@click.option("--modality", type=MODALITY_CHOICE, help="Override the inferred modality.")
@click.option("--species", help="Override the species read from participants.tsv.")
@json_option
@handle_errors
def register(db: Path, source: str, name: str | None, modality: str | None,
             species: str | None, as_json: bool) -> None:
    """Register an existing DataLad dataset (URL or PATH) by cloning it into DB."""
    from neurotwin_db.catalog import open_database, register_dataset

    entry = register_dataset(open_database(db), source, name=name, modality=modality,
                             species=species)
    if as_json:
        emit_json(asdict(entry))
    else:
        click.echo(f"registered {entry.id} from {entry.location} ({entry.modality}, "
                   f"{entry.species})")


@dataset.command(name="list")
@DB_ARG
@json_option
@handle_errors
def list_(db: Path, as_json: bool) -> None:
    """List the registered datasets of DB."""
    from neurotwin_db.catalog import open_database

    rows = [asdict(e) for e in open_database(db).entries()]
    if as_json:
        emit_json(rows)
    else:
        print_rows(rows, ["id", "title", "modality", "species", "version", "doi", "license"])
