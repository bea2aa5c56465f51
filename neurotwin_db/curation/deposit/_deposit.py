"""Deposit a dataset: gate, pack, upload, publish, then record the DOI (resumably)."""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurotwin_db.curation.deposit._datacite import build_datacite, check_datacite
from neurotwin_db.curation.deposit._finalize import finalize
from neurotwin_db.curation.deposit._mapping import to_zenodo
from neurotwin_db.curation.deposit._pack import md5_file, write_archive
from neurotwin_db.curation.deposit._plan import DepositPlan, described, plan_deposit
from neurotwin_db.curation.deposit._sources import find_doi
from neurotwin_db.curation.deposit._state import DepositError, DepositState, locked
from neurotwin_db.curation.deposit._target import find_token
from neurotwin_db.curation.deposit._zenodo import ZenodoClient, is_published, redacted_logs
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress
from neurotwin_db.report import Report, Severity

logger = logging.getLogger(__name__)


class GateError(DepositError):
    """``validate`` (BIDS, neurotwin rules, phi-scan) reports an ERROR: nothing is sent."""

    def __init__(self, dataset: Path, report: Report) -> None:
        errors = report.at_least(Severity.ERROR).issues
        first = errors[0]
        where = f" {first.path}" if first.path else ""
        super().__init__(f"deposit refused: `ntdb validate` reports {len(errors)} error(s) in "
                         f"{dataset} (first: {first.code}{where}: {first.message}); fix them "
                         f"(see `ntdb validate {dataset}`, with the same --identifiers if "
                         f"you gave some) and retry")
        self.report = report


@dataclass(frozen=True)
class DepositResult:
    """What a deposit did."""

    status: str  # "published" or "skipped" (already deposited and unchanged)
    dataset: Path
    doi: str
    record_id: str
    record_url: str
    version: str
    tag: str
    target: str
    files: tuple[dict[str, Any], ...]
    state_file: Path
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what ``--json`` prints)."""
        return {"status": self.status, "dataset": str(self.dataset), "doi": self.doi,
                "record_id": self.record_id, "record_url": self.record_url,
                "version": self.version, "tag": self.tag, "target": self.target,
                "files": list(self.files), "state_file": str(self.state_file),
                "notes": list(self.notes)}


def check_gate(dataset: Path, *, identifiers: Any = None,
               progress: ProgressCallback | None = None) -> Report:
    """Run ``validate`` (BIDS validator, neurotwin rules, phi-scan); raise GateError on ERROR."""
    from neurotwin_db.curation.validate import validate_dataset

    report = validate_dataset(dataset, identifiers=identifiers, progress=progress)
    if report.failed():
        raise GateError(dataset, report)
    return report


def deposit_dataset(dataset: Path, *, to: str, token_env: str | None = None,
                    new_version: bool = False, version: str | None = None,
                    identifiers: Any = None, progress: ProgressCallback = ignore_progress,
                    retries: int | None = None, backoff: float | None = None,
                    timeout: float | None = None, today: datetime.date | None = None
                    ) -> DepositResult:
    """Deposit ``dataset`` with a DOI, or finish an interrupted deposit of it.

    Local checks come first (committed, metadata, DataCite), then the token, then the
    gate; only then is the network used. After publishing, ``DatasetDOI`` is written and
    saved, the version is tagged ``vX.Y.Z`` and, inside a database, the registry and the
    catalog learn the DOI. ``retries``, ``backoff`` (s) and ``timeout`` (s) default to
    ``$NTDB_DEPOSIT_RETRIES`` (5), ``$NTDB_DEPOSIT_BACKOFF`` (2) and
    ``$NTDB_DEPOSIT_TIMEOUT`` (60).
    """
    def planned() -> DepositPlan:
        return plan_deposit(dataset, to=to, new_version=new_version, version=version,
                            today=today)

    plan = planned()
    if plan.status == "skipped":
        return _result(plan, plan.state, "skipped", ("already deposited; nothing to do",))
    with locked(plan.state.path):
        plan = planned()  # again, under the lock: a run that held it may have moved on
        if plan.status == "skipped":
            return _result(plan, plan.state, "skipped", ("already deposited; nothing to do",))
        state = plan.state
        if state.published:  # only the local records are left to write: no network, no token
            return _result(plan, state, "published", (*plan.notes, *finalize(plan, state)))
        token, source = find_token(plan.target, token_env)
        check_content_here(plan)
        check_gate(plan.dataset, identifiers=identifiers, progress=progress)
        with redacted_logs(token):
            client = ZenodoClient(plan.target, token, token_source=source,
                                  retries=_setting(retries, "NTDB_DEPOSIT_RETRIES", 5, int),
                                  backoff=_setting(backoff, "NTDB_DEPOSIT_BACKOFF", 2.0, float),
                                  timeout=_setting(timeout, "NTDB_DEPOSIT_TIMEOUT", 60.0, float))
            try:
                _publish(plan, state, client, progress)
            finally:
                client.close()
            notes = finalize(plan, state)
    return _result(plan, state, "published", (*plan.notes, *notes))


def check_content_here(plan: DepositPlan) -> None:
    """Annexed content of every deposited file must be present (before any upload)."""
    from neurotwin_db.curation.deposit._pack import check_content

    check_content(plan.dataset, [f for a in plan.archives for f in a.files])


def _setting(value: Any, variable: str, default: Any, kind: type) -> Any:
    if value is not None:
        return value
    raw = os.environ.get(variable)
    try:
        return kind(raw) if raw else default
    except ValueError:
        return default


def _publish(plan: DepositPlan, state: DepositState, client: ZenodoClient,
             progress: ProgressCallback) -> None:
    draft = _open_draft(plan, state, client)
    if is_published(draft):
        _record_publication(state, draft)
        return
    _upload(plan, state, client, draft, progress)
    datacite = build_datacite(plan.sources, version=plan.version, issued=plan.issued,
                              doi=state.reserved_doi or None,
                              previous_doi=plan.previous_doi or None)
    check_datacite(datacite, where=str(plan.dataset))
    client.set_metadata(state.deposition_id, to_zenodo(datacite))
    _record_publication(state, client.publish(state.deposition_id))


def _open_draft(plan: DepositPlan, state: DepositState, client: ZenodoClient
                ) -> dict[str, Any]:
    """Create the draft (or a new-version draft), or find the one this deposit made."""
    hint = f"; re-run the same command to resume (state: {state.path})"
    if state.deposition_id:
        client.resume_hint = hint
        draft = client.get(state.deposition_id, missing_ok=True)
        if not draft:
            raise DepositError(f"deposition {state.deposition_id} no longer exists at "
                               f"{plan.target.api} (deleted there?); delete {state.path} to "
                               f"start a new deposit")
    else:
        draft = client.new_version(state.previous_id) if state.new_version else client.create()
        if not draft.get("id"):
            raise DepositError(f"{plan.target.api} answered without a deposition id; it does "
                               f"not speak Zenodo's deposit API (check --to)")
        state.deposition_id, client.resume_hint = str(draft["id"]), hint
        reserved = draft.get("metadata", {}).get("prereserve_doi", {})
        state.reserved_doi = find_doi(str(reserved.get("doi", ""))) or ""
        logger.info("created deposition %s (reserved DOI %s)", state.deposition_id,
                    state.reserved_doi or "none")
    state.bucket = draft.get("links", {}).get("bucket") or state.bucket
    if not state.bucket and not is_published(draft):
        raise DepositError(f"{plan.target.api} gave no links.bucket for deposition "
                           f"{state.deposition_id}; it does not speak Zenodo's bucket API")
    state.commit = plan.commit
    state.save()
    return draft


def _upload(plan: DepositPlan, state: DepositState, client: ZenodoClient,
            draft: dict[str, Any], progress: ProgressCallback) -> None:
    """Upload every archive the draft does not hold yet; drop files that do not belong."""
    overrides = {"dataset_description.json": described(plan.sources.description,
                                                       state.reserved_doi)}
    names, kept = {a.name for a in plan.archives}, set()
    for item in draft.get("files", []):
        name = str(item.get("filename") or item.get("key") or "")
        ours = state.files.get(name, {})
        checksum = str(item.get("checksum") or "").removeprefix("md5:")
        if name in names and ours.get("uploaded") and checksum in ("", ours.get("md5")):
            kept.add(name)
        else:  # inherited from the previous version, or an upload that did not finish
            client.delete_file(state.deposition_id, str(item.get("id") or name))
    for name in set(state.files) - names:
        del state.files[name]
    total = len(plan.archives)
    for done, archive in enumerate(plan.archives, start=1):
        fingerprint = archive.fingerprint(overrides)
        ours = state.files.get(archive.name, {})
        same = ours.get("fingerprint") == fingerprint
        if same and ours.get("uploaded") and archive.name in kept:
            progress(Progress(archive.name, done, total, "skipped"))
            continue
        path = state.staging / archive.name
        if not (same and path.is_file() and md5_file(path) == ours.get("md5")):
            progress(Progress(archive.name, done - 1, total, "packing"))
            md5, size = write_archive(plan.dataset, archive, path, overrides)
            ours = state.files[archive.name] = {"fingerprint": fingerprint, "md5": md5,
                                                "size": size, "uploaded": False}
            state.save()
        progress(Progress(archive.name, done - 1, total, "uploading"))
        client.upload(state.bucket, archive.name, path, ours["md5"], ours["size"])
        ours["uploaded"] = True
        state.save()
        progress(Progress(archive.name, done, total, "uploaded"))


def _record_publication(state: DepositState, deposition: dict[str, Any]) -> None:
    links = deposition.get("links", {})
    doi = find_doi(str(deposition.get("doi") or deposition.get("metadata", {}).get("doi")
                       or links.get("doi") or ""))
    if not doi:
        raise DepositError(f"deposition {state.deposition_id} was published but the server "
                           f"gave no DOI; look the record up on the server (state: "
                           f"{state.path})")
    if state.reserved_doi and doi != state.reserved_doi:
        logger.warning("the record got DOI %s, not the reserved %s: the archives name the "
                       "reserved one", doi, state.reserved_doi)
    state.doi, state.published = doi, True
    state.record_id = str(deposition.get("record_id") or deposition.get("id") or "")
    state.record_url = str(links.get("record_html") or links.get("html") or
                           links.get("latest_html") or f"https://doi.org/{doi}")
    state.save()


def _result(plan: DepositPlan, state: DepositState, status: str,
            notes: tuple[str, ...]) -> DepositResult:
    files = tuple({"name": n, "size": f.get("size"), "md5": f.get("md5")}
                  for n, f in sorted(state.files.items()))
    return DepositResult(status, plan.dataset, state.doi, state.record_id, state.record_url,
                         state.version, f"v{state.version}", plan.target.api, files,
                         state.path, notes)
