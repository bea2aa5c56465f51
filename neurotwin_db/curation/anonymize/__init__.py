"""Anonymization: turn a raw BIDS dataset into a shareable one (plan, then apply).

Pseudonyms and date shifts come from a key that lives outside every dataset
(:func:`load_key`). :func:`plan_anonymization` is pure and backs ``--dry-run``;
:func:`apply_anonymization` writes into a staging folder, proves the result clean
with phi-scan, and only then moves it into the output dataset and saves it.
"""

from importlib import import_module
from typing import Any

# Names load their module on first use (PEP 562): a process pool's worker that needs only
# the DICOM engine does not import defacing (scipy.ndimage, nibabel), 0.7 s each.
_MODULES = {
    "AnonymizationResult": "_apply", "LeakError": "_apply", "apply_anonymization": "_apply",
    "PseudonymKey": "_key", "check_key_location": "_key", "default_key_path": "_key",
    "load_key": "_key",
    "AlreadyAnonymizedError": "_plan", "AnonymizationPlan": "_plan", "Change": "_plan",
    "plan_anonymization": "_plan",
    "DefaceResult": "deface", "FaceCheck": "deface", "deface": "deface",
    "deface_file": "deface",
    "DicomAnonymization": "dicom", "anonymize_dicom": "dicom",
    "HeaderField": "eeg", "eeg_header_fields": "eeg", "is_event_field": "eeg",
    "rewrite_eeg_header": "eeg",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULES])


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
