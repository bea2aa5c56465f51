"""``ntdb validate``: the official BIDS validator, the neurotwin rules and phi-scan."""

from __future__ import annotations

from pathlib import Path

import click

from neurotwin_db.cli._common import emit_json, handle_errors, progress_bar
from neurotwin_db.cli.cmd_anonymize import IDENTIFIERS_OPTION, SEVERITIES, _identifiers


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: findings grouped by code; json: one document.")
@click.option("--min-severity", type=SEVERITIES, default="warning", show_default=True,
              help="Hide findings below this level (the exit status still counts them).")
@click.option("--no-bids", is_flag=True, help="Skip the official BIDS validator.")
@IDENTIFIERS_OPTION
@handle_errors
def validate(dataset: Path, fmt: str, min_severity: str, no_bids: bool,
             identifiers: Path | None) -> None:
    """Check that the BIDS DATASET is valid and ready to deposit.

    \b
    One report merges three sources:
    - bids: the official BIDS validator (bids-validator-deno, offline, on the schema
      bidsschematools ships); its codes and severities are kept;
    - neurotwin: the database's rules (schemas/rules/neurotwin.yaml): License,
      Authors/ORCID, Funding, EthicsApprovals, README, CHANGES; participants'
      species/age/sex/group; stimulation sidecars; derivatives' GeneratedBy,
      SourceDatasets and source DOIs;
    - phi: the phi-scan of every file.

    Exits 1 when any finding is an ERROR (`ntdb deposit` refuses such a dataset), 2 when
    DATASET cannot be validated at all.
    """
    from neurotwin_db.curation.validate import format_report, report_document, validate_dataset
    from neurotwin_db.report import Severity

    with progress_bar("validating", enabled=fmt == "text") as update:
        report = validate_dataset(dataset, bids=not no_bids,
                                  identifiers=_identifiers(identifiers), progress=update)
    level = Severity[min_severity.upper()]
    if fmt == "json":
        emit_json(report_document(report, min_severity=level))
    else:
        click.echo(format_report(report, min_severity=level), nl=False)
    ctx = click.get_current_context()
    logfile = (ctx.find_root().obj or {}).get("logfile")
    if logfile is not None and len(report):
        report.write_jsonl(Path(f"{logfile}.report.jsonl"))
    if report.failed():
        ctx.exit(1)
