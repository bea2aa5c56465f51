"""``ntdb anonymize-dicom``: de-identified copies of DICOM files, for sharing raw DICOM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neurotwin_db.cli._common import emit_json, handle_errors, json_option, plural, progress_bar

LISTED = 20  # files listed per group in text output (all of them with --json)


@click.command(name="anonymize-dicom")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A deid recipe used instead of the project recipe "
                   "(start from a copy of schemas/deid/deid.dicom.ntdb).")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The pseudonym key (default: $NTDB_KEY_FILE or "
                   "~/.config/neurotwin-db/pseudonym.key).")
@click.option("--new-key", is_flag=True, help="Create the key file if it does not exist.")
@click.option("--quarantine", type=click.Path(file_okay=False, path_type=Path),
              help="Where files whose pixels may show identifiers are copied "
                   "(default: OUT-quarantine next to OUT).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on this Dask scheduler (tcp://host:port) instead of locally; "
                   "SRC, OUT and the key file must be on storage every worker sees.")
@click.option("--jobs", type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--overwrite", is_flag=True,
              help="Write into a non-empty OUT or quarantine, replacing same-named files.")
@click.option("--dry-run", is_flag=True,
              help="Do everything in memory and list what would be written; write nothing.")
@json_option
@handle_errors
def anonymize_dicom(src: Path, out: Path, recipe: Path | None, key_file: Path | None,
                    new_key: bool, quarantine: Path | None, scheduler: str | None,
                    jobs: int | None, overwrite: bool, dry_run: bool, as_json: bool) -> None:
    """De-identify the DICOM files under SRC into OUT, for sharing raw DICOM.

    Private tags go; names, addresses, institutions, devices and other identifiers are
    removed or blanked by a deid recipe; PatientID and PatientName become the key's
    pseudonym; dates move by the subject's secret offset; UIDs are remapped with the key,
    the same in every run. Files are named
    OUT/<pseudonym>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm. Files whose pixels may show
    burned-in text (ultrasound, screen captures, ...) are copied to the quarantine
    folder instead, for review. Exit status 1 if any file failed.
    """
    from neurotwin_db.curation.anonymize import load_key
    from neurotwin_db.curation.anonymize.dicom import anonymize_dicom as run

    key = load_key(key_file, new=new_key)
    with progress_bar("anonymizing", enabled=not as_json) as update:
        result = run(src, out, key=key, recipe=recipe, quarantine=quarantine,
                     scheduler=scheduler, jobs=jobs, overwrite=overwrite, dry_run=dry_run,
                     progress=update)
    if as_json:
        emit_json(result.as_dict())
    else:
        _render(result)
    click.get_current_context().exit(0 if result.ok else 1)


def _render(result: Any) -> None:
    verb = "would write" if result.dry_run else "wrote"
    click.echo(f"{verb} {plural(len(result.written), 'file')} into {result.out}")
    if result.dry_run:
        _listing([f"{source} -> {output}" for source, output in result.written])
    if result.quarantined:
        verb = "would copy" if result.dry_run else "copied"
        click.echo(f"{verb} {plural(len(result.quarantined), 'file')} to {result.quarantine} "
                   "instead: identifiable originals, review or scrub them, never share that "
                   "folder as is:")
        _listing([f"{path}: {reason}" for path, reason in result.quarantined])
    if result.skipped:
        click.echo(f"skipped {plural(len(result.skipped), 'file')}:")
        _listing([f"{path}: {reason}" for path, reason in result.skipped])
    if result.failed:
        click.echo(f"FAILED {plural(len(result.failed), 'file')} (not written):", err=True)
        for path, message in result.failed:
            click.echo(f"  {result.src / path}: {message}", err=True)


def _listing(lines: list[str]) -> None:
    for line in lines[:LISTED]:
        click.echo(f"  {line}")
    if len(lines) > LISTED:
        click.echo(f"  ... {len(lines) - LISTED} more (use --json for all)")
