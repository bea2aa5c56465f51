"""Index one dataset into catalog tables (files, metadata, subjects, derivatives).

Runs in worker processes (``neurotwin_db.parallel``): it takes a picklable
:class:`IndexTask` and returns :class:`DatasetTables`, doing no writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from neurotwin_db.bidspath import entity_order
from neurotwin_db.catalog._doi import normalize_doi
from neurotwin_db.catalog._inherit import SidecarIndex
from neurotwin_db.catalog._layout import Kind, Placement, parse_bidsignore, place
from neurotwin_db.catalog._scan import Entry, read_blobs, scan_folder, scan_tree
from neurotwin_db.curation import parse_participants
from neurotwin_db.errors import DataladError, InputError
from neurotwin_db.report import Issue, Severity


@dataclass(frozen=True, slots=True)
class IndexTask:
    """What to index: a dataset root, and the commit to read (None for a plain folder)."""

    dataset_id: str
    root: str
    commit: str | None


@dataclass
class DatasetTables:
    """The catalog rows of one dataset."""

    dataset_id: str
    files: pa.Table
    metadata: pa.Table
    subjects: pa.Table
    derivatives: pa.Table
    issues: list[Issue] = field(default_factory=list)


def files_schema() -> pa.Schema:
    """Schema of the ``files`` table: one column per BIDS entity, by short key."""
    return pa.schema(
        [("dataset", pa.string()), ("path", pa.string()), ("pipeline", pa.string())]
        + [(key, pa.string()) for key in entity_order()]
        + [("datatype", pa.string()), ("suffix", pa.string()), ("extension", pa.string()),
           ("size", pa.int64()), ("annexed", pa.bool_()), ("present", pa.bool_()),
           ("bids", pa.bool_())])


METADATA_SCHEMA = pa.schema([("dataset", pa.string()), ("path", pa.string()),
                             ("key", pa.string()), ("value", pa.string())])
DERIVATIVES_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("pipeline", pa.string()), ("path", pa.string()),
    ("name", pa.string()), ("generated_by", pa.string()), ("source_datasets", pa.string()),
    ("source_dois", pa.list_(pa.string()))])


def index_dataset(task: IndexTask) -> DatasetTables:
    """Index the dataset described by ``task``; problems in the data become issues."""
    root = Path(task.root)
    issues: list[Issue] = []
    ignore_text = ""
    if task.commit is None:
        entries = scan_folder(root)
        if (root / ".bidsignore").is_file():
            ignore_text = (root / ".bidsignore").read_text(encoding="utf-8", errors="replace")
    else:
        entries, subdatasets = scan_tree(root, task.commit)
        ignore_text = _tree_file(root, task.commit, ".bidsignore")
        for sub in subdatasets:
            entries += _scan_subdataset(root, sub.path, sub.commit, sub.installed, task, issues)
    return _tables(task.dataset_id, entries, parse_bidsignore(ignore_text), issues)


def _scan_subdataset(root: Path, path: str, commit: str, installed: bool, task: IndexTask,
                     issues: list[Issue]) -> list[Entry]:
    is_derivative = path.startswith("derivatives/") and path.count("/") == 1
    if not is_derivative:
        issues.append(_issue("SUBDATASET_NOT_INDEXED", Severity.HINT, task, path,
                             "subdatasets outside derivatives/ are not indexed"))
        return []
    if not installed:
        issues.append(_issue("DERIVATIVE_NOT_INSTALLED", Severity.WARNING, task, path,
                             "derivative subdataset is not installed, so it was not indexed",
                             f"datalad get -n -d {root} {path}"))
        return []
    try:
        return scan_tree(root / path, commit, prefix=path + "/")[0]
    except DataladError:
        issues.append(_issue("DERIVATIVE_COMMIT_MISSING", Severity.WARNING, task, path,
                             f"commit {commit[:8]} recorded for the derivative is not in its "
                             f"clone; indexed its HEAD instead", f"datalad update -d {root}"))
        return scan_tree(root / path, "HEAD", prefix=path + "/")[0]


def _tree_file(root: Path, commit: str, name: str) -> str:
    import subprocess

    proc = subprocess.run(["git", "-C", str(root), "show", f"{commit}:{name}"],
                          capture_output=True)
    return proc.stdout.decode("utf-8", errors="replace") if proc.returncode == 0 else ""


def _issue(code: str, severity: Severity, task: IndexTask | str, path: str | None,
           message: str, hint: str | None = None) -> Issue:
    dataset = task.dataset_id if isinstance(task, IndexTask) else task
    return Issue(code, severity, message, None if path is None else PurePosixPath(path),
                 hint, dataset)


def _tables(dataset_id: str, entries: list[Entry], ignore: tuple[str, ...],
            issues: list[Issue]) -> DatasetTables:
    placements = [place(e.path, ignore) for e in entries]
    for entry, p in zip(entries, placements, strict=True):
        if p.kind is Kind.INVALID:
            issues.append(_issue("FILE_NOT_BIDS", Severity.WARNING, dataset_id, entry.path,
                                 f"not a BIDS path: {p.error}",
                                 "rename it, move it under sourcedata/, or list it in "
                                 ".bidsignore"))
    texts = _read_texts(entries, placements)
    docs = _parse_json(dataset_id, entries, placements, texts, issues)
    sidecars = SidecarIndex()
    for entry, p in zip(entries, placements, strict=True):
        content = docs.get(entry.path)
        if content is not None and p.kind is Kind.BIDS and p.suffix and p.entities is not None:
            sidecars.add(entry.path.rpartition("/")[0], p.entities, p.suffix, content)
    subjects = _subjects(dataset_id, entries, texts, issues)
    return DatasetTables(
        dataset_id,
        files=_files_table(dataset_id, entries, placements),
        metadata=_metadata_table(dataset_id, entries, placements, sidecars),
        subjects=subjects,
        derivatives=_derivatives_table(dataset_id, placements, docs),
        issues=issues,
    )


def _read_texts(entries: list[Entry], placements: list[Placement]) -> dict[str, bytes | None]:
    wanted = [e for e, p in zip(entries, placements, strict=True)
              if (p.kind in (Kind.BIDS, Kind.TOP) and e.path.endswith(".json"))
              or e.path == "participants.tsv"]
    by_repo: dict[Path, list[Entry]] = {}
    texts: dict[str, bytes | None] = {}
    for entry in wanted:
        if entry.oid is not None and not entry.annexed:
            by_repo.setdefault(entry.repo, []).append(entry)
        else:
            texts[entry.path] = ((entry.repo / entry.relrepo).read_bytes()
                                 if entry.present else None)
    for repo, group in by_repo.items():
        blobs = read_blobs(repo, [e.oid for e in group if e.oid])
        texts.update({e.path: blobs[e.oid] for e in group if e.oid})
    return texts


def _parse_json(dataset_id: str, entries: list[Entry], placements: list[Placement],
                texts: dict[str, bytes | None], issues: list[Issue]) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path, raw in texts.items():
        if not path.endswith(".json"):
            continue
        if raw is None:
            issues.append(_issue("SIDECAR_NOT_PRESENT", Severity.WARNING, dataset_id, path,
                                 "JSON file is annexed and its content is not here, so its "
                                 "metadata was not indexed", f"datalad get {path}"))
            continue
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            issues.append(_issue("INVALID_JSON", Severity.ERROR, dataset_id, path,
                                 f"invalid JSON: {exc}", "fix the JSON syntax (e.g. "
                                 "`python -m json.tool FILE`) and save the dataset"))
            continue
        if not isinstance(doc, dict):
            issues.append(_issue("INVALID_JSON", Severity.ERROR, dataset_id, path,
                                 f"a JSON sidecar must be an object, got {type(doc).__name__}",
                                 "wrap the values in {...} with BIDS keys"))
            continue
        docs[path] = doc
    return docs


def _subjects(dataset_id: str, entries: list[Entry], texts: dict[str, bytes | None],
              issues: list[Issue]) -> pa.Table:
    raw = texts.get("participants.tsv")
    rows: list[dict[str, str | None]] = []
    if raw is not None:
        try:
            rows = parse_participants(raw.decode("utf-8"),
                                      source=f"{dataset_id}/participants.tsv")
        except (InputError, UnicodeDecodeError) as exc:
            issues.append(_issue("PARTICIPANTS_MALFORMED", Severity.ERROR, dataset_id,
                                 "participants.tsv", str(exc),
                                 "fix participants.tsv (one tab between columns, n/a for "
                                 "missing values) and save the dataset"))
    columns = ["participant_id"] + [c for c in (rows[0] if rows else {}) if c != "participant_id"]
    data = {"dataset": [dataset_id] * len(rows)}
    data.update({c: [r.get(c) for r in rows] for c in columns})
    return pa.table({k: pa.array(v, pa.string()) for k, v in data.items()})


def _files_table(dataset_id: str, entries: list[Entry], placements: list[Placement]) -> pa.Table:
    empty: dict[str, str] = {}
    ents = [p.entities or empty for p in placements]
    columns: dict[str, list[Any]] = {
        "dataset": [dataset_id] * len(entries),
        "path": [e.path for e in entries],
        "pipeline": [p.pipeline for p in placements],
    }
    used = {key for d in ents for key in d}
    for key in entity_order():
        columns[key] = [d.get(key) for d in ents] if key in used else [None] * len(ents)
    columns["datatype"] = [p.datatype for p in placements]
    columns["suffix"] = [p.suffix for p in placements]
    columns["extension"] = [p.extension for p in placements]
    columns["size"] = [e.size for e in entries]
    columns["annexed"] = [e.annexed for e in entries]
    columns["present"] = [e.present for e in entries]
    columns["bids"] = [p.kind in (Kind.BIDS, Kind.TOP) for p in placements]
    return pa.table(columns, schema=files_schema())


def _metadata_table(dataset_id: str, entries: list[Entry], placements: list[Placement],
                    sidecars: SidecarIndex) -> pa.Table:
    paths: list[str] = []
    keys: list[str] = []
    values: list[str] = []
    encoded: dict[int, list[tuple[str, str]]] = {}
    for entry, p in zip(entries, placements, strict=True):
        if p.kind is not Kind.BIDS or p.extension == ".json" or not p.entities \
                or "sub" not in p.entities or p.suffix is None:
            continue
        merged = sidecars.metadata(p.base, entry.path.rpartition("/")[0], p.entities, p.suffix)
        if not merged:
            continue
        pairs = encoded.get(id(merged))
        if pairs is None:
            pairs = [(k, json.dumps(v, ensure_ascii=False)) for k, v in merged.items()]
            encoded[id(merged)] = pairs
        for key, value in pairs:
            paths.append(entry.path)
            keys.append(key)
            values.append(value)
    return pa.table({"dataset": [dataset_id] * len(paths), "path": paths, "key": keys,
                     "value": values}, schema=METADATA_SCHEMA)


def _derivatives_table(dataset_id: str, placements: list[Placement],
                       docs: dict[str, dict[str, Any]]) -> pa.Table:
    rows: dict[str, dict[str, Any]] = {}
    for p in placements:
        if p.pipeline is None or p.pipeline in rows:
            continue
        desc = docs.get(f"{p.base}/dataset_description.json", {})
        sources = desc.get("SourceDatasets", [])
        sources = sources if isinstance(sources, list) else []
        dois = [normalize_doi(str(s["DOI"])) for s in sources
                if isinstance(s, dict) and s.get("DOI")]
        rows[p.pipeline] = {
            "dataset": dataset_id, "pipeline": p.pipeline, "path": p.base,
            "name": desc.get("Name"), "generated_by": json.dumps(desc.get("GeneratedBy", [])),
            "source_datasets": json.dumps(sources), "source_dois": dois}
    return pa.Table.from_pylist(list(rows.values()), schema=DERIVATIVES_SCHEMA)
