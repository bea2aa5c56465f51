"""``ntdb phi-scan`` (the deposit gate) and ``ntdb anonymize`` (raw BIDS -> shareable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neurotwin_db.cli._common import emit_json, handle_errors, json_option, plural, progress_bar

SEVERITIES = click.Choice(["hint", "warning", "error"])
KEY_OPTIONS = [
    click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
                 help="The pseudonym key, outside every dataset (default: $NTDB_KEY_FILE or "
                      "~/.config/neurotwin-db/pseudonym.key)."),
    click.option("--new-key", is_flag=True,
                 help="Create the key file if it does not exist (never done silently)."),
]
IDENTIFIERS_OPTION = click.option(
    "--identifiers", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Text file of known identifiers (real names, IDs, birth dates), one per line; "
         "matched exactly and fuzzily, in any word order (LAST^FIRST too).")


def key_options(fn: Any) -> Any:
    """--key-file and --new-key."""
    for option in reversed(KEY_OPTIONS):
        fn = option(fn)
    return fn


def _identifiers(path: Path | None) -> Any:
    from neurotwin_db.curation.phi import Identifiers

    return Identifiers.from_file(path) if path else Identifiers()


@click.command("phi-scan")
@click.argument("path", type=click.Path(path_type=Path))
@IDENTIFIERS_OPTION
@click.option("--min-severity", type=SEVERITIES, default="warning", show_default=True,
              help="Hide findings below this level.")
@click.option("--scheduler", help="Dask scheduler address (default: local processes).")
@json_option
@handle_errors
def phi_scan(path: Path, identifiers: Path | None, min_severity: str, scheduler: str | None,
             as_json: bool) -> None:
    """Report every identifier in PATH (a dataset, a folder or one file).

    Reads DICOM (every element, nested and private too; pixel risk), NIfTI header text
    and extensions, JSON sidecars, TSV tables, EDF/BDF/BrainVision/FIF/EEGLAB headers,
    NWB, text files and file names. Each finding gives the file, where in it, and the
    value masked. Files it cannot read are reported, never passed silently.

    Exits 1 when any finding is an ERROR: this is the gate `ntdb deposit` applies.
    """
    from neurotwin_db.curation.phi import scan_phi
    from neurotwin_db.report import Severity

    with progress_bar("scanning", enabled=not as_json) as update:
        report = scan_phi(path, identifiers=_identifiers(identifiers), scheduler=scheduler,
                          progress=update)
    shown = report.at_least(Severity[min_severity.upper()])
    if as_json:
        click.echo(shown.to_jsonl(), nl=False)
    else:
        for issue in shown:
            where = f" [{issue.location}]" if issue.location else ""
            value = f" = {issue.value}" if issue.value else ""
            click.echo(f"{issue.severity.name} {issue.code} {issue.path}{where}{value}: "
                       f"{issue.message}")
        errors = len(report.at_least(Severity.ERROR))
        click.echo(f"{plural(errors, 'error')}, {plural(len(report) - errors, 'other finding')}"
                   f" in {path}" + ("" if errors else ": clean"), err=True)
    if report.failed():
        raise SystemExit(1)


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the shareable dataset here (a new DataLad dataset). Without it the "
                   "dataset is anonymized in place, and its history still holds the originals.")
@key_options
@IDENTIFIERS_OPTION
@click.option("--no-deface", is_flag=True, help="Keep faces in anatomical images.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@json_option
@handle_errors
def anonymize(dataset: Path, out: Path | None, key_file: Path | None, new_key: bool,
              identifiers: Path | None, no_deface: bool, dry_run: bool, as_json: bool) -> None:
    """Turn the raw BIDS DATASET into a shareable one.

    \b
    - subject labels become keyed pseudonyms (the key and the label mapping stay
      outside every dataset, mode 0600; the same key gives the same pseudonyms);
    - every date moves by a secret per-subject number of days (intervals are kept);
    - sidecars keep BIDS fields minus the policy's deny list; tables lose identifying
      columns and ages above 89 are capped; EEG, NIfTI and NWB headers are rewritten;
    - T1w/T2w/FLAIR images are defaced and checked;
    - sourcedata/ is left out.

    The result is scanned with phi-scan before anything is written; it is saved with
    DataLad only if the scan is clean.
    """
    from neurotwin_db import datalad as dl
    from neurotwin_db.curation.anonymize import (
        AlreadyAnonymizedError,
        LeakError,
        apply_anonymization,
        plan_anonymization,
    )

    key = _key(key_file, new_key, dry_run)
    try:
        plan = plan_anonymization(dataset, key, out=out, deface=not no_deface)
    except AlreadyAnonymizedError:
        if out is not None:
            raise
        _say({"dataset": str(dataset), "already_anonymized": True}, as_json,
             f"{dataset} is already anonymized: nothing to do")
        return
    if dry_run:
        _print_plan(plan, as_json)
        return
    if dl.is_dataset(dataset) and dl.git(dataset, "status", "--porcelain").strip():
        click.echo(f"note: {dataset} has unsaved changes; the shareable copy is made from "
                   "the files as they are now", err=True)
    try:
        with progress_bar("anonymizing", enabled=not as_json) as update:
            result = apply_anonymization(plan, key, identifiers=_identifiers(identifiers),
                                         progress=update)
    except LeakError as exc:
        if as_json:
            click.echo(exc.report.to_jsonl(), nl=False)
        else:
            from neurotwin_db.report import Severity

            for issue in exc.report.at_least(Severity.ERROR):
                click.echo(f"{issue.code} {issue.path} [{issue.location or ''}] "
                           f"{issue.value or ''}: {issue.message}", err=True)
        raise
    summary = {"dataset": str(plan.dataset), "out": str(result.out),
               "written": len(result.written),
               "unchanged": len(result.unchanged), "removed": len(result.removed),
               "saved": result.saved, "subjects": len(plan.subjects),
               "warnings": [i.as_dict() for i in result.report]}
    text = (f"anonymized {dataset} -> {result.out}: {plural(len(result.written), 'file')} "
            f"written, {len(result.unchanged)} unchanged, {len(result.removed)} removed; "
            f"phi-scan clean ({plural(len(result.report), 'warning')})")
    if plan.in_place:
        text += ("\nnote: anonymized in place; the dataset's git history still holds the "
                 "originals, so share a copy made with --out instead")
    _say(summary, as_json, text)


def _key(path: Path | None, new: bool, dry_run: bool) -> Any:
    """The pseudonym key; a dry run never creates one (it plans with a throw-away key)."""
    import secrets

    from neurotwin_db.curation.anonymize import (
        PseudonymKey,
        check_key_location,
        default_key_path,
        load_key,
    )

    target = Path(path).expanduser() if path else default_key_path()
    if dry_run and new and not target.exists():
        check_key_location(target)
        click.echo(f"dry run: {target} does not exist; a real run with --new-key creates it. "
                   "The pseudonyms below come from a throw-away key.", err=True)
        return PseudonymKey(path=target, secret=secrets.token_bytes(32))
    return load_key(target, new=new)


def _say(payload: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        emit_json(payload)
    else:
        click.echo(text)


def _print_plan(plan: Any, as_json: bool) -> None:
    if as_json:
        emit_json(plan.describe())
        return
    click.echo(f"plan: {plan.dataset} -> {plan.out} ({plural(len(plan.subjects), 'subject')}, "
               f"policy {plan.policy_version})")
    for change in plan.changes:
        notes = f" ({'; '.join(change.notes)})" if change.notes else ""
        target = change.target or "-"
        click.echo(f"  {change.action:9} {change.source or '(new)'} -> {target}{notes}")
