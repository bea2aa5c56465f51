"""The merged report of ``validate_dataset``, and its text and JSON renderings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from neurotwin_db.report import Issue, Report, Severity

SOURCES = ("bids", "neurotwin", "phi")
EXAMPLES = 3


@dataclass
class ValidationReport(Report):
    """A :class:`~neurotwin_db.report.Report` that also says where each finding came from.

    ``sources`` describes each source that ran (the BIDS validator's version and pinned
    schema, the rules file, the PHI scan); ``origin`` maps each code to its source:
    ``"bids"`` (the official validator, codes unchanged), ``"neurotwin"`` or ``"phi"``.
    """

    dataset: str = ""
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def source_of(self, issue: Issue) -> str:
        """``"bids"``, ``"neurotwin"`` or ``"phi"``."""
        return self.origin.get(issue.code, "bids")


def bids_error_codes(report: ValidationReport) -> set[str]:
    """The codes of the official validator's errors in ``report``."""
    return {i.code for i in report if i.severity >= Severity.ERROR
            and report.source_of(i) == "bids"}


def report_document(report: ValidationReport, *,
                    min_severity: Severity = Severity.HINT) -> dict[str, Any]:
    """The report as one JSON-serialisable document.

    ``issues`` holds those at ``min_severity`` or above (each with its ``source``);
    ``counts`` and ``valid`` always cover every finding.
    """
    by_severity = Counter(i.severity.name.lower() for i in report)
    return {
        "dataset": report.dataset,
        "valid": not report.failed(),
        "min_severity": min_severity.name.lower(),
        "sources": report.sources,
        "counts": {
            **{s.name.lower(): by_severity.get(s.name.lower(), 0) for s in Severity},
            "total": len(report),
            "by_source": dict(Counter(report.source_of(i) for i in report)),
            "by_code": dict(sorted(report.counts().items())),
        },
        "issues": [{**i.as_dict(), "source": report.source_of(i)} for i in report
                   if i.severity >= min_severity],
    }


def format_report(report: ValidationReport, *, min_severity: Severity = Severity.HINT,
                  examples: int = EXAMPLES) -> str:
    """Findings grouped by code: one block per code with the number of files it affects.

    Each block shows ``examples`` paths, then "… and N more"; a final line sums up.
    """
    groups: dict[str, list[Issue]] = {}
    for issue in report:
        if issue.severity >= min_severity:
            groups.setdefault(issue.code, []).append(issue)
    order = sorted(groups, key=lambda c: (-groups[c][0].severity,
                                          SOURCES.index(report.source_of(groups[c][0])), c))
    lines = [line for code in order for line in _group(report, groups[code], examples)]
    lines.append(summary_line(report, hidden=len(report) - sum(map(len, groups.values()))))
    return "\n".join(lines) + "\n"


def _group(report: ValidationReport, issues: list[Issue], examples: int) -> list[str]:
    first = issues[0]
    by_file: dict[str, list[Issue]] = {}
    for issue in issues:
        by_file.setdefault("(dataset)" if issue.path is None else str(issue.path),
                           []).append(issue)
    files = f"{len(by_file)} file" + ("" if len(by_file) == 1 else "s")
    count = files if len(issues) == len(by_file) else f"{len(issues)} findings in {files}"
    common = shared_message([i.message for i in issues])
    lines = [f"{first.severity.name} {first.code} [{report.source_of(first)}] ({count}): "
             f"{common or first.message}"]
    for path in list(by_file)[:examples]:
        here = by_file[path]
        where = [i.location for i in here if i.location][:3]
        more = len([i for i in here if i.location]) - len(where)
        inside = f" [{', '.join(where)}{f', +{more}' if more else ''}]" if where else ""
        value = f" = {here[0].value}" if here[0].value and len(here) == 1 else ""
        if common:
            own = here[0].message.removeprefix(common).strip()
        else:
            own = "" if here[0].message == first.message else here[0].message
        note = f": {own}" if own else ""
        lines.append(f"    {path}{inside}{value}{note}")
    if len(by_file) > examples:
        lines.append(f"    … and {len(by_file) - examples} more")
    if first.hint:
        lines.append(f"    hint: {first.hint}")
    return lines


def shared_message(messages: list[str]) -> str:
    """The message of one code without each finding's details, when they differ only there.

    The validator's findings share their code's message and add details in a final
    parenthesis; messages that differ otherwise give "".

    >>> shared_message(["Bad value. (must be number)", "Bad value. (must be string)"])
    'Bad value.'
    >>> shared_message(["tES (tACS) session a", "tES (tACS) session b"]), shared_message(["x"])
    ('', '')
    """
    if len(set(messages)) < 2 or not all(m.endswith(")") for m in messages):
        return ""
    heads = {m[:m.rfind(" (")] for m in messages if " (" in m}
    return heads.pop() if len(heads) == 1 and all(" (" in m for m in messages) else ""


def summary_line(report: ValidationReport, *, hidden: int = 0) -> str:
    """``3 errors, 5 warnings, 0 hints in DATASET (bids-validator 3.0.2, schema 2.0.1, …)``."""
    counts = Counter(i.severity for i in report)
    parts = [_plural(counts[Severity.ERROR] + counts[Severity.CRITICAL], "error"),
             _plural(counts[Severity.WARNING], "warning"), _plural(counts[Severity.HINT], "hint")]
    ran = []
    for name, info in report.sources.items():
        if name == "bids":
            ran.append(f"bids-validator {info.get('version')} (schema "
                       f"{info.get('schema_version')})")
        else:
            ran.append({"neurotwin": "neurotwin rules", "phi": "phi-scan"}.get(name, name))
    verdict = "not valid" if report.failed() else "valid"
    shown = f"; {hidden} below --min-severity not shown" if hidden else ""
    return (f"{', '.join(parts)} in {report.dataset}: {verdict} "
            f"(checked by {', '.join(ran) or 'nothing'}){shown}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
