"""Deposit: a validated dataset becomes a published, citable record with a DOI.

:func:`plan_deposit` decides everything offline (version, DataCite 4.5 metadata,
archives) and backs ``ntdb deposit --dry-run``; :func:`deposit_dataset` runs the gate
(``validate``, phi-scan included), uploads to a Zenodo-compatible deposit API, publishes
and records the DOI (``DatasetDOI``, a ``vX.Y.Z`` tag, the database registry and
catalog). An interrupted deposit resumes from its state file; :func:`cite_dataset`
prints the citation of the deposited version.

>>> from neurotwin_db.curation.deposit import parse_funding
>>> parse_funding("EU Horizon 2020 grant agreement No 101017716 (Neurotwin)")["awardNumber"]
'101017716'
"""

from neurotwin_db.curation.deposit._cite import FORMATS, cite_dataset
from neurotwin_db.curation.deposit._datacite import build_datacite, check_datacite, parse_funding
from neurotwin_db.curation.deposit._deposit import (
    DepositResult,
    GateError,
    check_content_here,
    check_gate,
    deposit_dataset,
)
from neurotwin_db.curation.deposit._mapping import to_zenodo
from neurotwin_db.curation.deposit._pack import Archive, TrackedFile, plan_archives
from neurotwin_db.curation.deposit._plan import DepositPlan, plan_deposit
from neurotwin_db.curation.deposit._sources import DatasetSources, read_sources
from neurotwin_db.curation.deposit._state import DepositError, DepositState, state_dir
from neurotwin_db.curation.deposit._target import Target, resolve_target
from neurotwin_db.curation.deposit._zenodo import ZenodoClient

__all__ = [
    "FORMATS",
    "Archive",
    "DatasetSources",
    "DepositError",
    "DepositPlan",
    "DepositResult",
    "DepositState",
    "GateError",
    "Target",
    "TrackedFile",
    "ZenodoClient",
    "build_datacite",
    "check_content_here",
    "check_datacite",
    "check_gate",
    "cite_dataset",
    "deposit_dataset",
    "parse_funding",
    "plan_archives",
    "plan_deposit",
    "read_sources",
    "resolve_target",
    "state_dir",
    "to_zenodo",
]
