"""Checks on derivatives: what made them, from what, and the DOIs of those sources.

A source's DOI is known when a ``SourceDatasets`` URL points at a local dataset (a
relative or absolute path, ``file://``, or ``bids:<name>:`` through ``DatasetLinks``)
whose dataset_description.json has ``DatasetDOI``. Each known DOI must be cited. A
derivative inside the dataset it was made from travels in that dataset's record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from neurotwin_db.curation.validate._registry import Finding, Target, check, read_description
from neurotwin_db.modelling.derivatives import SourceDataset


def _description_path(target: Target) -> str:
    return f"{target.rel}/dataset_description.json" if target.rel else "dataset_description.json"


def normalize_doi(doi: str) -> str:
    """The catalog's DOI normal form (imported lazily: the catalog pulls in DuckDB)."""
    from neurotwin_db.catalog._doi import normalize_doi as normalize

    return normalize(doi)


def _name(target: Target) -> str:
    return target.rel or target.root.name


def source_datasets(description: Mapping[str, Any]) -> list[SourceDataset]:
    """The ``SourceDatasets`` entries (entries that are not objects are skipped)."""
    entries = description.get("SourceDatasets")
    return [SourceDataset(url=str(e.get("URL") or ""), version=str(e.get("Version") or ""),
                          doi=str(e.get("DOI") or ""))
            for e in (entries if isinstance(entries, list) else []) if isinstance(e, dict)]


@check("NTDB_DERIVATIVE_NO_GENERATEDBY")
def derivative_no_generatedby(target: Target, params: Mapping[str, Any]
                              ) -> Iterator[Finding]:
    """GeneratedBy names at least one pipeline."""
    generated = target.description.get("GeneratedBy")
    if not (isinstance(generated, list) and generated
            and all(isinstance(g, dict) and str(g.get("Name") or "").strip()
                    for g in generated)):
        yield Finding(_description_path(target), location="GeneratedBy",
                      fields={"derivative": _name(target)})


@check("NTDB_DERIVATIVE_NO_SOURCES")
def derivative_no_sources(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """SourceDatasets lists at least one source with a URL or a DOI."""
    if not any(s.url or s.doi for s in source_datasets(target.description)):
        yield Finding(_description_path(target), location="SourceDatasets",
                      fields={"derivative": _name(target)})


def local_dataset(url: str, base: Path, links: Mapping[str, Any] | None = None) -> Path | None:
    """The local BIDS dataset ``url`` points at, resolved from ``base``; None otherwise.

    >>> local_dataset("https://example.org/ds", Path(".")) is None
    True
    """
    if url.startswith("bids:"):
        name = url.split(":", 2)[1]
        link = (links or {}).get(name) if name else None
        return local_dataset(str(link), base) if isinstance(link, str) and link else None
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme or not url:
        return None
    else:
        path = Path(url)
    path = path if path.is_absolute() else base / path
    return path if (path / "dataset_description.json").is_file() else None


def known_source_dois(target: Target) -> list[tuple[str, str]]:
    """``(doi, source)`` for every source of the derivative whose DOI is known locally.

    A derivative inside ``derivatives/`` of the dataset it was made from is deposited in
    that dataset's own record, so the dataset's DOI is not asked of it (it could only be
    cited after the deposit that mints it).
    """
    folder = target.folder
    container = folder.parent.parent.resolve() if folder.parent.name == "derivatives" else None
    known = []
    links = target.description.get("DatasetLinks")
    for source in source_datasets(target.description):
        path = local_dataset(source.url, folder, links if isinstance(links, dict) else None)
        if path is None or path.resolve() == container:
            continue
        doi = str(read_description(path).get("DatasetDOI") or "")
        if doi:
            known.append((normalize_doi(doi), source.url))
    return known


def cited_dois(description: Mapping[str, Any]) -> set[str]:
    """The DOIs ``SourceDatasets`` cites (a DOI field, or a doi.org URL)."""
    cited = set()
    for source in source_datasets(description):
        for value in (source.doi, source.url):
            if value.lower().startswith(("doi:", "10.")) or "doi.org/" in value.lower():
                cited.add(normalize_doi(value))
    return cited


@check("NTDB_SOURCE_DOI_NOT_CITED")
def source_doi_not_cited(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """Every source DOI that is known is cited in SourceDatasets."""
    cited = cited_dois(target.description)
    reported = set()
    for doi, source in known_source_dois(target):
        if doi not in cited and doi not in reported:
            reported.add(doi)
            yield Finding(_description_path(target), location="SourceDatasets", value=doi,
                          fields={"derivative": _name(target), "doi": doi, "source": source})
