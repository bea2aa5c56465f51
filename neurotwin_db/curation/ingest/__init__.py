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

__all__ = [
    "ApplyResult",
    "IngestPlan",
    "PlannedFile",
    "Rule",
    "apply_plan",
    "check_dataset",
    "classify",
    "convert",
    "ingest_dicom",
    "load_rules",
    "plan_dicom",
]
