"""Checks on the dataset as a whole: deposit readiness and the participants table."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from neurotwin_db.curation.validate._ids import license_problem, orcid_problem, orcids_in
from neurotwin_db.curation.validate._registry import Finding, Target, check, read_json

README_NAMES = ("README", "README.md", "README.rst", "README.txt")
CITATION = "CITATION.cff"


def _description_path(target: Target) -> str:
    return f"{target.rel}/dataset_description.json" if target.rel else "dataset_description.json"


def _given(value: object) -> bool:
    """A non-empty string, or a list holding at least one."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(_given(v) or (isinstance(v, dict) and v) for v in value)
    return False


def _field_missing(target: Target, key: str) -> Iterator[Finding]:
    if not _given(target.description.get(key)):
        yield Finding(_description_path(target), location=key, fields={"field": key})


@check("NTDB_NO_LICENSE")
def no_license(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """The description has a License."""
    yield from _field_missing(target, "License")


@check("NTDB_BAD_LICENSE")
def bad_license(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """The License is an SPDX identifier or expression, or a BIDS license value."""
    value = target.description.get("License")
    if _given(value):
        problem = license_problem(str(value))
        if problem:
            yield Finding(_description_path(target), location="License", value=str(value),
                          fields={"reason": problem})


def _citation_authors(target: Target) -> list[Any]:
    """The authors CITATION.cff gives (BIDS accepts it instead of Authors)."""
    import yaml

    path = target.folder / CITATION
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []  # the official validator checks CITATION.cff itself
    authors = data.get("authors") if isinstance(data, dict) else None
    return authors if isinstance(authors, list) else []


@check("NTDB_NO_AUTHORS")
def no_authors(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """Authors are listed in the description or in CITATION.cff."""
    if not _given(target.description.get("Authors")) and not _citation_authors(target):
        yield Finding(_description_path(target), location="Authors")


@check("NTDB_BAD_ORCID")
def bad_orcid(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """Every ORCID iD given for an author is well formed, check digit included."""
    authors = target.description.get("Authors")
    entries = [(_description_path(target), a) for a in
               (authors if isinstance(authors, list) else [authors] if authors else [])]
    entries += [(CITATION if not target.rel else f"{target.rel}/{CITATION}", a)
                for a in _citation_authors(target)]
    for path, author in entries:
        if isinstance(author, dict):
            name = " ".join(str(author.get(k, "")) for k in ("given-names", "family-names",
                                                               "name")).strip()
            orcids = [str(author[k]) for k in ("orcid", "ORCID") if author.get(k)]
        else:
            name, orcids = str(author), list(orcids_in(str(author)))
        for orcid in orcids:
            problem = orcid_problem(orcid)
            if problem:
                yield Finding(path, location="Authors" if path.endswith(".json") else "authors",
                              value=orcid, fields={"author": name, "orcid": orcid,
                                                   "reason": problem})


@check("NTDB_NO_FUNDING")
def no_funding(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """The description says who funded the work."""
    yield from _field_missing(target, "Funding")


@check("NTDB_NO_ETHICS")
def no_ethics(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """The description lists the ethics approvals."""
    yield from _field_missing(target, "EthicsApprovals")


def _has_text(target: Target, name: str) -> bool:
    path = target.folder / name
    try:
        return path.is_file() and bool(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return path.is_file()  # not text: the official validator has its own say


@check("NTDB_NO_README")
def no_readme(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """A README (any BIDS spelling) with some text."""
    if not any(_has_text(target, name) for name in README_NAMES):
        yield Finding(None, fields={"names": ", ".join(README_NAMES)})


@check("NTDB_NO_CHANGES")
def no_changes(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """A CHANGES file with some text."""
    if not _has_text(target, "CHANGES"):
        yield Finding(None)


def _participants_header(target: Target) -> list[str] | None:
    path = target.folder / "participants.tsv"
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return []
    return None if lines is None else (lines[0].rstrip("\r").split("\t") if lines else [])


@check("NTDB_NO_PARTICIPANTS")
def no_participants(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """The dataset has a participants.tsv."""
    if _participants_header(target) is None:
        yield Finding("participants.tsv")


@check("NTDB_PARTICIPANTS_COLUMN_MISSING")
def participants_column_missing(target: Target, params: Mapping[str, Any]
                                ) -> Iterator[Finding]:
    """participants.tsv has each column the database searches by (params: columns)."""
    header = _participants_header(target)
    for column in [] if header is None else params.get("columns", []):
        if column not in header:
            yield Finding("participants.tsv", location=column, fields={"column": column})


@cache
def bids_participants_columns() -> frozenset[str]:
    """The participants.tsv columns the BIDS schema defines."""
    from neurotwin_db.bidspath import bids_schema

    rule = bids_schema().rules.tabular_data.modality_agnostic.Participants
    return frozenset(rule.columns)


@check("NTDB_PARTICIPANTS_COLUMN_UNDESCRIBED")
def participants_column_undescribed(target: Target, params: Mapping[str, Any]
                                    ) -> Iterator[Finding]:
    """participants.json describes each column BIDS defines.

    The official validator already reports the columns BIDS does not define and no
    sidecar describes (TSV_ADDITIONAL_COLUMNS_UNDEFINED).
    """
    header = _participants_header(target) or []
    sidecar = read_json(target.folder / "participants.json")
    sidecar = sidecar if isinstance(sidecar, dict) else {}
    skip = set(params.get("skip", []))
    for column in header:
        entry = sidecar.get(column)
        described = isinstance(entry, dict) and _given(entry.get("Description"))
        if column in bids_participants_columns() and column not in skip and not described:
            yield Finding("participants.json", location=column, fields={"column": column})
