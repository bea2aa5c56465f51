"""Controlled vocabularies for deposit metadata: licenses, funders, species, modalities.

Kept as data so a new entry is one line. Licenses are SPDX identifiers (what BIDS
recommends for ``License``); Zenodo's license ids are the same, lower-cased.
"""

from __future__ import annotations

import re

# SPDX id -> (full name, legal code URL). Open licenses a dataset can be published under.
LICENSES: dict[str, tuple[str, str]] = {
    "CC0-1.0": ("Creative Commons Zero v1.0 Universal",
                "https://creativecommons.org/publicdomain/zero/1.0/legalcode"),
    "CC-BY-4.0": ("Creative Commons Attribution 4.0 International",
                  "https://creativecommons.org/licenses/by/4.0/legalcode"),
    "CC-BY-SA-4.0": ("Creative Commons Attribution Share Alike 4.0 International",
                     "https://creativecommons.org/licenses/by-sa/4.0/legalcode"),
    "CC-BY-NC-4.0": ("Creative Commons Attribution Non Commercial 4.0 International",
                     "https://creativecommons.org/licenses/by-nc/4.0/legalcode"),
    "CC-BY-NC-SA-4.0": ("Creative Commons Attribution Non Commercial Share Alike 4.0 "
                        "International",
                        "https://creativecommons.org/licenses/by-nc-sa/4.0/legalcode"),
    "CC-BY-ND-4.0": ("Creative Commons Attribution No Derivatives 4.0 International",
                     "https://creativecommons.org/licenses/by-nd/4.0/legalcode"),
    "CC-BY-NC-ND-4.0": ("Creative Commons Attribution Non Commercial No Derivatives 4.0 "
                        "International",
                        "https://creativecommons.org/licenses/by-nc-nd/4.0/legalcode"),
    "PDDL-1.0": ("Open Data Commons Public Domain Dedication & License 1.0",
                 "https://opendatacommons.org/licenses/pddl/1-0/"),
    "ODC-By-1.0": ("Open Data Commons Attribution License v1.0",
                   "https://opendatacommons.org/licenses/by/1-0/"),
    "ODbL-1.0": ("Open Data Commons Open Database License v1.0",
                 "https://opendatacommons.org/licenses/odbl/1-0/"),
}
LICENSE_ALIASES = {"CC0": "CC0-1.0", "PDDL": "PDDL-1.0", "ODC-BY": "ODC-By-1.0",
                   "ODBL": "ODbL-1.0", "CC-BY": "CC-BY-4.0"}

# Funders as they are written in BIDS ``Funding`` strings -> name and Crossref Funder ID.
# Order matters: the first match wins (the ERC before the EU in general).
FUNDERS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"european research council|\bERC\b", re.I),
     "European Research Council", "10.13039/501100000781"),
    (re.compile(r"european (union|commission)|horizon[ -](2020|europe)|\bH2020\b|\bEU\b", re.I),
     "European Commission", "10.13039/501100000780"),
    (re.compile(r"national institutes? of health|\bNIH\b", re.I),
     "National Institutes of Health", "10.13039/100000002"),
    (re.compile(r"national science foundation|\bNSF\b", re.I),
     "National Science Foundation", "10.13039/100000001"),
    (re.compile(r"deutsche forschungsgemeinschaft|\bDFG\b", re.I),
     "Deutsche Forschungsgemeinschaft", "10.13039/501100001659"),
    (re.compile(r"wellcome", re.I), "Wellcome Trust", "10.13039/100004440"),
    (re.compile(r"austrian science fund|\bFWF\b", re.I),
     "Austrian Science Fund", "10.13039/501100002428"),
]
# Funders whose grants Zenodo's deposit API accepts as ``grants`` ("<funder DOI>::<award>").
ZENODO_GRANT_FUNDERS = frozenset({"10.13039/501100000780"})

# participants.tsv species (NCBI binomial, lower case) -> NCBI Taxonomy id.
SPECIES_TAXON = {"homo sapiens": 9606, "mus musculus": 10090, "rattus norvegicus": 10116,
                 "macaca mulatta": 9544}
TAXONOMY_URL = "https://www.ncbi.nlm.nih.gov/Taxonomy/Browser/wwwtax.cgi?id={}"

# BIDS datatype folder -> the modality keyword a search engine would use.
DATATYPE_SUBJECTS = {
    "anat": "MRI", "func": "fMRI", "dwi": "diffusion MRI", "perf": "perfusion MRI",
    "eeg": "EEG", "meg": "MEG", "ieeg": "iEEG", "ecephys": "extracellular electrophysiology",
    "icephys": "intracellular electrophysiology", "nirs": "fNIRS", "pet": "PET",
    "beh": "behaviour", "micr": "microscopy", "motion": "motion capture",
    "nibs": "brain stimulation",
}


def spdx_license(value: str) -> str | None:
    """The SPDX id for a ``License`` value, or None when it is not an accepted license.

    >>> spdx_license("cc-by-4.0"), spdx_license("CC0"), spdx_license("mine")
    ('CC-BY-4.0', 'CC0-1.0', None)
    """
    key = value.strip().upper()
    for spdx in LICENSES:
        if spdx.upper() == key:
            return spdx
    return LICENSE_ALIASES.get(key)


def match_funder(text: str) -> tuple[str, str] | None:
    """The (name, Crossref Funder ID) a funding statement names, if known.

    >>> match_funder("EU Horizon 2020 grant agreement No 101017716")
    ('European Commission', '10.13039/501100000780')
    """
    for pattern, name, doi in FUNDERS:
        if pattern.search(text):
            return name, doi
    return None
