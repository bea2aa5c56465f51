"""The files every new BIDS dataset of the database starts with (pure builders + one writer)."""

from __future__ import annotations

from pathlib import Path

from neurotwin_db import __version__
from neurotwin_db._io import write_json, write_text, write_tsv
from neurotwin_db.bidspath import bids_version

MODALITIES = ("mri", "eeg", "tms-eeg", "tacs", "rodent", "multi")
SPECIES = ("homo sapiens", "mus musculus", "rattus norvegicus")
HUMAN = "homo sapiens"


def dataset_description(name: str, *, authors: list[str], license: str,
                        dataset_type: str = "raw") -> dict[str, object]:
    """The ``dataset_description.json`` of a new raw dataset."""
    return {
        "Name": name,
        "BIDSVersion": bids_version(),
        "DatasetType": dataset_type,
        "License": license,
        "Authors": authors,
        "GeneratedBy": [{"Name": "neurotwin-db", "Version": __version__,
                         "CodeURL": "https://pypi.org/project/neurotwin-db/"}],
    }


def participants_columns(species: str) -> dict[str, dict[str, object]]:
    """Column descriptions for ``participants.json`` (strain columns for animals)."""
    columns: dict[str, dict[str, object]] = {
        "participant_id": {"Description": "Unique participant label (sub-<label>)."},
        "species": {"Description": "Binomial species name from the NCBI Taxonomy."},
        "age": {"Description": "Age at first session.",
                "Units": "year" if species == HUMAN else "week"},
        "sex": {"Description": "Biological sex.",
                "Levels": {"M": "male", "F": "female", "O": "other"}},
        "group": {"Description": "Study group, e.g. AD, MCI, control."},
    }
    if species != HUMAN:
        columns["strain"] = {"Description": "Strain of the animal."}
        columns["strain_rrid"] = {"Description": "RRID of the strain."}
    return columns


def readme_text(name: str, modality: str, species: str) -> str:
    """A starting README that says what the dataset is and how it is kept."""
    return (
        f"# {name}\n\n"
        f"Part of the Neurotwin Database. Modality: {modality}. Species: {species}.\n\n"
        "This dataset is a BIDS dataset versioned with DataLad. Every change is a DataLad\n"
        "record: see `git log` or `datalad rerun`.\n"
    )


def write_skeleton(root: Path, name: str, *, modality: str, species: str,
                   authors: list[str], license: str) -> list[Path]:
    """Write the BIDS skeleton into the (empty) dataset at ``root``; return the files."""
    columns = participants_columns(species)
    return [
        write_json(root / "dataset_description.json",
                   dataset_description(name, authors=authors, license=license)),
        write_text(root / "README.md", readme_text(name, modality, species)),
        write_text(root / "CHANGES", f"1.0.0 (unreleased)\n  - Dataset created by neurotwin-db "
                                     f"{__version__}.\n"),
        write_tsv(root / "participants.tsv", list(columns), []),
        write_json(root / "participants.json", columns),
        write_text(root / ".bidsignore", "# files the BIDS validator should not check\n"
                                         ".ntdb/\n"),
    ]
