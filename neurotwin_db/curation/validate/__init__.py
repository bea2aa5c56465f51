"""Validate a dataset: the official BIDS validator, the neurotwin rules and phi-scan.

:func:`validate_dataset` returns one report. Findings of the official validator
(``bids-validator-deno``, run offline on the schema bidsschematools ships) keep their
codes, locations and severities. The neurotwin rules are data, in
``neurotwin_db/schemas/rules/neurotwin.yaml``: deposit readiness, the participants
table, stimulation sidecars and derivatives' sources. The PHI scan's findings keep their
codes too. Any ERROR means the dataset is not ready to deposit.

>>> from neurotwin_db.curation.validate import load_rules
>>> sorted(r.code for r in load_rules() if r.target == "derivative")[:2]
['NTDB_DERIVATIVE_NO_GENERATEDBY', 'NTDB_DERIVATIVE_NO_SOURCES']
"""

from neurotwin_db.curation.validate._ids import license_problem, orcid_problem
from neurotwin_db.curation.validate._official import (
    ValidatorError,
    pinned_schema,
    run_official,
    validator_executable,
)
from neurotwin_db.curation.validate._registry import CHECKS
from neurotwin_db.curation.validate._report import (
    ValidationReport,
    bids_error_codes,
    format_report,
    report_document,
)
from neurotwin_db.curation.validate._rules import Rule, load_rules, run_rules
from neurotwin_db.curation.validate._validate import check_dataset_path, validate_dataset

__all__ = [
    "CHECKS",
    "Rule",
    "ValidationReport",
    "ValidatorError",
    "bids_error_codes",
    "check_dataset_path",
    "format_report",
    "license_problem",
    "load_rules",
    "orcid_problem",
    "pinned_schema",
    "report_document",
    "run_official",
    "run_rules",
    "validate_dataset",
    "validator_executable",
]
