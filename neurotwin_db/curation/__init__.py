"""Curation: turn identifiable sources into shareable, validated BIDS datasets.

It gives every new dataset its BIDS skeleton and reads its participants table
strictly; ``neurotwin_db.curation.ingest`` brings DICOM, EEG, TMS-EEG, tACS and
rodent recordings in.

>>> from neurotwin_db.curation import participants_columns
>>> sorted(participants_columns("mus musculus"))[:3]
['age', 'group', 'participant_id']
"""

from neurotwin_db.curation._participants import parse_participants
from neurotwin_db.curation._skeleton import (
    MODALITIES,
    SPECIES,
    dataset_description,
    participants_columns,
    write_skeleton,
)

__all__ = [
    "MODALITIES",
    "SPECIES",
    "dataset_description",
    "parse_participants",
    "participants_columns",
    "write_skeleton",
]
