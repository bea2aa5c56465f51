"""Find what the neurotwin rules apply to: the dataset, its derivatives, stimulation sessions.

What marks a stimulation session follows what ``ntdb ingest tacs`` and ``ntdb ingest
tms-eeg`` write: an ``_eeg.json`` with ``ElectricalStimulation: true`` (tES: tACS or
tDCS), an ``_events.tsv`` with ``tms_pulse`` rows (TMS-EEG), or a ``nibs/*_nibs.json``
sidecar on its own (a tACS session recorded without EEG).
"""

from __future__ import annotations

from pathlib import Path

from neurotwin_db.bidspath import nibs_sidecar
from neurotwin_db.curation.validate._registry import Target, read_description, read_json

TARGETS = ("dataset", "derivative", "stimulation")
TMS_EVENT = "tms_pulse"


def find_targets(root: Path, kind: str) -> list[Target]:
    """Every target of ``kind`` (one of :data:`TARGETS`) in the dataset at ``root``."""
    if kind == "dataset":
        return [Target(root, "", read_description(root), {"nested": False})]
    if kind == "derivative":
        return find_derivatives(root)
    if kind == "stimulation":
        return find_stimulation_sessions(root)
    raise ValueError(f"unknown target kind {kind!r}; choose one of {TARGETS}")


def find_derivatives(root: Path) -> list[Target]:
    """The dataset itself if it is a derivative, and each ``derivatives/*`` dataset in it."""
    found = []
    description = read_description(root)
    if description.get("DatasetType") == "derivative":
        found.append(Target(root, "", description, {"nested": False}))
    folder = root / "derivatives"
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if (sub / "dataset_description.json").is_file():
                found.append(Target(root, sub.relative_to(root).as_posix(),
                                    read_description(sub), {"nested": True}))
    return found


def find_stimulation_sessions(root: Path) -> list[Target]:
    """One target per stimulation sidecar that exists or that a recording calls for."""
    description = read_description(root)
    sessions: dict[str, dict[str, str | None]] = {}
    for path in sorted(root.glob("sub-*/**/*_eeg.json")):
        data = read_json(path)
        if isinstance(data, dict) and data.get("ElectricalStimulation") is True:
            rel = path.relative_to(root).as_posix()
            sidecar = nibs_sidecar(rel.removesuffix("_eeg.json"))
            sessions.setdefault(sidecar, {"kind": "tes", "marker": rel})
    for path in sorted(root.glob("sub-*/**/*_events.tsv")):
        if _has_tms_pulses(path):
            rel = path.relative_to(root).as_posix()
            sidecar = nibs_sidecar(rel.removesuffix("_events.tsv"))
            sessions.setdefault(sidecar, {"kind": "tms", "marker": rel})
    for path in sorted(root.glob("sub-*/**/nibs/*_nibs.json")):
        rel = path.relative_to(root).as_posix()
        if rel not in sessions:
            data = read_json(path)
            system = data.get("StimulationSystemName") if isinstance(data, dict) else None
            sessions[rel] = {"kind": system if system in ("tes", "tms") else None,
                             "marker": rel}
    return [Target(root, info["marker"] or sidecar, description, {**info, "sidecar": sidecar})
            for sidecar, info in sorted(sessions.items())]


def _has_tms_pulses(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False  # annexed without content, or not text: the validator reports it
    if not lines:
        return False
    header = lines[0].split("\t")
    if "trial_type" not in header:
        return False
    column = header.index("trial_type")
    return any(len(cells) > column and cells[column] == TMS_EVENT
               for cells in (line.split("\t") for line in lines[1:]))
