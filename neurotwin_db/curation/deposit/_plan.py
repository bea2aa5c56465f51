"""Plan a deposit: which version, which record, what metadata and which archives.

Planning reads the dataset and the local deposit states only; it never touches the
network or writes anything, so it backs ``--dry-run``.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db.curation.deposit._datacite import build_datacite, check_datacite
from neurotwin_db.curation.deposit._mapping import to_zenodo
from neurotwin_db.curation.deposit._pack import Archive, list_shareable, plan_archives
from neurotwin_db.curation.deposit._sources import DatasetSources, find_doi, read_sources
from neurotwin_db.curation.deposit._state import DepositState, find_states, state_path
from neurotwin_db.curation.deposit._target import Target, resolve_target
from neurotwin_db.errors import InputError

_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
_RECORD_IN_DOI = re.compile(r"zenodo\.(\d+)$")
DESCRIPTION = "dataset_description.json"


@dataclass(frozen=True)
class DepositPlan:
    """Everything a deposit will do, decided before any network call."""

    dataset: Path
    dataset_id: str
    commit: str
    target: Target
    version: str
    sources: DatasetSources
    datacite: dict[str, Any]
    zenodo: dict[str, Any]
    archives: tuple[Archive, ...]
    state: DepositState
    issued: datetime.date
    previous_doi: str = ""
    status: str = "new"  # "new", "resume" (an unfinished deposit) or "skipped" (done)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tag(self) -> str:
        """The git tag of the deposited version."""
        return f"v{self.version}"

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (what ``--dry-run`` prints)."""
        return {"dataset": str(self.dataset), "commit": self.commit, "status": self.status,
                "target": self.target.api, "version": self.version, "tag": self.tag,
                "previous_doi": self.previous_doi, "state_file": str(self.state.path),
                "archives": [{"name": a.name, "files": len(a.files), "size": a.size}
                             for a in self.archives],
                "datacite": self.datacite, "zenodo": self.zenodo, "notes": list(self.notes)}


def plan_deposit(dataset: Path, *, to: str, new_version: bool = False,
                 version: str | None = None, today: datetime.date | None = None
                 ) -> DepositPlan:
    """Plan the deposit of ``dataset`` to ``to`` (zenodo, zenodo-sandbox or an API URL).

    Refuses a dataset with uncommitted changes (a DOI must point at a recorded
    version), metadata that cannot make valid DataCite 4.5, and an unfinished deposit
    run with other options. An unfinished deposit of this dataset to this target is
    resumed; one that is done and unchanged since is ``skipped``.
    """
    target = resolve_target(to)
    root = dataset_root(dataset)
    dataset_id = dl.git(root, "config", "-f", ".datalad/config", "--default", "",
                        "--get", "datalad.dataset.id").decode().strip() or _root_commit(root)
    if version is not None and not _VERSION.fullmatch(version):
        raise InputError(f"--version {version!r} is not a version like 1.2.0; pass "
                         f"MAJOR.MINOR.PATCH")
    files = list_shareable(root)
    sources = read_sources(root, [f.path for f in files])
    current_doi = find_doi(sources.description.get("DatasetDOI")) or ""
    states = find_states(dataset_id, target.key)
    open_ = [s for s in states if not s.finalized and s.deposition_id]
    notes: list[str] = [f"subdataset {path}/ is not deposited (deposit it on its own)"
                        for path in dl.subdataset_paths(root)]
    status, previous = "new", ""
    if open_:
        state, status = open_[-1], "resume"
        _check_same_options(state, new_version, version)
        version, previous = state.version, state.previous_doi
        notes.append(f"resuming the unfinished deposit of v{version} (deposition "
                     f"{state.deposition_id}, started {state.started})")
    elif not new_version:
        if current_doi:
            done = next((s for s in states if s.finalized and s.doi == current_doi), None)
            if done and tag_commit(root, f"v{done.version}") == dl.head_commit(root):
                state, status, version = done, "skipped", done.version
            else:
                raise InputError(f"{root} already has DatasetDOI doi:{current_doi}; deposit its"
                                 f" changes as a new version: `ntdb deposit {root} --to {to} "
                                 f"--new-version` (if that DOI is a sandbox test record, "
                                 f"remove DatasetDOI and its tag first)")
        version = version or _version_field(sources.description) or "1.0.0"
    else:
        if not current_doi:
            raise InputError(f"--new-version needs the previous version's DOI, but "
                             f"{root}/{DESCRIPTION} has no DatasetDOI; deposit the first "
                             f"version without --new-version")
        previous, latest = current_doi, latest_version(root)
        if latest and tag_commit(root, f"v{latest}") == dl.head_commit(root):
            raise InputError(f"{root} has not changed since v{latest} (doi:{current_doi}); "
                             f"save the changes the new version brings, then retry")
        version = version or bump_minor(latest or "1.0.0")
    if status == "new":
        _check_new_tag(root, version)
        state = DepositState(state_path(dataset_id, version, target.key), dataset_id,
                             version, target.api, new_version=bool(previous),
                             previous_doi=previous,
                             previous_id=_previous_record(previous, states, target) if previous
                             else "")
    if status != "skipped":
        check_clean(root, allow_description=status == "resume" and state.published)
    today = today or datetime.datetime.now(datetime.UTC).date()
    datacite = build_datacite(sources, version=version, issued=today,
                              doi=state.doi or state.reserved_doi or None,
                              previous_doi=previous or None)
    check_datacite(datacite, where=str(root))
    return DepositPlan(root, dataset_id, dl.head_commit(root) or "", target, version, sources,
                       datacite, to_zenodo(datacite), tuple(plan_archives(files)), state,
                       today, previous, status, tuple(notes))


def dataset_root(dataset: Path) -> Path:
    """The dataset's root, if it is a DataLad dataset with at least one commit."""
    root = Path(dataset).resolve()
    if not dl.is_dataset(root):
        raise InputError(f"{root} is not the root of a DataLad dataset; a DOI must point at a "
                         f"recorded version: make it one with `datalad create --force {root}` "
                         f"and `datalad save -d {root}`")
    if dl.head_commit(root) is None:
        raise InputError(f"{root} has no saved version yet; save it with `datalad save -d "
                         f"{root}` and retry")
    return root


def check_clean(root: Path, *, allow_description: bool = False) -> None:
    """Refuse uncommitted changes: the deposit must be a recorded version."""
    out = dl.git(root, "status", "--porcelain", "--untracked-files=normal").decode()
    changed = [line[3:] for line in out.splitlines() if line.strip()]
    if allow_description:  # a publish whose DatasetDOI write was interrupted
        changed = [p for p in changed if p != DESCRIPTION]
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise InputError(f"{root} has uncommitted changes ({', '.join(changed[:3])}{more}); a "
                         f"DOI must point at a recorded version: save them with `datalad save "
                         f"-d {root} -m '...'` (or revert them) and retry")


def _check_same_options(state: DepositState, new_version: bool, version: str | None) -> None:
    if (version and version != state.version) or new_version != state.new_version:
        asked = f"v{version}" if version else ("a new version" if new_version else
                                               "a first deposit")
        raise InputError(f"an unfinished deposit of v{state.version} to {state.api} exists "
                         f"(state {state.path}), but {asked} was asked; re-run with the same "
                         f"options to finish it, or delete that file to abandon it")


def _check_new_tag(root: Path, version: str) -> None:
    if tag_commit(root, f"v{version}") is not None:
        raise InputError(f"{root} already has the tag v{version}; pass another version with "
                         f"--version (e.g. --version {bump_minor(version)})")


def tag_commit(root: Path, tag: str) -> str | None:
    """The commit the tag ``tag`` points at, or None when there is no such tag."""
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "-q", "--verify",
                           f"refs/tags/{tag}^{{commit}}"], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _root_commit(root: Path) -> str:
    return dl.git(root, "rev-list", "--max-parents=0", "HEAD").decode().split()[0][:16]


def _version_field(description: dict[str, Any]) -> str | None:
    for key in ("DatasetVersion", "Version"):
        value = str(description.get(key, "")).removeprefix("v")
        if _VERSION.fullmatch(value):
            return value
    return None


def latest_version(root: Path) -> str | None:
    """The highest ``vX.Y.Z`` tag reachable from HEAD, without the ``v``."""
    tags = dl.git(root, "tag", "--list", "v*", "--merged", "HEAD").decode().split()
    found = [t[1:] for t in tags if re.fullmatch(r"v\d+\.\d+\.\d+", t)]
    return max(found, key=lambda v: tuple(map(int, v.split(".")))) if found else None


def bump_minor(version: str) -> str:
    """The next minor version.

    >>> bump_minor("1.4.2")
    '1.5.0'
    """
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}.0"


ZENODO_PREFIXES = {"zenodo": "10.5281/", "zenodo-sandbox": "10.5072/"}  # whose DOIs they mint


def _previous_record(doi: str, states: list[DepositState], target: Target) -> str:
    """The record id of the previous version: from its deposit state, else from the DOI."""
    for state in states:
        if state.doi == doi and (state.record_id or state.deposition_id):
            return state.record_id or state.deposition_id
    prefix = ZENODO_PREFIXES.get(target.name)
    if prefix and not doi.lower().startswith(prefix):
        other = next(name for name, p in ZENODO_PREFIXES.items() if p != prefix)
        minted = f"a {other} record" if doi.lower().startswith(ZENODO_PREFIXES[other]) else (
            "not a record there")
        raise InputError(f"the previous version doi:{doi} is {minted}, so {target.name} cannot "
                         f"make a new version of it (its DOIs start with {prefix}); deposit the "
                         f"first version to {target.name} without --new-version, after removing "
                         f"DatasetDOI and its tag if that DOI was only a test")
    match = _RECORD_IN_DOI.search(doi)
    if match:
        return match.group(1)
    raise InputError(f"cannot tell which record doi:{doi} is (no deposit state here and not a "
                     f"Zenodo DOI like 10.5281/zenodo.N); deposit the new version from the "
                     f"machine that deposited the previous one")


def described(description: dict[str, Any], doi: str) -> bytes:
    """dataset_description.json with ``DatasetDOI`` set to ``doi`` (dropped when empty)."""
    out = dict(description)
    if doi:
        out["DatasetDOI"] = f"doi:{doi}"
    else:
        out.pop("DatasetDOI", None)
    return (json.dumps(out, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
