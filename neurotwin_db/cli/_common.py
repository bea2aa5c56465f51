"""Shared CLI pieces: error handling, output, filter options and progress bars."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from neurotwin_db.errors import NeurotwinError

F = TypeVar("F", bound=Callable[..., Any])
MODALITY_CHOICE = click.Choice(["mri", "eeg", "tms-eeg", "tacs", "rodent", "multi"])


class CliError(click.ClickException):
    """A NeurotwinError shown as one line; exit status 2."""

    exit_code = 2


def handle_errors(fn: F) -> F:
    """Turn NeurotwinError into one clean line and exit 2 (re-raise with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NeurotwinError as exc:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and (ctx.find_root().obj or {}).get("debug"):
                raise
            raise CliError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def json_option(fn: F) -> F:
    """Add ``--json`` (machine-readable output)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON instead of text.")(fn)


def emit_json(payload: object) -> None:
    """Print ``payload`` as JSON on stdout."""
    click.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))


def filter_options(fn: F) -> F:
    """The catalog filters shared by ``catalog search`` and ``get`` (each repeatable)."""
    options = [
        click.option("--dataset", multiple=True, help="Dataset id."),
        click.option("--modality", multiple=True, type=MODALITY_CHOICE,
                     help="Dataset modality."),
        click.option("--species", multiple=True, help="Species, e.g. 'mus musculus'."),
        click.option("--sub", multiple=True, help="Subject label (01 or sub-01)."),
        click.option("--ses", multiple=True, help="Session label."),
        click.option("--task", multiple=True, help="Task label."),
        click.option("--run", multiple=True, help="Run index as written in the file name."),
        click.option("--datatype", multiple=True, help="BIDS datatype: anat, eeg, dwi, ..."),
        click.option("--suffix", multiple=True, help="BIDS suffix: T1w, eeg, probseg, ..."),
        click.option("--extension", multiple=True, help="File extension, e.g. .nii.gz."),
        click.option("--derivative", multiple=True, metavar="PIPELINE",
                     help="Only files of this derivative pipeline."),
        click.option("--doi", multiple=True,
                     help="Datasets with this DOI, or derivatives citing it."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def filters_from(kwargs: dict[str, Any]) -> Any:
    """Pop the filter options out of ``kwargs`` into a Filters object."""
    from neurotwin_db.catalog import Filters

    names = ("dataset", "modality", "species", "sub", "ses", "task", "run", "datatype",
             "suffix", "extension", "derivative", "doi")
    return Filters(**{n: tuple(kwargs.pop(n, ()) or ()) for n in names}).checked()


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``.

    >>> plural(1, "file"), plural(3, "dataset")
    ('1 file', '3 datasets')
    """
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@contextmanager
def progress_bar(label: str, *, enabled: bool = True) -> Iterator[Callable[[Any], None]]:
    """A rich progress bar on stderr fed by Progress events; silent when disabled."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _event: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(event: Any) -> None:
            bar.update(task, completed=event.done, total=event.total, description=event.item)

        yield update


def human_size(n: int | None) -> str:
    """Bytes as a short human-readable string.

    >>> human_size(1536)
    '1.5 KiB'
    """
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def print_rows(rows: list[dict[str, Any]], columns: list[str], *, title: str = "",
               limit: int = 50) -> None:
    """Print rows as a table (at most ``limit``, then a note)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows[:limit]:
        table.add_row(*[_cell(column, row.get(column)) for column in columns])
    console = Console(width=200 if not sys.stdout.isatty() else None)
    console.print(table)
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit} more rows (use --json for all)")


def _cell(column: str, value: Any) -> str:
    if column == "size" and isinstance(value, int):
        return human_size(value)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def render_report(report: Any, *, as_json: bool) -> None:
    """Print a Report grouped by code: one line per code with a count of files."""
    if as_json:
        click.echo(report.to_jsonl(), nl=False)
        return
    groups: dict[str, list[Any]] = {}
    for issue in report:
        groups.setdefault(issue.code, []).append(issue)
    for code, issues in groups.items():
        first = issues[0]
        where = f"{first.dataset}/{first.path}" if first.path else (first.dataset or "")
        more = f" (+{len(issues) - 1} more files)" if len(issues) > 1 else ""
        click.echo(f"{first.severity.name} {code}: {where}: {first.message}{more}", err=True)
        if first.hint:
            click.echo(f"    hint: {first.hint}", err=True)
