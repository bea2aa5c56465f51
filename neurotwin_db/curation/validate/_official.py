"""The official BIDS validator (``bids-validator-deno``), run offline on a pinned schema.

It runs as ``bids-validator-deno --format json --schema file://…/schema.json DATASET``
(``--format json`` is what ``--json`` now stands for) and exits 16 when it finds errors.
The schema is the copy bidsschematools ships, passed as a ``file://`` URL: a version tag
would make the validator fetch it online. Its codes, locations and severities are kept
as they are; only their shape changes, into :class:`~neurotwin_db.report.Issue`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata, resources
from pathlib import Path, PurePosixPath
from typing import Any

from neurotwin_db.errors import NeurotwinError
from neurotwin_db.report import Issue, Severity

VALIDATOR = "bids-validator-deno"
VALIDATOR_ENV = "NTDB_BIDS_VALIDATOR"  # another validator executable, e.g. a system install
EXIT_OK, EXIT_INVALID = 0, 16
TIMEOUT_S = 3600
SEVERITIES = {"error": Severity.ERROR, "warning": Severity.WARNING}  # "ignore" is dropped
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ValidatorError(NeurotwinError, RuntimeError):
    """The official BIDS validator is missing, crashed, or gave output that cannot be read."""


@dataclass(frozen=True, slots=True)
class OfficialResult:
    """What the official validator found, and how it was run."""

    issues: list[Issue]
    info: dict[str, Any] = field(default_factory=dict)


@cache
def pinned_schema() -> tuple[str, str, str]:
    """``(file URL, schema version, BIDS version)`` of the schema bidsschematools bundles."""
    resource = resources.files("bidsschematools") / "data" / "schema.json"
    path = Path(str(resource)).resolve()
    data = json.loads(path.read_text(encoding="utf-8"))
    return path.as_uri(), str(data["schema_version"]), str(data["bids_version"])


def validator_executable() -> str:
    """The validator to run: ``$NTDB_BIDS_VALIDATOR``, else the one on PATH or in the venv."""
    override = os.environ.get(VALIDATOR_ENV)
    if override:
        found = shutil.which(override)
        if found is None:
            raise ValidatorError(f"{VALIDATOR_ENV}={override!r} is not an executable; point it "
                                 f"at bids-validator-deno, or unset it to use the installed one")
        return found
    found = shutil.which(VALIDATOR) or shutil.which(VALIDATOR, path=str(Path(sys.executable)
                                                                         .parent))
    if found is None:
        raise ValidatorError(f"{VALIDATOR} was not found on PATH; install it with "
                             f"`pip install bids-validator-deno` (it comes with neurotwin-db) "
                             f"and put the venv's bin/ on PATH, or pass --no-bids")
    return found


def validator_version() -> str:
    """The installed bids-validator-deno package version ("unknown" if not installed).

    The executable's ``--version`` is not used: it reports a git commit, not a release.
    """
    try:
        return metadata.version(VALIDATOR)
    except metadata.PackageNotFoundError:
        return "unknown"


def run_official(root: Path) -> OfficialResult:
    """Run the official validator on ``root``; raise ValidatorError if it cannot say."""
    executable = validator_executable()
    schema, schema_version, bids_version = pinned_schema()
    command = [executable, "--format", "json", "--schema", schema, str(root)]
    env = {**os.environ, "NO_COLOR": "1"}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidatorError(f"{VALIDATOR} could not run on {root}: {exc}; run "
                             f"`{VALIDATOR} --json {root}` to see why") from None
    try:
        document = json.loads(proc.stdout) if proc.returncode in (EXIT_OK, EXIT_INVALID) \
            else None
        raw = document["issues"]["issues"] if document else None
    except (json.JSONDecodeError, KeyError, TypeError):
        raw = None
    if not isinstance(raw, list):
        why = (f"its output is not a JSON report ({_last_line(proc.stdout)[:200]!r})"
               if proc.returncode in (EXIT_OK, EXIT_INVALID)
               else _last_line(proc.stderr or proc.stdout))
        raise ValidatorError(f"{VALIDATOR} failed on {root} (exit {proc.returncode}): {why}; "
                             f"run `{VALIDATOR} --json {root}` to see its full output")
    used = str((document.get("summary") or {}).get("schemaVersion") or "")
    if used and used != schema_version:
        raise ValidatorError(f"{VALIDATOR} used BIDS schema {used}, not the pinned "
                             f"{schema_version} ({schema}); upgrade bids-validator-deno")
    messages = document["issues"].get("codeMessages") or {}
    issues = [i for i in (to_issue(r, messages, root.name) for r in raw) if i is not None]
    info = {"validator": VALIDATOR, "version": validator_version(), "executable": executable,
            "schema": schema, "schema_version": used or schema_version,
            "bids_version": bids_version, "exit_status": proc.returncode}
    return OfficialResult(issues, info)


def _last_line(text: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    return next((line for line in reversed(lines) if line and not line.startswith("at ")),
                "no output")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def to_issue(raw: dict[str, Any], messages: dict[str, str], dataset: str) -> Issue | None:
    """One validator issue as an Issue: same code and severity; its file as the path.

    >>> to_issue({"code": "EMPTY_FILE", "severity": "error", "location": "/a.bval"},
    ...          {"EMPTY_FILE": "Empty files not allowed."}, "ds").path
    PurePosixPath('a.bval')
    """
    severity = SEVERITIES.get(str(raw.get("severity")))
    if severity is None:
        return None
    code = str(raw.get("code"))
    where = str(raw.get("location") or "").strip("/")
    inside = [str(raw["subCode"])] if raw.get("subCode") else []
    if raw.get("line") is not None:
        inside.append(f"line {raw['line']}")
    message = _collapse(str(messages.get(code) or code))
    detail = _collapse(str(raw.get("issueMessage") or "").split("\n\n")[0])
    if detail and not detail.startswith("Field description"):
        message = f"{message} ({detail})"
    return Issue(code, severity, message, PurePosixPath(where) if where else None,
                 dataset=dataset, location=", ".join(inside) or None)
