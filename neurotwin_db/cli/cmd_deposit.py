"""``ntdb deposit`` (a DOI for a validated dataset) and ``ntdb cite``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neurotwin_db.cli._common import (
    emit_json,
    handle_errors,
    human_size,
    json_option,
    plural,
    progress_bar,
    render_report,
)
from neurotwin_db.cli.cmd_anonymize import IDENTIFIERS_OPTION

CITE_FORMATS = ["text", "bibtex", "cff", "datacite-json"]  # = deposit.FORMATS (fast --help)


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "to", required=True, metavar="zenodo|zenodo-sandbox|URL",
              help="Where to deposit: zenodo.org, sandbox.zenodo.org, or the base URL of a "
                   "Zenodo-compatible deposit API (e.g. http://127.0.0.1:8766/api).")
@click.option("--token-env", metavar="VAR",
              help="Environment variable holding the token (default ZENODO_TOKEN; "
                   "ZENODO_SANDBOX_TOKEN for zenodo-sandbox). Without it, the keyring entry "
                   "(service neurotwin-db, user = the API host) is used.")
@click.option("--new-version", is_flag=True,
              help="Deposit the dataset's changes as a new version of its current DatasetDOI "
                   "(minor version bump unless --version is given).")
@click.option("--version", "version", metavar="X.Y.Z",
              help="The version to deposit (default 1.0.0, or the next minor version).")
@IDENTIFIERS_OPTION
@click.option("--dry-run", is_flag=True,
              help="Print the target, metadata and archive plan; send and write nothing.")
@json_option
@handle_errors
def deposit(dataset: Path, to: str, token_env: str | None, new_version: bool,
            version: str | None, identifiers: Path | None, dry_run: bool,
            as_json: bool) -> None:
    """Publish DATASET with a DOI (Zenodo deposit API).

    \b
    - refuses uncommitted changes and any ERROR of `ntdb validate` (phi-scan included);
    - builds DataCite 4.5 metadata from dataset_description.json, CITATION.cff and the
      README, and validates it before any network call;
    - uploads the shareable files of the saved version (no sourcedata/, subdatasets or
      .ntdb/) as zip archives: one per subject plus top-level.zip;
    - publishes, writes DatasetDOI, saves, tags vX.Y.Z and records the DOI in the
      database's registry and catalog.

    An interrupted deposit resumes when the same command is run again (the state file
    lives outside the dataset, in $NTDB_STATE_DIR or ~/.local/state/neurotwin-db; it never
    holds the token). Retries and timeouts: $NTDB_DEPOSIT_RETRIES, $NTDB_DEPOSIT_BACKOFF,
    $NTDB_DEPOSIT_TIMEOUT. A sandbox deposit records its test DOI and tag too: try things
    out on a clone (`datalad clone DATASET copy`), or with --dry-run.

    Exits 1 when `ntdb validate` refuses the dataset, 2 on any other error.
    """
    from neurotwin_db.curation.deposit import GateError, cite_dataset, deposit_dataset

    ids = _known_identifiers(identifiers)
    if dry_run:
        _dry_run(dataset, to, new_version, version, ids, as_json)
        return
    try:
        with progress_bar("depositing", enabled=not as_json) as update:
            result = deposit_dataset(dataset, to=to, token_env=token_env,
                                     new_version=new_version, version=version,
                                     identifiers=ids, progress=update)
    except GateError as exc:  # findings in the data: exit 1, as validate and --dry-run do
        _show_gate(exc.report, as_json)
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    citation = cite_dataset(result.dataset)
    if as_json:
        emit_json(result.as_dict() | {"citation": citation})
        return
    if result.status == "skipped":
        click.echo(f"{result.dataset} is already deposited as doi:{result.doi} "
                   f"({result.tag}, {result.record_url}): nothing to do")
    else:
        files = ", ".join(f"{f['name']} ({human_size(f['size'])})" for f in result.files)
        click.echo(f"published doi:{result.doi} as {result.tag} ({result.record_url})\n"
                   f"  files: {files}\n"
                   f"  DatasetDOI saved in {result.dataset.name}/dataset_description.json; "
                   f"tagged {result.tag}")
        for note in result.notes:
            click.echo(f"  {note}")
    click.echo(f"cite as: {citation}")


def _known_identifiers(path: Path | None) -> Any:
    if path is None:
        return None
    from neurotwin_db.curation.phi import Identifiers

    return Identifiers.from_file(path)


def _show_gate(report: Any, as_json: bool) -> None:
    from neurotwin_db.report import Severity

    errors = report.at_least(Severity.ERROR)
    if as_json:
        click.echo(errors.to_jsonl(), nl=False)
    else:
        render_report(errors, as_json=False)


def _dry_run(dataset: Path, to: str, new_version: bool, version: str | None,
             identifiers: Any, as_json: bool) -> None:
    from neurotwin_db.curation.deposit import (
        GateError,
        check_content_here,
        check_gate,
        plan_deposit,
    )
    from neurotwin_db.errors import InputError
    from neurotwin_db.report import Severity

    plan = plan_deposit(dataset, to=to, new_version=new_version, version=version)
    summary = plan.describe()
    refused, failed = "", None
    if plan.status != "skipped" and not plan.state.published:
        try:
            check_content_here(plan)
            report = check_gate(plan.dataset, identifiers=identifiers)
        except GateError as exc:
            refused, failed = str(exc), exc.report
        except InputError as exc:
            refused = str(exc)
        else:
            summary["gate"] = {"errors": 0, "warnings": len(report.at_least(Severity.WARNING))}
    summary["refused"] = refused
    if as_json:
        emit_json(summary)
    else:
        _print_plan(summary)
        if failed is not None:
            render_report(failed.at_least(Severity.ERROR), as_json=False)
    if refused:
        raise SystemExit(1)


def _print_plan(plan: dict[str, Any]) -> None:
    zenodo = plan["zenodo"]
    what = {"new": "a new record", "resume": "resume the unfinished deposit",
            "skipped": "nothing (already deposited and unchanged)"}[plan["status"]]
    if plan["previous_doi"] and plan["status"] == "new":
        what = f"a new version of doi:{plan['previous_doi']}"
    total = sum(a["size"] for a in plan["archives"])
    lines = [f"dry run: nothing is sent or written ({plan['dataset']} at "
             f"{plan['commit'][:8]})",
             f"  target:   {plan['target']}: {what}",
             f"  version:  {plan['tag']} (git tag after publishing)",
             f"  title:    {zenodo['title']}",
             f"  creators: {'; '.join(c['name'] for c in zenodo['creators'])}",
             f"  license:  {zenodo['license']}",
             f"  keywords: {', '.join(zenodo.get('keywords', []))}"]
    for rel in zenodo.get("related_identifiers", []):
        lines.append(f"  related:  {rel['relation']} {rel['identifier']}")
    for grant in zenodo.get("grants", []):
        lines.append(f"  grant:    {grant['id']}")
    if zenodo.get("notes"):
        lines.append(f"  notes:    {zenodo['notes']}")
    lines.append(f"  archives: {plural(len(plan['archives']), 'archive')}, "
                 f"{human_size(total)} before compression")
    lines += [f"    {a['name']:<24} {plural(a['files'], 'file'):>10} {human_size(a['size']):>10}"
              for a in plan["archives"]]
    if "gate" in plan:
        lines.append(f"  gate:     passed ({plural(plan['gate']['warnings'], 'warning')})")
    lines += [f"  note: {n}" for n in plan["notes"]]
    click.echo("\n".join(lines))
    if plan["refused"]:
        reason = plan["refused"].removeprefix("deposit refused: ")
        click.echo(f"the deposit would be refused: {reason}", err=True)


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(CITE_FORMATS), default="text",
              show_default=True, help="Citation format.")
@handle_errors
def cite(dataset: Path, fmt: str) -> None:
    """Print the citation of DATASET's deposited version (needs its DatasetDOI).

    The DOI comes from dataset_description.json, the version and date from the latest
    vX.Y.Z tag. A dataset without DatasetDOI is an error: deposit it first.
    """
    from neurotwin_db.curation.deposit import cite_dataset

    text = cite_dataset(dataset, format=fmt)
    click.echo(text.rstrip("\n"))
