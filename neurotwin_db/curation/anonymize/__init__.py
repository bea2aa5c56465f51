"""Anonymization: turn a raw BIDS dataset into a shareable one (plan, then apply).

Pseudonyms and date shifts come from a key that lives outside every dataset
(:func:`load_key`). :func:`plan_anonymization` is pure and backs ``--dry-run``;
:func:`apply_anonymization` writes into a staging folder, proves the result clean
with phi-scan, and only then moves it into the output dataset and saves it.
"""

from neurotwin_db.curation.anonymize._apply import (
    AnonymizationResult,
    LeakError,
    apply_anonymization,
)
from neurotwin_db.curation.anonymize._key import (
    PseudonymKey,
    check_key_location,
    default_key_path,
    load_key,
)
from neurotwin_db.curation.anonymize._plan import (
    AlreadyAnonymizedError,
    AnonymizationPlan,
    Change,
    plan_anonymization,
)
from neurotwin_db.curation.anonymize.deface import DefaceResult, FaceCheck, deface, deface_file
from neurotwin_db.curation.anonymize.dicom import DicomAnonymization, anonymize_dicom
from neurotwin_db.curation.anonymize.eeg import (
    HeaderField,
    eeg_header_fields,
    is_event_field,
    rewrite_eeg_header,
)

__all__ = [
    "AlreadyAnonymizedError",
    "AnonymizationPlan",
    "AnonymizationResult",
    "Change",
    "DefaceResult",
    "DicomAnonymization",
    "FaceCheck",
    "HeaderField",
    "LeakError",
    "PseudonymKey",
    "anonymize_dicom",
    "apply_anonymization",
    "check_key_location",
    "deface",
    "deface_file",
    "default_key_path",
    "eeg_header_fields",
    "is_event_field",
    "load_key",
    "plan_anonymization",
    "rewrite_eeg_header",
]
