"""Series classification rules kept as data (``schemas/heuristics/mri.yaml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurotwin_db.errors import InputError

_ALLOWED_KEYS = {"name", "skip", "datatype", "suffix", "all", "any", "task_pattern"}


@dataclass(frozen=True, slots=True)
class Rule:
    """One heuristic rule: when it matches, where the series goes (or that it is skipped)."""

    name: str
    skip: bool = False
    datatype: str | None = None
    suffix: str | None = None
    all: dict[str, re.Pattern[str]] = field(default_factory=dict)
    any: dict[str, re.Pattern[str]] = field(default_factory=dict)
    task_pattern: re.Pattern[str] | None = None

    def matches(self, sidecar: dict[str, Any]) -> bool:
        """Whether this rule applies to a series with this dcm2niix sidecar."""
        if not all(p.search(field_text(sidecar, k)) for k, p in self.all.items()):
            return False
        return not self.any or any(p.search(field_text(sidecar, k))
                                   for k, p in self.any.items())


def field_text(sidecar: dict[str, Any], key: str) -> str:
    r"""A sidecar value as text (lists joined with ``\``).

    >>> field_text({"ImageType": ["ORIGINAL", "PRIMARY"]}, "ImageType")
    'ORIGINAL\\PRIMARY'
    """
    value = sidecar.get(key, "")
    if isinstance(value, list):
        return "\\".join(map(str, value))
    return str(value)


def load_rules(path: Path | None = None) -> list[Rule]:
    """Load the project heuristic, or a user's YAML file in the same format."""
    import yaml

    from neurotwin_db.schemas import load_yaml

    source = str(path) if path else "the built-in heuristic"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else \
            load_yaml("heuristics/mri.yaml")
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read heuristic {source}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise InputError(f"{source} must be a YAML mapping with a 'rules' list "
                         f"(see schemas/heuristics/mri.yaml)")
    return [_rule(item, index, source) for index, item in enumerate(data["rules"], 1)]


def _rule(item: Any, index: int, source: str) -> Rule:
    where = f"{source}, rule {index}"
    if not isinstance(item, dict) or "name" not in item:
        raise InputError(f"{where}: each rule needs a 'name'")
    unknown = set(item) - _ALLOWED_KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}; allowed: "
                         f"{sorted(_ALLOWED_KEYS)}")
    if not item.get("skip") and not (item.get("datatype") and item.get("suffix")):
        raise InputError(f"{where} ({item['name']}): give datatype and suffix, or skip: true")
    try:
        compiled = {part: {k: re.compile(str(v), re.I) for k, v in (item.get(part) or {}).items()}
                    for part in ("all", "any")}
        task = re.compile(item["task_pattern"], re.I) if item.get("task_pattern") else None
    except re.error as exc:
        raise InputError(f"{where} ({item['name']}): bad regular expression: {exc}") from None
    return Rule(str(item["name"]), bool(item.get("skip")), item.get("datatype"),
                item.get("suffix"), compiled["all"], compiled["any"], task)


def classify(sidecar: dict[str, Any], rules: list[Rule]) -> Rule | None:
    """The first rule that matches, or None."""
    return next((rule for rule in rules if rule.matches(sidecar)), None)


def fieldmap_suffix(sidecar: dict[str, Any]) -> str:
    """magnitude1, magnitude2 or phasediff, from ImageType and EchoNumber.

    >>> fieldmap_suffix({"ImageType": ["ORIGINAL", "PRIMARY", "P", "ND"]})
    'phasediff'
    >>> fieldmap_suffix({"ImageType": ["ORIGINAL", "PRIMARY", "M"], "EchoNumber": 2})
    'magnitude2'
    """
    kinds = {str(v).upper() for v in sidecar.get("ImageType", [])}
    if kinds & {"P", "PHASE"}:
        return "phasediff"
    return f"magnitude{int(sidecar.get('EchoNumber', 1) or 1)}"
