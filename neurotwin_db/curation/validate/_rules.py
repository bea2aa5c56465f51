"""The neurotwin rules: declared in ``schemas/rules/neurotwin.yaml``, run against a dataset.

Each rule has a code, a severity, a message and a hint (templates: ``{name}`` is filled
from the finding), a selector saying what it applies to, and optional params for its
check. The check functions are registered under the same codes (see ``_checks_*.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from neurotwin_db.curation.validate import _checks_dataset, _checks_derivatives, _checks_stim
from neurotwin_db.curation.validate._registry import CHECKS, Finding, Target
from neurotwin_db.curation.validate._targets import TARGETS, find_targets
from neurotwin_db.errors import InputError
from neurotwin_db.report import Issue, Severity

RULES_FILE = "rules/neurotwin.yaml"
SELECTOR_KEYS = frozenset({"target", "dataset_type", "nested"})
RULE_KEYS = frozenset({"severity", "message", "hint", "selector", "params"})
_CODE = re.compile(r"NTDB_[A-Z0-9_]+")
_FIELD = re.compile(r"\{(\w+)\}")
# imported for their @check registrations
_CHECK_MODULES = (_checks_dataset, _checks_derivatives, _checks_stim)


@dataclass(frozen=True, slots=True)
class Rule:
    """One neurotwin rule, as declared in the rules file."""

    code: str
    severity: Severity
    message: str
    hint: str | None
    target: str
    dataset_type: tuple[str, ...] | None = None
    nested: bool | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def applies_to(self, target: Target) -> bool:
        """Whether the selector picks ``target``."""
        if self.dataset_type is not None and target.dataset_type not in self.dataset_type:
            return False
        return self.nested is None or bool(target.info.get("nested")) == self.nested

    def issue(self, finding: Finding, dataset: str) -> Issue:
        """The Issue for one finding of this rule's check."""
        values = {"path": finding.path, "location": finding.location,
                  "value": finding.value, **finding.fields}
        return Issue(self.code, self.severity, _fill(self.message, values),
                     None if finding.path is None else PurePosixPath(finding.path),
                     None if self.hint is None else _fill(self.hint, values),
                     dataset=dataset, location=finding.location, value=finding.value)


def _fill(template: str, values: Mapping[str, object]) -> str:
    """Replace each ``{name}`` that ``values`` holds; other braces stay (JSON in hints).

    >>> _fill('add {"Funding": []} to {path}', {"path": "d.json"})
    'add {"Funding": []} to d.json'
    """
    return _FIELD.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


@cache
def load_rules() -> tuple[Rule, ...]:
    """Read and check the rules file; raise InputError naming the rule that is wrong."""
    from neurotwin_db.schemas import load_yaml

    data = load_yaml(RULES_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict):
        raise InputError(f"{RULES_FILE} must hold a mapping 'rules: {{CODE: {{...}}}}'")
    return tuple(_rule(code, entry) for code, entry in data["rules"].items())


def _rule(code: str, entry: Any) -> Rule:
    where = f"{RULES_FILE}, rule {code}"
    if not _CODE.fullmatch(str(code)):
        raise InputError(f"{where}: codes are UPPER_SNAKE and start with NTDB_")
    if not isinstance(entry, dict) or set(entry) - RULE_KEYS:
        raise InputError(f"{where}: a rule is a mapping of {sorted(RULE_KEYS)}")
    severity = str(entry.get("severity", "")).upper()
    if severity not in ("HINT", "WARNING", "ERROR"):
        raise InputError(f"{where}: severity {entry.get('severity')!r} is not one of "
                         f"hint, warning, error")
    selector = entry.get("selector") or {}
    if not isinstance(selector, dict) or set(selector) - SELECTOR_KEYS:
        raise InputError(f"{where}: selector keys are {sorted(SELECTOR_KEYS)}")
    if selector.get("target") not in TARGETS:
        raise InputError(f"{where}: selector target {selector.get('target')!r} is not one "
                         f"of {list(TARGETS)}")
    if not entry.get("message"):
        raise InputError(f"{where}: the rule has no message")
    if code not in CHECKS:
        raise InputError(f"{where}: no check function is registered for it")
    types = selector.get("dataset_type")
    return Rule(code=code, severity=Severity[severity], message=str(entry["message"]).strip(),
                hint=str(entry["hint"]).strip() if entry.get("hint") else None,
                target=selector["target"],
                dataset_type=None if types is None else tuple(map(str, types)),
                nested=selector.get("nested"), params=dict(entry.get("params") or {}))


def run_rules(root: Path, rules: tuple[Rule, ...] | None = None) -> list[Issue]:
    """Run every neurotwin rule on the dataset at ``root``."""
    rules = load_rules() if rules is None else rules
    targets: dict[str, list[Target]] = {}
    issues = []
    for rule in rules:
        if rule.target not in targets:
            targets[rule.target] = find_targets(root, rule.target)
        for target in targets[rule.target]:
            if rule.applies_to(target):
                issues += [rule.issue(f, root.name) for f in CHECKS[rule.code](target,
                                                                                rule.params)]
    return issues
