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
from neurotwin_db.curation.anonymize._key import PseudonymKey, default_key_path, load_key
from neurotwin_db.curation.anonymize._plan import (
    AlreadyAnonymizedError,
    AnonymizationPlan,
    Change,
    plan_anonymization,
)

__all__ = [
    "AlreadyAnonymizedError",
    "AnonymizationPlan",
    "AnonymizationResult",
    "Change",
    "LeakError",
    "PseudonymKey",
    "apply_anonymization",
    "default_key_path",
    "load_key",
    "plan_anonymization",
]
