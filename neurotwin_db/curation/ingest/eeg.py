"""EEG ingest: any recording MNE reads -> BIDS ``eeg/`` written by mne-bids.

mne-bids writes into a scratch BIDS root; the subject's files then go through the same
plan/apply path as every ingest (atomic, idempotent, one DataLad save).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from neurotwin_db.bidspath import check_label
from neurotwin_db.curation.ingest._plan import (
    ApplyResult,
    IngestPlan,
    PlannedFile,
    apply_plan,
    check_dataset,
    fingerprint,
)
from neurotwin_db.curation.ingest._tables import parse_tsv
from neurotwin_db.errors import InputError
from neurotwin_db.progress import ProgressCallback, ignore_progress

logger = logging.getLogger(__name__)

TRUNCATION_SIGNS = ("does not match the file size", "truncat", "shorter than expected")
# Formats BIDS accepts for EEG are kept as they are; others (FIF, ...) become BrainVision.
BIDS_EEG_EXTENSIONS = {".edf": "EDF", ".bdf": "BDF", ".vhdr": "BrainVision", ".set": "EEGLAB"}


def read_recording(path: Path) -> Any:
    """Read any recording MNE supports (EDF, BDF, BrainVision, EEGLAB, FIF, ...)."""
    import mne

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file; pass the recording "
                         f"(.edf, .bdf, .vhdr, .set or .fif)")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # "warning" level: MNE only emits its warnings (e.g. truncation) at this level
            raw = mne.io.read_raw(path, preload=False, verbose="warning")
    except Exception as exc:  # MNE raises many types for unreadable files
        first = str(exc).splitlines()[0] if str(exc) else "not a recording format MNE knows"
        raise InputError(f"MNE cannot read {path} ({first}); check the file is complete and "
                         f"in a format MNE reads (EDF, BDF, BrainVision, EEGLAB, FIF)") from None
    for item in caught:
        if any(s in str(item.message) for s in TRUNCATION_SIGNS):
            raise InputError(f"{path} looks truncated (MNE: {item.message}); copy the complete "
                             f"recording and retry")
        logger.info("reading %s: %s", path.name, item.message)
    return raw


def resolve_montage(name: str | None) -> Any:
    """A montage from an MNE built-in name or a file (.elc, .sfp, .bvef, ...)."""
    import mne

    if name is None:
        return None
    if Path(name).is_file():
        try:
            return mne.channels.read_custom_montage(name)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
            raise InputError(f"cannot read montage file {name}: {exc}") from None
    builtin = mne.channels.get_builtin_montages()
    renamed = {"standard_1020": "colin27_1020", "standard_1005": "colin27_1005"}
    if name in renamed and renamed[name] in builtin:
        name = renamed[name]  # MNE 1.13 renamed them
    if name not in builtin:
        raise InputError(f"montage {name!r} is neither a file nor an MNE built-in; try "
                         f"standard_1020, standard_1005 or a .elc/.sfp/.bvef file")
    return mne.channels.make_standard_montage(name)


def plan_eeg(recording: Path, dataset: Path, *, subject: str, task: str, workdir: Path,
             session: str | None = None, run: int | None = None, montage: str | None = None,
             line_freq: float | None = None, species: str = "homo sapiens",
             kind: str = "eeg") -> IngestPlan:
    """Write the recording with mne-bids into ``workdir`` and plan its files for ``dataset``."""
    from mne_bids import BIDSPath, write_raw_bids

    dataset = check_dataset(dataset, kind)
    for key, value in (("sub", subject), ("task", task), ("ses", session), ("run", run)):
        if value is not None:
            check_label(key, str(value))
    raw = read_recording(recording)
    if line_freq is not None:
        raw.info["line_freq"] = float(line_freq)
    if raw.info["line_freq"] is None:
        raise InputError(f"{recording} does not say the power-line frequency; pass "
                         f"--line-freq 50 (Europe) or --line-freq 60 (Americas)")
    layout = resolve_montage(montage)
    if layout is not None:
        missing = sorted(set(raw.ch_names) - set(layout.ch_names))
        eeg = [c for c in raw.ch_names if c not in missing]
        if not eeg:
            raise InputError(f"none of the channels of {recording} are in montage {montage}; "
                             f"check the channel names or pass another --montage")
        raw.set_montage(layout, on_missing="ignore", verbose="error")
    suffix = Path(recording).suffix.lower()
    fmt = BIDS_EEG_EXTENSIONS.get(suffix, "BrainVision")
    path = BIDSPath(subject=subject, session=session, task=task, run=run, datatype="eeg",
                    root=workdir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_raw_bids(raw, path, format=fmt, allow_preload=fmt != BIDS_EEG_EXTENSIONS.get(
            suffix), overwrite=True, verbose="error")
    for item in caught:
        logger.info("mne-bids: %s", item.message)
    plan = IngestPlan(dataset, "eeg", subject, session, species=species,
                      source=fingerprint([Path(recording)]))
    written = sorted(p for p in (workdir / f"sub-{subject}").rglob("*") if p.is_file())
    for file in written:
        if file.name.endswith("_scans.tsv"):
            continue
        plan.files.append(PlannedFile(str(file.relative_to(workdir)), source=file))
    if layout is not None:
        _note_template(plan, montage)
    plan.scans = _scans_rows(workdir, written)
    plan.participant = _participant(workdir, subject, species)
    return plan


def _note_template(plan: IngestPlan, montage: str | None) -> None:
    """Say in coordsystem.json that the positions come from a template, not a digitizer."""
    for item in plan.files:
        if item.target.endswith("_coordsystem.json") and item.source is not None:
            doc = json.loads(item.source.read_text(encoding="utf-8"))
            doc["EEGCoordinateSystemDescription"] = (
                f"Template positions from the MNE montage {montage!r}, not digitized "
                f"for this participant.")
            index = plan.files.index(item)
            plan.files[index] = PlannedFile(item.target, content=(
                json.dumps(doc, indent=4) + "\n").encode())


def _scans_rows(workdir: Path, written: list[Path]) -> list[tuple[str, str | None]]:
    rows: list[tuple[str, str | None]] = []
    for scans in (p for p in written if p.name.endswith("_scans.tsv")):
        for row in parse_tsv(scans.read_text(encoding="utf-8")):
            target = str((scans.parent / str(row["filename"])).relative_to(workdir))
            rows.append((target, row.get("acq_time")))
    return rows


def _participant(workdir: Path, subject: str, species: str) -> dict[str, str | None]:
    """Age and sex as mne-bids derived them from the header; never the name."""
    row: dict[str, str | None] = {"participant_id": f"sub-{subject}", "species": species}
    table = workdir / "participants.tsv"
    if table.is_file():
        for found in parse_tsv(table.read_text(encoding="utf-8")):
            if found.get("participant_id") == f"sub-{subject}":
                row.update({k: found.get(k) for k in ("age", "sex", "hand") if found.get(k)})
    return row


def ingest_eeg(recording: Path, dataset: Path, *, subject: str, task: str,
               session: str | None = None, run: int | None = None,
               montage: str | None = None, line_freq: float | None = None,
               species: str = "homo sapiens", overwrite: bool = False, dry_run: bool = False,
               progress: ProgressCallback = ignore_progress
               ) -> tuple[IngestPlan, ApplyResult | None]:
    """Bring one EEG recording into a BIDS dataset (the recording is only read)."""
    with tempfile.TemporaryDirectory(prefix="ntdb-mne-bids-") as tmp:
        plan = plan_eeg(recording, dataset, subject=subject, task=task, workdir=Path(tmp),
                        session=session, run=run, montage=montage, line_freq=line_freq,
                        species=species)
        if dry_run:
            return plan, None
        return plan, apply_plan(plan, overwrite=overwrite, progress=progress)
