"""``validate_dataset``: the official BIDS validator, the neurotwin rules and phi-scan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from neurotwin_db.curation.validate._official import run_official
from neurotwin_db.curation.validate._report import SOURCES, ValidationReport
from neurotwin_db.curation.validate._rules import RULES_FILE, load_rules, run_rules
from neurotwin_db.errors import InputError
from neurotwin_db.progress import Progress, ProgressCallback, ignore_progress
from neurotwin_db.report import Issue

if TYPE_CHECKING:
    from neurotwin_db.curation.phi import Identifiers


def check_dataset_path(dataset: Path) -> Path:
    """The dataset's folder, or InputError if ``dataset`` is not a BIDS dataset."""
    dataset = Path(dataset)
    if not dataset.exists():
        raise InputError(f"{dataset} does not exist; give the folder of a BIDS dataset "
                         f"(the one holding dataset_description.json)")
    if not dataset.is_dir():
        raise InputError(f"{dataset} is a file, not a dataset; give the folder that holds "
                         f"its dataset_description.json")
    if not (dataset / "dataset_description.json").is_file():
        raise InputError(f"{dataset} is not a BIDS dataset: it has no "
                         f"dataset_description.json; give the dataset's top folder, or "
                         f"create the dataset with `ntdb dataset add`")
    return dataset


def validate_dataset(dataset: Path, *, bids: bool = True, phi: bool = True,
                     identifiers: Identifiers | None = None,
                     progress: ProgressCallback | None = None) -> ValidationReport:
    """Validate a BIDS dataset; every finding is an Issue in one report.

    Parameters
    ----------
    dataset
        The dataset's top folder (with dataset_description.json).
    bids
        Run the official BIDS validator (bids-validator-deno, offline, schema pinned
        to the copy bidsschematools ships); its codes and severities are kept.
    phi
        Run :func:`~neurotwin_db.curation.phi.scan_phi`: identifiers left in the data.
    identifiers
        Known identifiers for the PHI scan (a :class:`~neurotwin_db.curation.phi.Identifiers`).
    progress
        Called with a Progress event per stage (and per file of the PHI scan).

    Returns
    -------
    ValidationReport
        A Report whose ``sources`` say what ran and ``source_of(issue)`` where each
        finding came from. ``report.failed()`` is True when any finding is an ERROR: the
        dataset is then not ready to deposit.

    Raises
    ------
    InputError
        ``dataset`` does not exist or has no dataset_description.json.
    ValidatorError
        The official validator is missing, crashed or wrote output that cannot be read.
    """
    root = check_dataset_path(dataset).resolve()
    report = ValidationReport(dataset=str(dataset))
    stages = [s for s, on in zip(SOURCES, (bids, True, phi), strict=True) if on]

    def step(stage: str) -> None:
        if progress is not None:
            progress(Progress(stage, stages.index(stage), len(stages), "running"))

    if bids:
        step("bids")
        official = run_official(root)
        _merge(report, "bids", official.issues)
        report.sources["bids"] = official.info
    step("neurotwin")
    rules = load_rules()
    _merge(report, "neurotwin", run_rules(root, rules))
    report.sources["neurotwin"] = {"rules": f"neurotwin_db/schemas/{RULES_FILE}",
                                   "count": len(rules)}
    if phi:
        from neurotwin_db.curation.phi import scan_phi

        step("phi")
        found = scan_phi(root, identifiers=identifiers, progress=progress or ignore_progress)
        _merge(report, "phi", [replace(i, dataset=i.dataset or root.name) for i in found])
        report.sources["phi"] = {"scanner": "neurotwin_db.curation.phi.scan_phi"}
    report.issues.sort(key=lambda i: (-i.severity, SOURCES.index(report.source_of(i)), i.code,
                                      str(i.path or ""), i.location or ""))
    return report


def _merge(report: ValidationReport, source: str, issues: list[Issue]) -> None:
    for issue in issues:
        report.origin.setdefault(issue.code, source)
    report.extend(issues)
