"""Ingest: identifiable sources into BIDS, one DataLad record per ingest.

Each modality plans first (what goes where; ``--dry-run`` shows it), then applies the
plan atomically. Source files are only ever read.
"""

from neurotwin_db.curation.ingest._heuristic import Rule, classify, load_rules
from neurotwin_db.curation.ingest._plan import (
    ApplyResult,
    IngestPlan,
    PlannedFile,
    apply_plan,
    check_dataset,
)
from neurotwin_db.curation.ingest.dicom import convert, ingest_dicom, plan_dicom
from neurotwin_db.curation.ingest.eeg import ingest_eeg, plan_eeg, read_recording
from neurotwin_db.curation.ingest.rodent import check_spikeglx, ingest_rodent
from neurotwin_db.curation.ingest.stim import ingest_tacs, ingest_tms_eeg

__all__ = [
    "ApplyResult",
    "IngestPlan",
    "PlannedFile",
    "Rule",
    "apply_plan",
    "check_dataset",
    "check_spikeglx",
    "classify",
    "convert",
    "ingest_dicom",
    "ingest_eeg",
    "ingest_rodent",
    "ingest_tacs",
    "ingest_tms_eeg",
    "load_rules",
    "plan_dicom",
    "plan_eeg",
    "read_recording",
]
