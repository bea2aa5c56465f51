"""The check registry: each rule code of ``rules/neurotwin.yaml`` has one check function.

A check sees a :class:`Target` and returns :class:`Finding` objects; the rule turns them
into :class:`~neurotwin_db.report.Issue` objects with its code, severity and message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    """One thing a rule applies to: the dataset, a derivative or a stimulation session.

    ``rel`` is the folder (dataset, derivative) or the marker file (stimulation session),
    relative to ``root``, the dataset being validated; ``""`` is the dataset itself.
    ``description`` is the dataset_description.json that governs it ({} if unreadable).
    ``info`` holds what discovery learnt, e.g. the expected sidecar of a session.
    """

    root: Path
    rel: str
    description: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The target's folder on disk."""
        return self.root / self.rel if self.rel else self.root

    @property
    def dataset_type(self) -> str:
        """``DatasetType`` of the target's dataset (BIDS default: raw)."""
        return str(self.description.get("DatasetType") or "raw")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a check found: where, and the fields its rule's message names."""

    path: str | None = None  # relative to the dataset root; None for the whole dataset
    location: str | None = None
    value: str | None = None
    fields: Mapping[str, object] = field(default_factory=dict)


Check = Callable[[Target, Mapping[str, Any]], Iterable[Finding]]
CHECKS: dict[str, Check] = {}


def check(code: str) -> Callable[[Check], Check]:
    """Register ``fn(target, params)`` as the check of rule ``code``."""

    def register(fn: Check) -> Check:
        if code in CHECKS:
            raise RuntimeError(f"two checks registered for rule {code}")
        CHECKS[code] = fn
        return fn

    return register


def read_json(path: Path) -> Any:
    """The parsed JSON at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_description(folder: Path) -> dict[str, Any]:
    """``dataset_description.json`` of ``folder`` ({} when missing or not an object)."""
    data = read_json(folder / "dataset_description.json")
    return data if isinstance(data, dict) else {}
