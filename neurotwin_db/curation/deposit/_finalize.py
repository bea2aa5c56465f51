"""After publishing: DatasetDOI saved with DataLad, a version tag, registry and catalog."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from neurotwin_db import datalad as dl
from neurotwin_db._io import write_bytes
from neurotwin_db.curation.deposit._plan import DESCRIPTION, DepositPlan, described, tag_commit
from neurotwin_db.curation.deposit._state import DepositError, DepositState
from neurotwin_db.errors import NeurotwinError

logger = logging.getLogger(__name__)


def finalize(plan: DepositPlan, state: DepositState) -> list[str]:
    """Record the published DOI locally; each step is skipped when already done."""
    root, tag = plan.dataset, f"v{state.version}"
    path = root / DESCRIPTION
    description = json.loads(path.read_text(encoding="utf-8"))
    content = described(description, state.doi)
    committed = dl.git(root, "show", f"HEAD:{DESCRIPTION}")
    if path.read_bytes() != content:
        write_bytes(path, content, overwrite=True)
    if committed != content:
        dl.save(root, f"deposit {tag}: doi:{state.doi}", paths=[DESCRIPTION],
                record={"action": "deposit", "doi": state.doi, "version": state.version,
                        "target": state.api, "record": state.record_id,
                        "deposited_commit": state.commit})
    head = dl.head_commit(root)
    tagged = tag_commit(root, tag)
    if tagged is None:
        dl.tag(root, tag, message=f"[ntdb] deposit {tag}: doi:{state.doi}\n\n"
                                  f"{state.record_url}")
    elif tagged != head:
        raise DepositError(f"the tag {tag} of {root} points at {tagged[:8]}, not at the "
                           f"deposited version {str(head)[:8]}; the record is published as "
                           f"doi:{state.doi}: move the tag with `git -C {root} tag -f {tag}`")
    notes = record_in_database(root, state.doi, tag)
    state.finalized = True
    state.save()
    shutil.rmtree(state.staging, ignore_errors=True)
    return notes


def record_in_database(root: Path, doi: str, tag: str) -> list[str]:
    """Put the DOI in the registry and the catalog of the database holding ``root``."""
    from neurotwin_db.catalog import build_catalog, is_database, open_database, record_doi

    if not is_database(root.parent):
        return []
    db = open_database(root.parent)
    entry = next((e for e in db.entries() if (db.root / e.path).resolve() == root), None)
    if entry is None:
        return [f"{root.name} is not registered in the database {db.root}; register it with "
                f"`ntdb dataset register` to make the DOI searchable"]
    record_doi(db, entry.id, doi=doi, version=tag)
    try:
        built = build_catalog(db.root)
    except NeurotwinError as exc:
        built, reason = None, str(exc)
    else:
        reason = "; ".join(i.message for i in built.report.at_least(30))
    if built is None or not built.written:
        return [f"the registry of {db.root} records doi:{doi}, but the catalog was not rebuilt "
                f"({reason}); fix that and run `ntdb catalog build {db.root}`"]
    return [f"recorded doi:{doi} ({tag}) in the registry and catalog of {db.root}"]
