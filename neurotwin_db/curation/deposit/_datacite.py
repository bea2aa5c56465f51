"""DataCite 4.5 metadata from a dataset's own files (pure), and its offline validation."""

from __future__ import annotations

import datetime
import re
from typing import Any

from neurotwin_db.curation.deposit._sources import DatasetSources, find_doi
from neurotwin_db.curation.deposit._vocab import (
    DATATYPE_SUBJECTS,
    LICENSES,
    SPECIES_TAXON,
    TAXONOMY_URL,
    match_funder,
    spdx_license,
)
from neurotwin_db.errors import InputError

SCHEMA_VERSION = "http://datacite.org/schema/kernel-4"
ORCID_URL = "https://orcid.org/"
_NAME_PARTICLES = frozenset({"van", "von", "der", "den", "de", "da", "di", "du", "del", "della",
                             "la", "le", "ter", "ten", "dos", "das", "zu"})
# An ORCID written into a BIDS Authors string: "Ada Lovelace (https://orcid.org/0000-...)",
# "Ada Lovelace, ORCID 0000-...": taken out of the name and kept as its identifier
_ORCID_IN_NAME = re.compile(r"[,;]?\s*\(?\s*(?:orcid(?:\s*id)?\s*:?\s*)?(?:https?://orcid\.org/)?"
                            r"(\d{4}-\d{4}-\d{4}-\d{3}[\dXx])\s*\)?", re.I)
_ORCID = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])")
_ORGANISATION = re.compile(r"\b(consortium|group|team|lab|laboratory|university|institute|"
                           r"centre|center|project|network|initiative|demo)\b", re.I)
_AWARD = re.compile(r"(?:grant(?:\s+agreement)?|award|contract)\s*(?:no\.?|number|nr\.?|#)?"
                    r"\s*[:.]?\s*([A-Z]{0,6}[0-9][A-Z0-9/._-]*)", re.I)
_AWARD_TITLE = re.compile(r"\(([^()]*[A-Za-z][^()]*)\)\s*\.?$")
# Where each DataCite property comes from, so a validation error names the file to fix.
SOURCE_OF = {
    "titles": "dataset_description.json Name", "creators": "dataset_description.json "
    "Authors (or CITATION.cff authors)", "fundingReferences": "dataset_description.json "
    "Funding", "relatedIdentifiers": "dataset_description.json SourceDatasets/"
    "ReferencesAndLinks or CITATION.cff references", "subjects": "participants.tsv species "
    "or CITATION.cff keywords", "rightsList": "dataset_description.json License",
    "descriptions": "README", "version": "the version (--version)", "doi": "the DOI",
}


def build_datacite(sources: DatasetSources, *, version: str, issued: datetime.date,
                   doi: str | None = None, previous_doi: str | None = None,
                   publisher: str = "Zenodo") -> dict[str, Any]:
    """DataCite 4.5 JSON for the dataset (pure; validate it with :func:`check_datacite`).

    Creators come from CITATION.cff when it lists authors (ORCID, affiliation), else
    from ``Authors``; rights from ``License``; funding from ``Funding``; related
    identifiers from ``SourceDatasets`` (IsDerivedFrom), the previous version
    (IsNewVersionOf) and paper DOIs (IsSupplementTo).
    """
    desc, cff = sources.description, sources.citation
    title = desc.get("Name") or cff.get("title")
    if title is None or title == "":
        raise InputError(f"{sources.root}/dataset_description.json has no Name; add "
                         f"\"Name\": \"<dataset title>\" (it becomes the record's title)")
    data: dict[str, Any] = {
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "BIDS dataset"},
        "creators": creators(sources),
        "titles": [{"title": title}],
        "publisher": {"name": publisher},
        "publicationYear": str(issued.year),
        "subjects": _subjects(sources),
        "dates": [{"date": issued.isoformat(), "dateType": "Issued"}],
        "version": version,
        "rightsList": [rights(sources)],
        "fundingReferences": _funding(desc.get("Funding") or []),
        "relatedIdentifiers": _related(sources, previous_doi),
        "schemaVersion": SCHEMA_VERSION,
    }
    if sources.readme:
        data["descriptions"] = [{"description": sources.readme, "descriptionType": "Abstract"}]
    if doi:
        data["doi"] = find_doi(doi) or doi
    return {k: v for k, v in data.items() if v != []}


def creators(sources: DatasetSources) -> list[dict[str, Any]]:
    """DataCite creators: CITATION.cff authors if present, else BIDS ``Authors``."""
    listed = sources.citation.get("authors")
    if listed:
        if not isinstance(listed, list):
            raise InputError(f"{sources.root}/CITATION.cff: authors must be a list of "
                             f"persons (family-names, given-names, orcid, affiliation)")
        return [_cff_person(p, n, sources) for n, p in enumerate(listed, start=1)]
    authors = sources.description.get("Authors")
    if not authors:
        raise InputError(f"{sources.root}/dataset_description.json has no Authors (and no "
                         f"CITATION.cff lists authors); add \"Authors\": [\"Given Family\", "
                         f"...] to name the dataset's creators")
    if not isinstance(authors, list):
        raise InputError(f"{sources.root}/dataset_description.json: Authors is "
                         f"{authors!r}, not a list; write [\"Given Family\", ...]")
    return [_bids_person(a) for a in authors]


def _bids_person(author: object) -> dict[str, Any]:
    """A DataCite creator from one BIDS ``Authors`` string ("Given Family" or "Family, Given").

    >>> _bids_person("Ada Lovelace (https://orcid.org/0000-0002-1825-0097)")["familyName"]
    'Lovelace'
    """
    if not isinstance(author, str):
        return {"name": author}  # the DataCite check names the bad entry
    found = _ORCID_IN_NAME.search(author)
    orcid = check_orcid(found[1].upper(), f"dataset_description.json Authors {author!r}"
                        ) if found else ""
    if found:
        author = author[:found.start()] + author[found.end():]
    name = " ".join(author.split()).strip(" ,;")
    if _ORGANISATION.search(name) or (" " not in name and "," not in name):
        return {"name": name, "nameType": "Organizational"}
    if "," in name:
        family, given = (s.strip() for s in name.split(",", 1))
    else:
        words = name.split(" ")
        cut = len(words) - 1
        while cut > 1 and words[cut - 1] in _NAME_PARTICLES:  # "Jane van der Berg"
            cut -= 1
        given, family = " ".join(words[:cut]), " ".join(words[cut:])
    return _person(family, given, orcid)


def _person(family: str, given: str, orcid: str = "", affiliation: str = "") -> dict[str, Any]:
    person: dict[str, Any] = {"name": f"{family}, {given}" if given else family,
                              "nameType": "Personal", "familyName": family}
    if given:
        person["givenName"] = given
    if orcid:
        person["nameIdentifiers"] = [{"nameIdentifier": ORCID_URL + orcid,
                                      "nameIdentifierScheme": "ORCID",
                                      "schemeUri": "https://orcid.org"}]
    if affiliation:
        person["affiliation"] = [{"name": affiliation}]
    return person


def _cff_person(entry: object, number: int, sources: DatasetSources) -> dict[str, Any]:
    where = f"{sources.root}/CITATION.cff author {number}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} is {entry!r}, not a mapping with family-names/given-names")
    orcid = check_orcid(str(entry["orcid"]), where) if entry.get("orcid") else ""
    affiliation = str(entry.get("affiliation") or "")
    if entry.get("family-names"):
        family = " ".join(str(entry.get(k) or "") for k in ("name-particle", "family-names"))
        given = str(entry.get("given-names") or "")
        return _person(family.strip(), given, orcid, affiliation)
    if entry.get("name"):
        org: dict[str, Any] = {"name": entry["name"], "nameType": "Organizational"}
        return org | ({"affiliation": [{"name": affiliation}]} if affiliation else {})
    raise InputError(f"{where} has neither family-names nor name; add family-names and "
                     f"given-names (a person) or name (an organisation)")


def check_orcid(value: str, where: str) -> str:
    """The bare ORCID iD in ``value`` after checking its check digit (ISO 7064 11,2).

    >>> check_orcid("https://orcid.org/0000-0002-1825-0097", "here")
    '0000-0002-1825-0097'
    """
    match = _ORCID.search(value)
    if match:
        digits = match.group(1).replace("-", "")
        total = 0
        for char in digits[:-1]:
            total = (total + int(char)) * 2
        check = (12 - total % 11) % 11
        if digits[-1] == ("X" if check == 10 else str(check)):
            return match.group(1)
    raise InputError(f"{where}: ORCID {value!r} is not a valid ORCID iD; write it as "
                     f"https://orcid.org/0000-0000-0000-0000 (copy it from orcid.org)")


def rights(sources: DatasetSources) -> dict[str, str]:
    """The DataCite rights entry of ``License`` (an SPDX id), or a clear error."""
    value = sources.description.get("License") or sources.citation.get("license")
    where = f"{sources.root}/dataset_description.json"
    if not value:
        raise InputError(f"{where} has no License; add e.g. \"License\": \"CC-BY-4.0\" "
                         f"(an SPDX id: {', '.join(LICENSES)})")
    spdx = spdx_license(value) if isinstance(value, str) else None
    if spdx is None:
        raise InputError(f"{where}: License {value!r} is not an open license Zenodo can "
                         f"publish under; use one of the SPDX ids {', '.join(LICENSES)}")
    name, url = LICENSES[spdx]
    return {"rights": name, "rightsUri": url, "rightsIdentifier": spdx.lower(),
            "rightsIdentifierScheme": "SPDX", "schemeUri": "https://spdx.org/licenses/"}


def _subjects(sources: DatasetSources) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [{"subject": "BIDS"}]
    found += [{"subject": DATATYPE_SUBJECTS[d]} for d in sources.datatypes]
    for species in sources.species:
        entry: dict[str, Any] = {"subject": species[:1].upper() + species[1:]}
        if species in SPECIES_TAXON:
            entry |= {"subjectScheme": "NCBI Taxonomy",
                      "schemeUri": "https://www.ncbi.nlm.nih.gov/taxonomy",
                      "valueUri": TAXONOMY_URL.format(SPECIES_TAXON[species]),
                      "classificationCode": str(SPECIES_TAXON[species])}
        found.append(entry)
    keywords = sources.citation.get("keywords") or sources.description.get("Keywords") or []
    found += [{"subject": k} for k in keywords if isinstance(k, str)] if isinstance(
        keywords, list) else []
    return _unique(found)


def _funding(statements: object) -> list[dict[str, Any]]:
    if isinstance(statements, str):
        statements = [statements]
    if not isinstance(statements, list):
        return [{"funderName": statements}]
    return _unique([parse_funding(s) if isinstance(s, str) else {"funderName": s}
                    for s in statements])


def parse_funding(text: str) -> dict[str, Any]:
    """A DataCite funding reference from a free-text BIDS ``Funding`` statement.

    >>> ref = parse_funding("EU Horizon 2020, grant agreement No 101017716 (Neurotwin)")
    >>> ref["funderName"], ref["awardNumber"], ref["awardTitle"]
    ('European Commission', '101017716', 'Neurotwin')
    """
    text = " ".join(text.split())
    ref: dict[str, Any] = {}
    funder = match_funder(text)
    if funder:
        ref = {"funderName": funder[0], "funderIdentifier": f"https://doi.org/{funder[1]}",
               "funderIdentifierType": "Crossref Funder ID"}
    else:
        ref = {"funderName": re.split(r",|\s+under\s+|\s+grant\b", text, maxsplit=1)[0].strip()
               or text}
    award = _AWARD.search(text)
    if award:
        ref["awardNumber"] = award.group(1).rstrip("._-")
    title = _AWARD_TITLE.search(text)
    if title:
        ref["awardTitle"] = title.group(1).strip()
    return ref


def _related(sources: DatasetSources, previous_doi: str | None) -> list[dict[str, Any]]:
    desc, cff = sources.description, sources.citation
    out: list[dict[str, Any]] = []
    for number, source in enumerate(desc.get("SourceDatasets") or [], start=1):
        if isinstance(source, dict) and source.get("DOI"):
            doi = find_doi(source["DOI"])
            if doi is None:
                raise InputError(f"{sources.root}/dataset_description.json SourceDatasets "
                                 f"entry {number}: DOI {source['DOI']!r} is not a DOI; write "
                                 f"it as doi:10.xxxx/yyyy")
            out.append(_doi_relation(doi, "IsDerivedFrom", "Dataset"))
    if previous_doi:
        out.append(_doi_relation(find_doi(previous_doi) or previous_doi, "IsNewVersionOf",
                                 "Dataset"))
    references = list(desc.get("ReferencesAndLinks") or [])
    for item in [*(cff.get("references") or []), cff.get("preferred-citation")]:
        if isinstance(item, dict) and item.get("doi"):
            references.append(str(item["doi"]))
    for ref in references:
        doi = find_doi(ref)
        if doi:
            out.append(_doi_relation(doi, "IsSupplementTo"))
        elif isinstance(ref, str) and ref.startswith(("https://", "http://")):
            out.append({"relatedIdentifier": ref, "relatedIdentifierType": "URL",
                        "relationType": "References"})
    return _unique(out)


def _doi_relation(doi: str, relation: str, kind: str | None = None) -> dict[str, Any]:
    entry = {"relatedIdentifier": doi, "relatedIdentifierType": "DOI", "relationType": relation}
    return entry | ({"resourceTypeGeneral": kind} if kind else {})


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def check_datacite(data: dict[str, Any], *, where: str = "the dataset") -> None:
    """Validate DataCite 4.5 JSON offline; raise InputError naming the first bad field."""
    from datacite import schema45
    from jsonschema.exceptions import best_match

    error = best_match(schema45.validator.iter_errors(data))
    if error is None:
        return
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    top = next((str(p) for p in error.absolute_path), "")
    source = SOURCE_OF.get(top, "the metadata files")
    message = " ".join(error.message.split())
    message = message if len(message) < 200 else message[:200] + "..."
    raise InputError(f"the DataCite metadata of {where} is not valid at {path.lstrip('.') or '/'}"
                     f": {message} (from {source}); fix that value and retry")
