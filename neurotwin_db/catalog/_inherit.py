"""The BIDS inheritance principle for JSON sidecars (pure; no IO).

A sidecar applies to a data file when it has the same suffix, sits in the file's folder
or a parent folder up to the dataset root, and its entities are a subset of the
file's. Deeper sidecars override shallower ones; at one level, the more specific wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(slots=True)
class SidecarIndex:
    """Sidecars grouped by (folder, suffix) for fast look-up.

    >>> idx = SidecarIndex()
    >>> idx.add("", {"task": "rest"}, "eeg", {"SamplingFrequency": 250, "TaskName": "rest"})
    >>> idx.add("sub-01/eeg", {"sub": "01", "task": "rest"}, "eeg", {"SamplingFrequency": 500})
    >>> idx.metadata("", "sub-01/eeg", {"sub": "01", "task": "rest"}, "eeg")
    {'SamplingFrequency': 500, 'TaskName': 'rest'}
    """

    _groups: dict[tuple[str, str], list[tuple[int, Mapping[str, str]]]] = field(
        default_factory=dict)
    _contents: list[Mapping[str, Any]] = field(default_factory=list)
    _merged: dict[tuple[int, ...], dict[str, Any]] = field(default_factory=dict)

    def add(self, folder: str, entities: Mapping[str, str], suffix: str,
            content: Mapping[str, Any]) -> None:
        """Register one sidecar found in ``folder`` (relative to the dataset root)."""
        self._groups.setdefault((folder, suffix), []).append((len(self._contents), entities))
        self._contents.append(content)

    def applicable(self, base: str, folder: str, entities: Mapping[str, str],
                   suffix: str) -> tuple[int, ...]:
        """Ids of the sidecars that apply, from the least to the most specific."""
        ids: list[int] = []
        for level in _levels(base, folder):
            found = self._groups.get((level, suffix))
            if not found:
                continue
            matches = [(len(ents), sid) for sid, ents in found
                       if all(entities.get(k) == v for k, v in ents.items())]
            ids.extend(sid for _, sid in sorted(matches))
        return tuple(ids)

    def metadata(self, base: str, folder: str, entities: Mapping[str, str],
                 suffix: str) -> dict[str, Any]:
        """The merged metadata of a data file (cached per set of sidecars)."""
        ids = self.applicable(base, folder, entities, suffix)
        merged = self._merged.get(ids)
        if merged is None:
            merged = {}
            for sid in ids:
                merged.update(self._contents[sid])
            self._merged[ids] = merged
        return merged


@lru_cache(maxsize=1 << 16)
def _levels(base: str, folder: str) -> tuple[str, ...]:
    """Folders from ``base`` down to ``folder``: ('', 'sub-01', 'sub-01/eeg') for base ''."""
    levels = [base]
    rest = folder[len(base):].strip("/") if folder.startswith(base) else folder
    current = base
    for part in rest.split("/") if rest else []:
        current = f"{current}/{part}" if current else part
        levels.append(current)
    return tuple(levels)
