"""DOI normalisation, so that every way of writing a DOI matches."""

from __future__ import annotations

import re


def normalize_doi(doi: str) -> str:
    """Strip ``doi:`` and resolver prefixes and lower-case a DOI (DOIs are case-blind).

    >>> normalize_doi("https://doi.org/10.5281/Zenodo.1")
    '10.5281/zenodo.1'
    """
    return re.sub(r"^(doi:|https?://(dx\.)?doi\.org/)", "", doi.strip(), flags=re.I).lower()
