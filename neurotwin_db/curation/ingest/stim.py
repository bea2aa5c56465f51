"""TMS-EEG and tACS sessions: EEG through mne-bids plus a BEP037-style stimulation sidecar.

BEP037 (non-invasive brain stimulation) is a draft, so the ``nibs/`` sidecars are listed
in ``.bidsignore`` and the dataset stays valid for the official validator. Pulses are
``events.tsv`` rows (stable BIDS), each column described in ``events.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db.bidspath import nibs_sidecar
from neurotwin_db.curation.ingest._blinding import find_code, read_key, save_code
from neurotwin_db.curation.ingest._plan import (
    ApplyResult,
    IngestPlan,
    PlannedFile,
    apply_plan,
    check_dataset,
    fingerprint,
    ignore_draft,
    json_bytes,
)
from neurotwin_db.curation.ingest._stimlog import (
    TMS_EVENT_COLUMNS,
    read_tacs_log,
    read_tms_log,
    tacs_sidecar,
    tms_sidecar,
)
from neurotwin_db.curation.ingest._tables import format_tsv, parse_tsv
from neurotwin_db.curation.ingest.eeg import plan_eeg
from neurotwin_db.errors import InputError
from neurotwin_db.progress import ProgressCallback, ignore_progress

NIBS_IGNORE = "**/nibs"  # the validator's .bidsignore needs no trailing slash here
NIBS_NOTE = "BEP037 (NIBS) draft sidecars; the official validator does not know them yet"


def ingest_tms_eeg(recording: Path, dataset: Path, *, subject: str, task: str,
                   stim_log: Path, session: str | None = None, run: int | None = None,
                   montage: str | None = None, line_freq: float | None = None,
                   overwrite: bool = False, dry_run: bool = False,
                   progress: ProgressCallback = ignore_progress
                   ) -> tuple[IngestPlan, ApplyResult | None]:
    """Ingest a TMS-EEG recording: each pulse of ``stim_log`` becomes an events.tsv row."""
    log = read_tms_log(stim_log)
    with tempfile.TemporaryDirectory(prefix="ntdb-tms-") as tmp:
        plan = plan_eeg(recording, dataset, subject=subject, task=task, workdir=Path(tmp),
                        session=session, run=run, montage=montage, line_freq=line_freq,
                        kind="tms-eeg")
        plan.modality = "tms-eeg"
        plan.source = fingerprint([Path(recording), Path(stim_log)])
        eeg_json = _find(plan, "_eeg.json")
        sidecar = json.loads(_content(eeg_json))
        duration = float(sidecar.get("RecordingDuration", float("inf")))
        late = [p["onset"] for p in log.pulses if p["onset"] > duration]
        if late:
            raise InputError(f"stimulation log {stim_log}: pulse at {late[0]} s is after the "
                             f"end of the recording ({duration} s); check the time column")
        events_target = eeg_json.target.replace("_eeg.json", "_events.tsv")
        _merge_events(plan, events_target, log.pulses, float(sidecar["SamplingFrequency"]))
        nibs = nibs_sidecar(events_target.removesuffix("_events.tsv"))
        content = tms_sidecar(log, events_target.rsplit("/", 1)[-1])
        plan.files.append(PlannedFile(nibs, content=json_bytes(content)))
        ignore_draft(plan, NIBS_IGNORE, NIBS_NOTE)
        if dry_run:
            return plan, None
        return plan, apply_plan(plan, overwrite=overwrite, progress=progress)


def ingest_tacs(session_log: Path, dataset: Path, *, subject: str, unblinding_key: Path,
                session: str | None = None, eeg: Path | None = None, new_key: bool = False,
                allow_high_current: bool = False, montage: str | None = None,
                line_freq: float | None = None, overwrite: bool = False,
                dry_run: bool = False, progress: ProgressCallback = ignore_progress
                ) -> tuple[IngestPlan, ApplyResult | None]:
    """Record one tACS session (blinded), with the EEG recorded during it if given."""
    dataset = check_dataset(dataset, "tacs")
    log = read_tacs_log(session_log, allow_high_current=allow_high_current)
    key = Path(unblinding_key).resolve()
    if any(key.is_relative_to(p) for p in (dataset, *dataset.parents) if dl.is_dataset(p)):
        raise InputError(f"unblinding key {key} is inside a dataset; keep it outside every "
                         f"dataset, e.g. in ~/.config/neurotwin-db/")
    entry = {"dataset": dataset.name, "subject": subject, "session": session,
             "condition": str(log["condition"]).lower()}
    codes = read_key(key, new_key=new_key)
    code, is_new = find_code(codes, **entry)
    sidecar = tacs_sidecar(log, code, Path(session_log))  # checks it before any write
    with tempfile.TemporaryDirectory(prefix="ntdb-tacs-") as tmp:
        if eeg is not None:
            plan = plan_eeg(eeg, dataset, subject=subject, task="tacs", workdir=Path(tmp),
                            session=session, montage=montage, line_freq=line_freq,
                            kind="tacs")
            eeg_json = _find(plan, "_eeg.json")
            stem = eeg_json.target.removesuffix("_eeg.json")
            merged = {**json.loads(_content(eeg_json)), "ElectricalStimulation": True,
                      "ElectricalStimulationParameters": _describe(
                          sidecar, nibs_sidecar(stem).rsplit("/", 1)[-1])}
            _replace(plan, eeg_json.target, json_bytes(merged))
        else:
            plan = IngestPlan(dataset, "tacs", subject, session,
                              participant={"participant_id": f"sub-{subject}",
                                           "species": "homo sapiens"})
            folder = f"sub-{subject}" + (f"/ses-{session}" if session else "")
            name = f"sub-{subject}" + (f"_ses-{session}" if session else "") + "_task-tacs"
            stem = f"{folder}/nibs/{name}"
        # a fingerprint, not the log's path: a file name such as sham.yaml would unblind
        plan.modality = "tacs"
        plan.source = fingerprint([Path(session_log), *([Path(eeg)] if eeg else [])])
        plan.files.append(PlannedFile(nibs_sidecar(stem), content=json_bytes(sidecar)))
        ignore_draft(plan, NIBS_IGNORE, NIBS_NOTE)
        if dry_run:
            return plan, None
        result = apply_plan(plan, overwrite=overwrite, progress=progress)
    if is_new:  # only once the session is recorded: a failed ingest leaves no code behind
        save_code(key, codes, code, **entry)
    return plan, result


def _merge_events(plan: IngestPlan, target: str, pulses: list[dict[str, Any]],
                  sfreq: float) -> None:
    existing = next((f for f in plan.files if f.target == target), None)
    rows = parse_tsv(_content(existing)) if existing else []
    for pulse in pulses:
        rows.append({**{k: _text(v) for k, v in pulse.items()}, "trial_type": "tms_pulse",
                     "sample": str(round(pulse["onset"] * sfreq))})
    header = ["onset", "duration"] + sorted({k for r in rows for k in r} - {"onset", "duration"},
                                            key=lambda k: (k not in TMS_EVENT_COLUMNS, k))
    rows.sort(key=lambda r: float(r["onset"] or 0))
    _replace(plan, target, format_tsv(header, [[r.get(c) for c in header] for r in rows]).encode())
    json_target = target.replace(".tsv", ".json")
    described = json.loads(_content(next((f for f in plan.files if f.target == json_target),
                                          None)) or "{}")
    described.update({k: v for k, v in TMS_EVENT_COLUMNS.items() if k in header})
    levels = {r["trial_type"]: "annotation from the recording" for r in rows if r["trial_type"]}
    levels.update(TMS_EVENT_COLUMNS["trial_type"]["Levels"])
    described["trial_type"] = {**TMS_EVENT_COLUMNS["trial_type"], "Levels": levels}
    _replace(plan, json_target, json_bytes(described))


def _describe(sidecar: dict[str, Any], nibs_name: str) -> str:
    """ElectricalStimulationParameters is free text in BIDS; the structure is in nibs/."""
    stim = sidecar["StimulusSet"][0]
    montage = ", ".join(e["Position"] for e in sidecar["ElectrodeSet"])
    return (f"{stim['Waveform']} {stim['Frequency']:g} Hz, {stim['CurrentAmplitude']:g} mA peak, "
            f"ramps {stim['RampUp']:g}/{stim['RampDown']:g} s, {stim['Duration']:g} s, "
            f"electrodes {montage}; condition blinded; structured parameters in "
            f"nibs/{nibs_name}")


def _find(plan: IngestPlan, ending: str) -> PlannedFile:
    return next(f for f in plan.files if f.target.endswith(ending))


def _content(item: PlannedFile | None) -> str:
    if item is None:
        return ""
    if item.content is not None:
        return item.content.decode("utf-8")
    assert item.source is not None
    return item.source.read_text(encoding="utf-8")


def _replace(plan: IngestPlan, target: str, content: bytes) -> None:
    plan.files = [f for f in plan.files if f.target != target]
    plan.files.append(PlannedFile(target, content=content))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
