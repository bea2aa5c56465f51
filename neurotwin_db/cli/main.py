"""The ``ntdb`` command line: a thin layer over the neurotwin_db library."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import click

from neurotwin_db import __version__
from neurotwin_db.cli.cmd_anonymize import anonymize, phi_scan
from neurotwin_db.cli.cmd_anonymize_dicom import anonymize_dicom
from neurotwin_db.cli.cmd_catalog import catalog
from neurotwin_db.cli.cmd_dataset import dataset
from neurotwin_db.cli.cmd_demo import demo
from neurotwin_db.cli.cmd_deposit import cite, deposit
from neurotwin_db.cli.cmd_get import get
from neurotwin_db.cli.cmd_ingest import ingest
from neurotwin_db.cli.cmd_init import init
from neurotwin_db.cli.cmd_model import model
from neurotwin_db.cli.cmd_nmm import fit, simulate  # noqa: F401 (adds them to `model`)
from neurotwin_db.cli.cmd_twin import twin
from neurotwin_db.cli.cmd_validate import validate

logger = logging.getLogger(__name__)
KEEP_LOGS = 200  # per-run log files (and their reports) kept; older ones are removed


def log_dir() -> Path:
    """Where per-run log files go (``NTDB_LOG_DIR`` overrides)."""
    if "NTDB_LOG_DIR" in os.environ:
        return Path(os.environ["NTDB_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "neurotwin-db" / "logs"


def _not_a_library_deprecation(record: logging.LogRecord) -> bool:
    """Keep libraries' deprecation notices (pydicom logs them) off the console."""
    return "will be removed in v" not in record.getMessage()


def _setup_logging(verbosity: int) -> Path | None:
    level = max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for old in [h for h in root.handlers if getattr(h, "_ntdb", False)]:
        root.removeHandler(old)  # a second invocation in one process (tests, notebooks)
        old.close()
    console = logging.StreamHandler()
    console._ntdb = True  # type: ignore[attr-defined]
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(_not_a_library_deprecation)
    root.addHandler(console)
    # DataLad sets up its own logger on import, from this variable.
    os.environ.setdefault("DATALAD_LOG_LEVEL", logging.getLevelName(level).lower())
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for stale in sorted(folder.glob("ntdb-*.log*"))[:-KEEP_LOGS]:
            stale.unlink(missing_ok=True)
        path = folder / f"ntdb-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None  # an unwritable home must not stop the command
    handler._ntdb = True  # type: ignore[attr-defined]
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ntdb")
@click.option("-v", "--verbose", count=True, help="More output (repeat for more).")
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.option("--debug", is_flag=True, help="Show full tracebacks for every error.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, debug: bool) -> None:
    """Curate, catalogue and model the Neurotwin Database.

    \b
    Data stewards:  ntdb init, ntdb dataset add|register,
                    ntdb ingest dicom|eeg|tms-eeg|tacs|rodent,
                    ntdb phi-scan, ntdb anonymize, ntdb anonymize-dicom,
                    ntdb validate, ntdb deposit, ntdb cite
    Researchers:    ntdb catalog build|search|show, ntdb get
    Everyone:       ntdb demo OUT   (a small database built from real files)
    """
    logfile = _setup_logging(verbose - quiet + (2 if debug else 0))
    ctx.obj = {"debug": debug, "quiet": quiet > 0, "logfile": logfile}
    logger.debug("ntdb %s: %s", __version__, ctx.invoked_subcommand)


cli.add_command(init)
cli.add_command(dataset)
cli.add_command(catalog)
cli.add_command(get)
cli.add_command(ingest)
cli.add_command(demo)
cli.add_command(phi_scan)
cli.add_command(anonymize)
cli.add_command(anonymize_dicom)
cli.add_command(validate)
cli.add_command(model)
cli.add_command(twin)
cli.add_command(deposit)
cli.add_command(cite)
