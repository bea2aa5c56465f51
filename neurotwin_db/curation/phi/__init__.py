"""The PHI scanner: the gate nothing identifying passes on its way to a deposit.

:func:`scan_phi` reads every file (DICOM, NIfTI, JSON, TSV, EEG headers, HDF5/NWB, text,
file names) and reports each identifier it finds as an :class:`~neurotwin_db.report.Issue`
with its location and a masked value. What counts as identifying is data: see
``schemas/policy/phi.yaml`` and :func:`load_policy`.
"""

from neurotwin_db.curation.phi._match import Identifiers, mask
from neurotwin_db.curation.phi._pixels import pixel_risk
from neurotwin_db.curation.phi._policy import Policy, load_policy
from neurotwin_db.curation.phi._scan import (
    ANONYMIZATION_RECORD,
    anonymization_record,
    dataset_root,
    scan_phi,
)

__all__ = [
    "ANONYMIZATION_RECORD",
    "Identifiers",
    "Policy",
    "anonymization_record",
    "dataset_root",
    "load_policy",
    "mask",
    "pixel_risk",
    "scan_phi",
]
