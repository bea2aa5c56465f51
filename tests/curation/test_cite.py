"""ntdb cite: the citation of a dataset's deposited version in four formats."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from deposit_fixtures import ORCID, run, set_description

from neurotwin_db import datalad as dl
from neurotwin_db.curation.deposit import cite_dataset

pytest_plugins = ["deposit_fixtures"]
pytestmark = [pytest.mark.datalad, pytest.mark.usefixtures("deposit_env")]
DOI = "10.5281/zenodo.7654321"


@pytest.fixture
def deposited(shareable):  # noqa: ANN001, ANN201
    """The dataset as a deposit leaves it: DatasetDOI saved and the version tagged."""
    set_description(shareable, DatasetDOI=f"doi:{DOI}")
    dl.tag(shareable, "v1.2.0", message="deposited")
    return shareable


def test_text(deposited):
    result = run("cite", deposited)
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith("Lovelace, A., & Turing, A. (")
    assert "Resting EEG of the deposit tests (Version 1.2.0) [Data set]. Zenodo." in line
    assert line.endswith(f"https://doi.org/{DOI}")


def test_bibtex(deposited):
    result = run("cite", deposited, "--format", "bibtex")
    assert result.exit_code == 0, result.output
    entry = result.stdout
    assert re.match(r"@misc\{lovelace\d{4}resting,\n", entry) and entry.rstrip().endswith("}")
    fields = dict(re.findall(r"^  (\w+)\s*= \{(.*)\},?$", entry, flags=re.M))
    assert fields["author"] == "Lovelace, Ada and Turing, Alan"
    assert fields["title"] == "{Resting EEG of the deposit tests}"
    assert fields["doi"] == DOI and fields["version"] == "1.2.0"
    assert fields["publisher"] == "Zenodo" and fields["url"] == f"https://doi.org/{DOI}"
    assert entry.count("{") == entry.count("}")


def test_cff(deposited):
    result = run("cite", deposited, "--format", "cff")
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["cff-version"] == "1.2.0" and doc["type"] == "dataset"
    assert doc["doi"] == DOI and doc["version"] == "1.2.0" and doc["license"] == "CC-BY-4.0"
    assert doc["authors"][0] == {"family-names": "Lovelace", "given-names": "Ada",
                                 "orcid": f"https://orcid.org/{ORCID}",
                                 "affiliation": "Analytical Engine Society"}


def test_datacite_json_validates(deposited):
    from datacite import schema45

    result = run("cite", deposited, "--format", "datacite-json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert schema45.validate(data), list(schema45.validator.iter_errors(data))
    assert data["doi"] == DOI and data["version"] == "1.2.0"
    assert data["types"]["resourceTypeGeneral"] == "Dataset"
    assert {"funderName": "European Commission", "awardNumber": "101017716"}.items() <= \
        data["fundingReferences"][0].items()


def test_a_new_version_cites_the_version_it_follows(deposited):
    set_description(deposited, DatasetDOI="doi:10.5281/zenodo.7654399")
    dl.tag(deposited, "v1.3.0", message="deposited as a new version")
    data = json.loads(cite_dataset(deposited, format="datacite-json"))
    assert data["version"] == "1.3.0" and data["doi"] == "10.5281/zenodo.7654399"
    assert {"relationType": "IsNewVersionOf", "relatedIdentifier": DOI,
            "relatedIdentifierType": "DOI"}.items() <= next(
        r for r in data["relatedIdentifiers"] if r["relationType"] == "IsNewVersionOf").items()


def test_without_doi_is_a_clear_error(shareable):
    result = run("cite", shareable)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no DatasetDOI" in lines[0] and "ntdb deposit" in lines[0]


def test_untagged_dataset_cites_without_a_version(shareable):
    set_description(shareable, DatasetDOI=f"https://doi.org/{DOI}")
    text = cite_dataset(shareable)
    assert "(Version" not in text and text.endswith(f"https://doi.org/{DOI}")
    assert "version" not in json.loads(cite_dataset(shareable, format="datacite-json"))
