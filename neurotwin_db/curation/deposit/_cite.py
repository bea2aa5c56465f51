"""Cite a deposited dataset: text, BibTeX, CITATION.cff or DataCite JSON.

A citation needs the DOI of a recorded version: a dataset without ``DatasetDOI`` gets a
clear error pointing at ``ntdb deposit``, never a citation without an identifier.
"""

from __future__ import annotations

import datetime
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db.curation.deposit._datacite import build_datacite
from neurotwin_db.curation.deposit._sources import find_doi, read_sources
from neurotwin_db.curation.deposit._vocab import spdx_license
from neurotwin_db.errors import InputError, NeurotwinError

FORMATS = ("text", "bibtex", "cff", "datacite-json")
_BIBTEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                   "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                   "^": r"\textasciicircum{}"}


def cite_dataset(dataset: Path, *, format: str = "text") -> str:
    """The citation of the dataset's deposited version, in ``format`` (see FORMATS).

    The version and date come from the latest ``vX.Y.Z`` tag reachable from HEAD;
    the DOI from ``DatasetDOI``.
    """
    if format not in FORMATS:
        raise InputError(f"citation format {format!r} is not known; choose one of "
                         f"{', '.join(FORMATS)}")
    root = Path(dataset).resolve()
    is_git = dl.is_dataset(root) and dl.head_commit(root) is not None
    files = dl.git(root, "ls-files", "-z").decode().split("\0") if is_git else []
    sources = read_sources(root, files)
    doi = find_doi(sources.description.get("DatasetDOI"))
    if not doi:
        raise InputError(f"{root}/dataset_description.json has no DatasetDOI, so there is no "
                         f"version to cite; deposit it first (`ntdb deposit {root} --to "
                         f"zenodo-sandbox --dry-run` shows what would be sent)")
    version, issued = _version_and_date(root) if is_git else ("", datetime.date.today())
    previous = _previous_doi(root, version, doi) if version else None
    data = build_datacite(sources, version=version, issued=issued, doi=doi,
                          previous_doi=previous)
    if not version:
        data.pop("version", None)
    if format == "datacite-json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if format == "bibtex":
        return bibtex(data)
    if format == "cff":
        return cff(data)
    return text(data)


def _version_and_date(root: Path) -> tuple[str, datetime.date]:
    tags = dl.git(root, "tag", "--list", "v*", "--merged", "HEAD",  # highest version first:
                  "--sort=-v:refname",  # two tags made in one second tie on their dates
                  "--format=%(refname:short) %(creatordate:short)")
    for line in tags.decode().splitlines():
        name, _, day = line.partition(" ")
        if re.fullmatch(r"v\d+\.\d+\.\d+.*", name):
            return name[1:], datetime.date.fromisoformat(day)
    day = dl.git(root, "log", "-1", "--format=%cs", "HEAD").decode().strip()
    return "", datetime.date.fromisoformat(day)


def _previous_doi(root: Path, version: str, doi: str) -> str | None:
    """The DOI the version tagged before ``version`` recorded, when it differs from ``doi``."""
    tags = dl.git(root, "tag", "--list", "v*", "--merged", "HEAD", "--sort=-v:refname")
    names = [t for t in tags.decode().split() if re.fullmatch(r"v\d+\.\d+\.\d+.*", t)]
    older = names[names.index(f"v{version}") + 1:] if f"v{version}" in names else []
    for tag in older:
        try:
            described = json.loads(dl.git(root, "show", f"{tag}:dataset_description.json"))
        except (NeurotwinError, json.JSONDecodeError):
            continue
        previous = find_doi(described.get("DatasetDOI"))
        if previous and previous != doi:
            return previous
    return None


def _doi(data: dict[str, Any]) -> str:
    return str(data["doi"])


def text(data: dict[str, Any]) -> str:
    """An APA-style citation line."""
    names = [_short_name(c) for c in data["creators"]]
    authors = names[0] if len(names) == 1 else ", ".join(names[:-1]) + ", & " + names[-1]
    version = f" (Version {data['version']})" if data.get("version") else ""
    return (f"{authors} ({data['publicationYear']}). {data['titles'][0]['title']}{version} "
            f"[Data set]. {data['publisher']['name']}. https://doi.org/{_doi(data)}")


def _short_name(creator: dict[str, Any]) -> str:
    if creator.get("nameType") != "Personal" or not creator.get("givenName"):
        return str(creator["name"])
    initials = " ".join(f"{part[0]}." for part in str(creator["givenName"]).split())
    return f"{creator['familyName']}, {initials}"


def bibtex(data: dict[str, Any]) -> str:
    """A BibTeX ``@misc`` entry (BibTeX has no dataset type; biblatex maps it)."""
    first = data["creators"][0]
    family = str(first.get("familyName") or first["name"])
    title = str(data["titles"][0]["title"])
    words = re.findall(r"[A-Za-z0-9]+", _ascii(title))
    key = re.sub(r"[^a-z0-9]", "", _ascii(family).lower()) + data["publicationYear"] + (
        words[0].lower() if words else "")
    authors = " and ".join(
        _bib(c["name"]) if c.get("nameType") == "Personal" else "{" + _bib(c["name"]) + "}"
        for c in data["creators"])
    fields = [("author", authors), ("title", "{" + _bib(title) + "}"),
              ("year", data["publicationYear"]), ("publisher", _bib(data["publisher"]["name"]))]
    if data.get("version"):
        fields.append(("version", _bib(data["version"])))
    fields += [("doi", _doi(data)), ("url", f"https://doi.org/{_doi(data)}"),
               ("note", "Dataset")]
    body = ",\n".join(f"  {name:<9} = {{{value}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}"


def _bib(value: object) -> str:
    return "".join(_BIBTEX_SPECIAL.get(ch, ch) for ch in str(value))


def _ascii(value: str) -> str:
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()


def cff(data: dict[str, Any]) -> str:
    """A CITATION.cff (format 1.2.0) for the deposited version."""
    import yaml

    doc: dict[str, Any] = {
        "cff-version": "1.2.0",
        "message": "If you use this dataset, please cite it as below.",
        "type": "dataset",
        "title": data["titles"][0]["title"],
        "authors": [_cff_author(c) for c in data["creators"]],
    }
    if data.get("version"):
        doc["version"] = data["version"]
    doc["doi"] = _doi(data)
    doc["date-released"] = data["dates"][0]["date"]
    rights = data.get("rightsList") or [{}]
    spdx = spdx_license(str(rights[0].get("rightsIdentifier", "")))
    if spdx:
        doc["license"] = spdx
    doc["url"] = f"https://doi.org/{_doi(data)}"
    keywords = [s["subject"] for s in data.get("subjects", [])]
    if keywords:
        doc["keywords"] = keywords
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _cff_author(creator: dict[str, Any]) -> dict[str, str]:
    if creator.get("nameType") != "Personal":
        author = {"name": str(creator["name"])}
    else:
        author = {"family-names": str(creator["familyName"])}
        if creator.get("givenName"):
            author["given-names"] = str(creator["givenName"])
    for ident in creator.get("nameIdentifiers", []):
        if ident.get("nameIdentifierScheme") == "ORCID":
            author["orcid"] = str(ident["nameIdentifier"])
    affiliations = [a["name"] for a in creator.get("affiliation", [])]
    if affiliations:
        author["affiliation"] = "; ".join(affiliations)
    return author
