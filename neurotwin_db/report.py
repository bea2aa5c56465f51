"""Findings are data: a :class:`Report` of :class:`Issue` objects ranked by severity."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path, PurePosixPath


class Severity(IntEnum):
    """How serious a finding is."""

    HINT = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about one file (or about a whole dataset when ``path`` is None)."""

    code: str
    severity: Severity
    message: str
    path: PurePosixPath | None = None
    hint: str | None = None
    dataset: str | None = None
    location: str | None = None  # inside the file: tag, header field, JSON key, column/row
    value: str | None = None     # the offending value, already masked

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        out: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.name.lower(),
            "message": self.message,
            "path": None if self.path is None else str(self.path),
            "hint": self.hint,
            "dataset": self.dataset,
        }
        if self.location is not None:
            out["location"] = self.location
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass
class Report:
    """An ordered collection of issues.

    Examples
    --------
    >>> r = Report([Issue("X", Severity.WARNING, "odd")])
    >>> r.failed(), r.failed(Severity.WARNING)
    (False, True)
    """

    issues: list[Issue] = field(default_factory=list)

    def add(self, issue: Issue) -> None:
        """Append one issue."""
        self.issues.append(issue)

    def extend(self, issues: Iterable[Issue]) -> None:
        """Append several issues."""
        self.issues.extend(issues)

    def at_least(self, level: Severity) -> Report:
        """Return the issues at ``level`` or above."""
        return Report([i for i in self.issues if i.severity >= level])

    def failed(self, level: Severity = Severity.ERROR) -> bool:
        """Whether any issue is at ``level`` or above."""
        return any(i.severity >= level for i in self.issues)

    def counts(self) -> Counter[str]:
        """Count issues per code."""
        return Counter(i.code for i in self.issues)

    def __iter__(self) -> Iterator[Issue]:
        return iter(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def to_jsonl(self) -> str:
        """Serialise to JSON Lines, one issue per line."""
        return "".join(json.dumps(i.as_dict()) + "\n" for i in self.issues)

    def write_jsonl(self, path: Path) -> Path:
        """Write the report as JSON Lines (atomically)."""
        from neurotwin_db._io import write_text

        return write_text(path, self.to_jsonl(), overwrite=True)
