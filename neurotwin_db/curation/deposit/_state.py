"""The resumable state of a deposit: one JSON file per dataset, version and target.

It lives outside the dataset (``$NTDB_STATE_DIR`` or ``$XDG_STATE_HOME/neurotwin-db/
deposits``), so it is never deposited nor committed, and it never holds the token. It
records the deposition id as soon as the server gives one: a re-run continues that
deposition and never creates a second record.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from neurotwin_db._io import write_json
from neurotwin_db.errors import InputError, NeurotwinError

STATE_ENV = "NTDB_STATE_DIR"
FORMAT = 1


class DepositError(NeurotwinError, RuntimeError):
    """A deposit failed (server, network, token); the message says how to resume."""


def state_dir() -> Path:
    """Where deposit states live (``NTDB_STATE_DIR`` overrides)."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "neurotwin-db" / "deposits"


def slug(text: str) -> str:
    """A file-name-safe form of a host or URL.

    >>> slug("http://127.0.0.1:8766/api")
    '127.0.0.1_8766_api'
    """
    text = re.sub(r"^[a-z]+://", "", text)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@dataclass
class DepositState:
    """Where one deposit stands; saved after every step that the server acknowledged."""

    path: Path
    dataset_id: str
    version: str
    api: str
    new_version: bool = False
    previous_doi: str = ""
    previous_id: str = ""
    commit: str = ""
    deposition_id: str = ""
    bucket: str = ""
    reserved_doi: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    doi: str = ""
    record_id: str = ""
    record_url: str = ""
    published: bool = False
    finalized: bool = False
    started: str = field(default_factory=_now)
    updated: str = ""

    def save(self) -> None:
        """Write the state atomically (creating its private folder)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.updated = _now()
        payload = {"format": FORMAT, **{k: v for k, v in asdict(self).items() if k != "path"}}
        write_json(self.path, payload, overwrite=True)

    @property
    def staging(self) -> Path:
        """The folder the archives are packed into, next to the state file."""
        return self.path.with_suffix(".files")

    @classmethod
    def load(cls, path: Path) -> DepositState:
        """Read a state file, or raise a clear error if it is damaged."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)} - {"path"}
            return cls(path=path, **{k: v for k, v in data.items() if k in known})
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise InputError(f"the deposit state {path} is damaged ({exc}); look up the "
                             f"deposition on the server, then delete the file and retry"
                             ) from None


def state_path(dataset_id: str, version: str, target: str) -> Path:
    """The state file of one deposit."""
    return state_dir() / f"{dataset_id}-v{version}-{target}.json"


def find_states(dataset_id: str, target: str) -> list[DepositState]:
    """Every recorded deposit of ``dataset_id`` to ``target``, oldest first."""
    folder = state_dir()
    if not folder.is_dir():
        return []
    found = [DepositState.load(p) for p in folder.glob(f"{dataset_id}-v*-{target}.json")]
    return sorted(found, key=lambda s: s.started)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for the deposit at ``path`` (released on exit or crash)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = path.with_suffix(".lock")
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DepositError(f"another `ntdb deposit` of this dataset is running (lock "
                               f"{lock}); wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
