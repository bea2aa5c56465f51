"""DataCite 4.5 JSON -> the metadata of Zenodo's deposit API (pure)."""

from __future__ import annotations

import html
import re
from typing import Any

from neurotwin_db.curation.deposit._vocab import ZENODO_GRANT_FUNDERS

# DataCite relation -> Zenodo resource_type of the related item (when it is known)
_RESOURCE_TYPES = {"IsDerivedFrom": "dataset", "IsNewVersionOf": "dataset"}


def to_zenodo(datacite: dict[str, Any]) -> dict[str, Any]:
    """Zenodo deposit metadata for the DataCite record ``datacite``.

    Funding that Zenodo cannot take as a grant (only EU grants are) is kept in
    ``notes``; the README becomes the HTML ``description``.

    >>> meta = to_zenodo({"titles": [{"title": "T"}], "creators": [{"name": "Doe, J",
    ...     "nameIdentifiers": [{"nameIdentifier": "https://orcid.org/0000-0002-1825-0097",
    ...     "nameIdentifierScheme": "ORCID"}], "affiliation": [{"name": "Uni"}]}],
    ...     "rightsList": [{"rightsIdentifier": "cc-by-4.0"}], "version": "1.0.0",
    ...     "dates": [{"date": "2025-01-02", "dateType": "Issued"}]})
    >>> meta["creators"]
    [{'name': 'Doe, J', 'orcid': '0000-0002-1825-0097', 'affiliation': 'Uni'}]
    >>> meta["license"], meta["upload_type"]
    ('cc-by-4.0', 'dataset')
    """
    title = datacite["titles"][0]["title"]
    abstract = next((d["description"] for d in datacite.get("descriptions", [])
                     if d.get("descriptionType") == "Abstract"), "")
    meta: dict[str, Any] = {
        "upload_type": "dataset",
        "title": title,
        "creators": [_creator(c) for c in datacite["creators"]],
        "description": markdown_to_html(abstract) if abstract else html.escape(title),
        "access_right": "open",
        "license": datacite["rightsList"][0]["rightsIdentifier"].lower(),
        "version": datacite.get("version", ""),
        "prereserve_doi": True,
    }
    issued = [d["date"] for d in datacite.get("dates", []) if d.get("dateType") == "Issued"]
    if issued:
        meta["publication_date"] = issued[0]
    keywords = [s["subject"] for s in datacite.get("subjects", [])]
    if keywords:
        meta["keywords"] = keywords
    related = [_related(r) for r in datacite.get("relatedIdentifiers", [])]
    if related:
        meta["related_identifiers"] = related
    grants, notes = _funding(datacite.get("fundingReferences", []))
    if grants:
        meta["grants"] = grants
    if notes:
        meta["notes"] = "Funding: " + "; ".join(notes)
    return meta


def _creator(creator: dict[str, Any]) -> dict[str, str]:
    out = {"name": creator["name"]}
    for ident in creator.get("nameIdentifiers", []):
        if ident.get("nameIdentifierScheme") == "ORCID":
            out["orcid"] = ident["nameIdentifier"].rsplit("/", 1)[-1]
    affiliations = [a["name"] for a in creator.get("affiliation", [])]
    if affiliations:
        out["affiliation"] = "; ".join(affiliations)
    return out


def _related(item: dict[str, Any]) -> dict[str, str]:
    relation = item["relationType"]
    out = {"identifier": item["relatedIdentifier"],
           "relation": relation[:1].lower() + relation[1:],
           "scheme": item["relatedIdentifierType"].lower()}
    if relation in _RESOURCE_TYPES:
        out["resource_type"] = _RESOURCE_TYPES[relation]
    return out


def _funding(refs: list[dict[str, Any]]) -> tuple[list[dict[str, str]], list[str]]:
    grants, notes = [], []
    for ref in refs:
        funder = str(ref.get("funderIdentifier", "")).removeprefix("https://doi.org/")
        if funder in ZENODO_GRANT_FUNDERS and ref.get("awardNumber"):
            grants.append({"id": f"{funder}::{ref['awardNumber']}"})
            continue
        parts = [str(ref["funderName"])]
        parts += [f"award {ref['awardNumber']}"] if ref.get("awardNumber") else []
        parts += [f"({ref['awardTitle']})"] if ref.get("awardTitle") else []
        notes.append(" ".join(parts))
    return grants, notes


def markdown_to_html(text: str) -> str:
    r"""A README (Markdown or plain text) as the simple HTML Zenodo shows.

    >>> markdown_to_html("# Title\n\nLine one\nline <two>")
    '<h3>Title</h3>\n<p>Line one<br>line &lt;two&gt;</p>'
    """
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [html.escape(line.rstrip()) for line in block.splitlines()]
        heading = re.match(r"#{1,6}\s+(.*)", lines[0])
        if heading:
            blocks.append(f"<h3>{heading.group(1)}</h3>")
            lines = lines[1:]
        if not lines:
            continue
        if lines[0].startswith("```"):
            blocks.append("<pre>" + "\n".join(lines[1:-1] if lines[-1].startswith("```")
                                              else lines[1:]) + "</pre>")
        else:
            blocks.append("<p>" + "<br>".join(lines) + "</p>")
    return "\n".join(blocks)
