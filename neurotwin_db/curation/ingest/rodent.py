"""Rodent electrophysiology: SpikeGLX or NWB -> the BEP032 ``ecephys/`` layout (NWB data).

SpikeGLX is read with spikeinterface (neo underneath) and written to NWB with pynwb;
the probe geometry comes from probeinterface. BEP032 is a draft, so ``ecephys/`` is in
``.bidsignore`` and the README says so.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from neurotwin_db.bidspath import check_label
from neurotwin_db.curation.ingest._plan import (
    ApplyResult,
    IngestPlan,
    PlannedFile,
    apply_plan,
    check_dataset,
    ignore_draft,
    json_bytes,
)
from neurotwin_db.curation.ingest._tables import format_tsv
from neurotwin_db.errors import InputError
from neurotwin_db.progress import ProgressCallback, ignore_progress

ECEPHYS_IGNORE = "**/ecephys"
OPTO_COLUMNS = ("onset", "duration", "wavelength_nm", "power_mW", "pulse_frequency_Hz",
                "pulse_width_ms", "site")
OPTO_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "onset": {"Description": "Start of the light train from the recording start.",
              "Units": "s"},
    "duration": {"Description": "Length of the light train.", "Units": "s"},
    "trial_type": {"Description": "Kind of event: optogenetic light train."},
    "wavelength_nm": {"Description": "Light wavelength.", "Units": "nm"},
    "power_mW": {"Description": "Light power at the fibre tip.", "Units": "mW"},
    "pulse_frequency_Hz": {"Description": "Pulse rate within the train.", "Units": "Hz"},
    "pulse_width_ms": {"Description": "Width of each light pulse.", "Units": "ms"},
    "site": {"Description": "Stimulated brain region (fibre placement)."},
}


def check_spikeglx(path: Path) -> tuple[Path, dict[str, Any]]:
    """Find the AP .bin of a SpikeGLX recording and check its .meta agrees with it."""
    from neo.rawio.spikeglxrawio import read_meta_file

    path = Path(path)
    found = sorted(path.glob("*.ap.bin")) if path.is_dir() else [path.with_suffix(".bin")]
    if len(found) != 1 or not found[0].is_file():
        raise InputError(f"{path}: expected one SpikeGLX *.ap.bin with its .meta, found "
                         f"{len(found)}; pass the run folder or the .bin file")
    bin_path = found[0]
    meta_path = bin_path.with_suffix(".meta")
    if not meta_path.is_file():
        raise InputError(f"{bin_path} has no {meta_path.name} next to it; copy the .meta "
                         f"SpikeGLX wrote with the recording")
    meta = read_meta_file(meta_path)
    try:
        channels = int(meta["nSavedChans"])
        expected = int(meta["fileSizeBytes"])
    except (KeyError, ValueError):
        raise InputError(f"{meta_path} lacks nSavedChans or fileSizeBytes; is it a SpikeGLX "
                         f".meta file?") from None
    actual = bin_path.stat().st_size
    if actual != expected or actual % (2 * channels):
        raise InputError(f"{meta_path} says {expected // (2 * channels)} samples "
                         f"({expected} bytes) but {bin_path.name} holds {actual} bytes; the "
                         f"recording was cut short or the .meta belongs to another file")
    return bin_path, meta


def read_opto_log(path: Path) -> list[dict[str, str]]:
    """Optogenetic light trains: one CSV row per train (see OPTO_COLUMNS)."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read optogenetics log {path}: {exc}") from None
    missing = [c for c in OPTO_COLUMNS if not rows or c not in rows[0]]
    if missing:
        raise InputError(f"optogenetics log {path} lacks {missing}; columns are "
                         f"{', '.join(OPTO_COLUMNS)}")
    for number, row in enumerate(rows, 1):
        for key in OPTO_COLUMNS[:-1]:
            try:
                if float(row[key]) < 0:
                    raise ValueError
            except ValueError:
                raise InputError(f"optogenetics log {path}, row {number}: {key}={row[key]!r} "
                                 f"must be a non-negative number") from None
    return rows


def write_nwb(recording: Any, path: Path, *, subject: str, species: str, strain: str | None,
              start: datetime.datetime, description: str) -> None:
    """Write raw traces, gains and probe geometry as an NWB file (pynwb)."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries
    from pynwb.file import Subject

    # identifier and creation date derive from the recording, so a re-run writes the
    # same file and the ingest stays a no-op
    nwb = NWBFile(session_description=description, session_start_time=start,
                  identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{description}/{start}")),
                  file_create_date=start)
    nwb.subject = Subject(subject_id=subject, species=species.capitalize(),
                          strain=strain or None)
    probe = recording.get_probe() if recording.has_probe() else None
    model = probe.model_name if probe is not None and probe.model_name else "probe"
    device = nwb.create_device(name=model, description="Neuropixels probe",
                               manufacturer=probe.manufacturer if probe else "unknown")
    group = nwb.create_electrode_group("probe0", description=model, location="unknown",
                                       device=device)
    nwb.add_electrode_column("channel_name", "channel name in the acquisition system")
    for (x, y), name in zip(recording.get_channel_locations(), recording.channel_ids,
                            strict=True):
        nwb.add_electrode(x=float(x), y=float(y), z=0.0, group=group, location="unknown",
                          channel_name=str(name))
    region = nwb.create_electrode_table_region(list(range(recording.get_num_channels())),
                                               "all channels")
    gains = np.asarray(recording.get_channel_gains(), dtype=float)  # uV per bit
    nwb.add_acquisition(ElectricalSeries(
        name="ElectricalSeries", data=recording.get_traces(return_in_uV=False),
        electrodes=region, rate=float(recording.get_sampling_frequency()),
        starting_time=0.0, conversion=1e-6, channel_conversion=gains,
        filtering="none (SpikeGLX AP band, hardware filter only)"))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def plan_rodent(src: Path, dataset: Path, *, subject: str, task: str, workdir: Path,
                species: str = "mus musculus", strain: str | None = None,
                strain_rrid: str | None = None, session: str | None = None,
                opto_log: Path | None = None, line_freq: float = 50.0) -> IngestPlan:
    """Read a SpikeGLX recording and plan its BEP032 ``ecephys/`` files in ``dataset``."""
    import spikeinterface.extractors as se

    dataset = check_dataset(dataset, "rodent")
    for key, value in (("sub", subject), ("task", task), ("ses", session)):
        if value is not None:
            check_label(key, value)
    if species == "homo sapiens":
        raise InputError("rodent ingest needs an animal species, e.g. --species "
                         "'mus musculus'")
    bin_path, meta = check_spikeglx(src)
    opto = read_opto_log(opto_log) if opto_log else []
    try:
        recording = se.read_spikeglx(bin_path.parent, stream_id="imec0.ap")
    except Exception as exc:  # neo raises many types on unexpected files
        raise InputError(f"spikeinterface cannot read {bin_path} ({exc})") from None
    start = _start(meta)
    prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    folder = f"sub-{subject}" + (f"/ses-{session}" if session else "") + "/ecephys"
    stem = f"{folder}/{prefix}_task-{task}"
    fingerprint = source_fingerprint(bin_path)
    nwb = dataset / f"{stem}_ecephys.nwb"
    if _fingerprint_of(dataset / f"{stem}_ecephys.json") != fingerprint or not nwb.exists():
        nwb = workdir / "recording.nwb"  # HDF5 files differ byte-wise on every write
        write_nwb(recording, nwb, subject=subject, species=species, strain=strain,
                  start=start, description=f"task {task}; SpikeGLX {bin_path.name}")
    rate = float(recording.get_sampling_frequency())
    plan = IngestPlan(dataset, "rodent", subject, session, species=species,
                      source=fingerprint,
                      participant={"participant_id": f"sub-{subject}", "species": species,
                                   "strain": strain, "strain_rrid": strain_rrid})
    plan.files += [
        PlannedFile(f"{stem}_ecephys.nwb", source=nwb),
        PlannedFile(f"{stem}_ecephys.json", content=json_bytes(
            {**_sidecar(recording, meta, task, line_freq, bool(opto)),
             "SourceFingerprint": fingerprint})),
        PlannedFile(f"{stem}_channels.tsv", content=_channels(recording, rate).encode()),
        PlannedFile(f"{folder}/{prefix}_electrodes.tsv", content=_electrodes(recording)
                    .encode()),
        PlannedFile(f"{folder}/{prefix}_probes.tsv", content=_probes(recording).encode()),
    ]
    if opto:
        plan.files += _opto_files(stem, opto)
    plan.scans = [(f"{stem}_ecephys.nwb", start.strftime("%Y-%m-%dT%H:%M:%S"))]
    _ignore_ecephys(plan)
    return plan


def source_fingerprint(bin_path: Path) -> str:
    """A hash of the .meta, the .bin size and its first and last MiB (cheap for huge runs)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(bin_path.with_suffix(".meta").read_bytes())
    size = bin_path.stat().st_size
    digest.update(str(size).encode())
    with bin_path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def _fingerprint_of(sidecar: Path) -> str | None:
    try:
        return str(json.loads(sidecar.read_text(encoding="utf-8")).get("SourceFingerprint"))
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _start(meta: dict[str, Any]) -> datetime.datetime:
    try:
        stamp = datetime.datetime.fromisoformat(str(meta.get("fileCreateTime", "")))
    except ValueError:
        stamp = datetime.datetime(1900, 1, 1)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)


def _sidecar(recording: Any, meta: dict[str, Any], task: str, line_freq: float,
             opto: bool) -> dict[str, Any]:
    return {"TaskName": task, "PowerLineFrequency": line_freq,
            "SamplingFrequency": float(recording.get_sampling_frequency()),
            "SoftwareFilters": "n/a", "Manufacturer": "IMEC",
            "RecordingDuration": round(recording.get_total_duration(), 6),
            "RecordingType": "continuous", "ChannelCount": recording.get_num_channels(),
            "AcquisitionSoftware": f"SpikeGLX {meta.get('appVersion', '')}".strip(),
            "OptogeneticStimulation": opto}


def _channels(recording: Any, rate: float) -> str:
    gains = recording.get_channel_gains()
    rows = [[name, name, "EXT", "uV", rate, f"{gain:.6g}"]
            for name, gain in zip(recording.channel_ids, gains, strict=True)]
    return format_tsv(["name", "electrode_name", "type", "units", "sampling_frequency",
                       "gain"], rows)


def _electrodes(recording: Any) -> str:
    rows = [[name, "probe0", f"{x:g}", f"{y:g}", "0"] for name, (x, y) in
            zip(recording.channel_ids, recording.get_channel_locations(), strict=True)]
    return format_tsv(["name", "probe_name", "x", "y", "z"], rows)


def _probes(recording: Any) -> str:
    probe = recording.get_probe() if recording.has_probe() else None
    return format_tsv(["probe_name", "type", "manufacturer", "model"],
                      [["probe0", "silicon probe", getattr(probe, "manufacturer", None),
                        getattr(probe, "model_name", None)]])


def _opto_files(stem: str, rows: list[dict[str, str]]) -> list[PlannedFile]:
    header = ["onset", "duration", "trial_type", *OPTO_COLUMNS[2:]]
    table = format_tsv(header, [[r["onset"], r["duration"], "optogenetics",
                                 *[r[c] for c in OPTO_COLUMNS[2:]]] for r in rows])
    protocols = sorted({tuple(r[c] for c in OPTO_COLUMNS[2:]) for r in rows})
    sidecar = {"OptogeneticStimulation": [dict(zip(
        ("Wavelength", "Power", "PulseFrequency", "PulseWidth", "Site"), p, strict=True))
        for p in protocols], "Units": {"Wavelength": "nm", "Power": "mW",
                                       "PulseFrequency": "Hz", "PulseWidth": "ms"}}
    return [PlannedFile(f"{stem}_events.tsv", content=table.encode()),
            PlannedFile(f"{stem}_events.json", content=json_bytes(OPTO_DESCRIPTIONS)),
            PlannedFile(f"{stem}_optogenetics.json", content=json_bytes(sidecar))]


def _ignore_ecephys(plan: IngestPlan) -> None:
    ignore_draft(plan, ECEPHYS_IGNORE,
                 "BEP032 (microelectrode electrophysiology) is a draft; see README")
    readme = plan.dataset / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if "BEP032" not in text:
        plan.updates["README.md"] = text + (
            "\n## Microelectrode recordings\n\nThe `ecephys/` folders follow the BEP032 draft "
            "(NWB data, probes/channels/electrodes tables). The official validator does not "
            "know BEP032 yet, so `.bidsignore` lists them.\n")


def ingest_rodent(src: Path, dataset: Path, *, subject: str, task: str,
                  species: str = "mus musculus", strain: str | None = None,
                  strain_rrid: str | None = None, session: str | None = None,
                  opto_log: Path | None = None, line_freq: float = 50.0,
                  overwrite: bool = False, dry_run: bool = False,
                  progress: ProgressCallback = ignore_progress
                  ) -> tuple[IngestPlan, ApplyResult | None]:
    """Bring one SpikeGLX recording (and its optogenetic log) into a BIDS dataset."""
    with tempfile.TemporaryDirectory(prefix="ntdb-rodent-") as tmp:
        plan = plan_rodent(src, dataset, subject=subject, task=task, workdir=Path(tmp),
                           species=species, strain=strain, strain_rrid=strain_rrid,
                           session=session, opto_log=opto_log, line_freq=line_freq)
        if dry_run:
            return plan, None
        return plan, apply_plan(plan, overwrite=overwrite, progress=progress)
