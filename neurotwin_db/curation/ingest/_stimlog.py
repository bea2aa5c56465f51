"""Read stimulation logs (TMS pulses, tACS sessions) strictly, and build their sidecars.

Pure apart from reading the log: every problem is an InputError naming the file, the
row or key, and the fix.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from neurotwin_db.errors import InputError
from neurotwin_db.schemas import validate_instance

TMS_REQUIRED = ("time", "intensity", "coil")
PULSE_SHAPES = ("monophasic", "biphasic", "half-sine", "n/a")
TMS_EVENT_COLUMNS: dict[str, dict[str, Any]] = {
    "onset": {"Description": "Pulse time from the start of the recording.", "Units": "s"},
    "duration": {"Description": "Pulse width (0 when the log does not give it).",
                 "Units": "s"},
    "trial_type": {"Description": "Kind of event.",
                   "Levels": {"tms_pulse": "one TMS pulse"}},
    "intensity": {"Description": "Stimulator output.", "Units": "%MSO"},
    "coil": {"Description": "Coil that delivered the pulse (CoilID in the nibs sidecar)."},
    "target": {"Description": "Target as an EEG electrode position (10-10 name)."},
    "target_x": {"Description": "Target x coordinate in the neuronavigation space.",
                 "Units": "mm"},
    "target_y": {"Description": "Target y coordinate.", "Units": "mm"},
    "target_z": {"Description": "Target z coordinate.", "Units": "mm"},
    "pulse_shape": {"Description": "Pulse waveform.",
                    "Levels": {s: s for s in PULSE_SHAPES}},
}


@dataclass(frozen=True, slots=True)
class TmsLog:
    """The pulses of a TMS-EEG session and the stimulator it used."""

    path: Path
    device: dict[str, str]
    pulses: list[dict[str, Any]]


def read_tms_log(path: Path) -> TmsLog:
    """Read a CSV (one row per pulse) or JSON (``{"device": {...}, "pulses": [...]}``) log."""
    path = Path(path)
    device: dict[str, str] = {}
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("pulses", []) if isinstance(data, dict) else data
            device = dict(data.get("device", {})) if isinstance(data, dict) else {}
        else:
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read stimulation log {path}: {exc}") from None
    if not rows:
        raise InputError(f"stimulation log {path} has no pulses; one row per pulse with "
                         f"columns {', '.join(TMS_REQUIRED)}")
    missing = [c for c in TMS_REQUIRED if c not in rows[0]]
    if missing:
        raise InputError(f"stimulation log {path} lacks column(s) {missing}; a TMS log needs "
                         f"{', '.join(TMS_REQUIRED)} (and target or target_x/y/z)")
    pulses = [_pulse(row, n, path) for n, row in enumerate(rows, 1)]
    times = [p["onset"] for p in pulses]
    repeated = sorted({t for t in times if times.count(t) > 1})
    if repeated:
        raise InputError(f"stimulation log {path}: more than one pulse at {repeated[0]} s; "
                         f"each row is one pulse at its own time")
    return TmsLog(path, device, pulses)


def _pulse(row: dict[str, Any], number: int, path: Path) -> dict[str, Any]:
    where = f"stimulation log {path}, pulse {number}"
    time = _number(row, "time", where)
    intensity = _number(row, "intensity", where)
    if time < 0:
        raise InputError(f"{where}: time {time} is negative; times are seconds from the start "
                         f"of the EEG recording")
    if not 0 < intensity <= 100:
        raise InputError(f"{where}: intensity {intensity} is outside (0, 100] %MSO")
    shape = str(row.get("pulse_shape") or "n/a").lower()
    if shape not in PULSE_SHAPES:
        raise InputError(f"{where}: pulse_shape {shape!r} is not one of {list(PULSE_SHAPES)}")
    coords = [row.get(f"target_{axis}") for axis in "xyz"]
    if not row.get("target") and not all(c not in (None, "") for c in coords):
        raise InputError(f"{where}: give a target (EEG position such as C3) or all of "
                         f"target_x, target_y, target_z")
    pulse = {"onset": time, "intensity": intensity, "coil": str(row["coil"]).strip(),
             "target": row.get("target") or None, "pulse_shape": shape,
             "duration": _number(row, "pulse_width", where) if row.get("pulse_width") else 0.0}
    if not pulse["coil"]:
        raise InputError(f"{where}: the coil is empty")
    for axis, value in zip("xyz", coords, strict=True):
        pulse[f"target_{axis}"] = None if value in (None, "") else _number(
            row, f"target_{axis}", where)
    return pulse


def _number(row: dict[str, Any], key: str, where: str) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise InputError(f"{where}: {key}={row.get(key)!r} is not a number") from None


def tms_sidecar(log: TmsLog, events_file: str) -> dict[str, Any]:
    """The BEP037-style sidecar for a TMS session, validated against its JSON Schema."""
    coils = sorted({p["coil"] for p in log.pulses})
    shapes = sorted({p["pulse_shape"] for p in log.pulses})
    sidecar: dict[str, Any] = {
        "StimulationSystemName": "tms",
        **{k: str(v) for k, v in log.device.items()
           if k in ("Manufacturer", "ManufacturersModelName")},
        "CoilSet": [{"CoilID": c, **_coil_details(log.device, c)} for c in coils],
        "StimulusSet": [{"StimulusID": f"pulse-{s}", "PulseShape": s} for s in shapes],
        "PulseCount": len(log.pulses),
        "IntensityUnits": "%MSO",
        "EventsFile": events_file,
    }
    validate_instance(sidecar, "nibs_tms", source=f"TMS sidecar from {log.path}")
    return sidecar


def _coil_details(device: dict[str, Any], coil: str) -> dict[str, str]:
    details = device.get("coils", {}) if isinstance(device.get("coils"), dict) else {}
    return {k: str(v) for k, v in details.get(coil, {}).items()
            if k in ("CoilType", "Manufacturer")}


TACS_REQUIRED = ("device", "electrodes", "current_mA", "frequency_Hz", "waveform",
                 "ramp_up_s", "ramp_down_s", "duration_s", "condition")
MAX_CURRENT_MA = 4.0
_SIZE = re.compile(r"^(?:(rect|disc):)?(\d+(?:\.\d+)?)(?:x(\d+(?:\.\d+)?))?(?:mm)?$")


def read_tacs_log(path: Path, *, allow_high_current: bool = False) -> dict[str, Any]:
    """Read one tACS/tDCS session log (JSON or YAML) and check it."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"cannot read session log {path}: {first}; it must be YAML or JSON"
                         ) from None
    if not isinstance(data, dict):
        raise InputError(f"session log {path} must be a mapping of keys to values")
    missing = [k for k in TACS_REQUIRED if k not in data]
    if missing:
        raise InputError(f"session log {path} lacks {missing}; a tACS log needs "
                         f"{', '.join(TACS_REQUIRED)}")
    where = f"session log {path}"
    current = _number(data, "current_mA", where)
    if current <= 0:
        raise InputError(f"{where}: current_mA {current} must be positive (peak current)")
    if current > MAX_CURRENT_MA and not allow_high_current:
        raise InputError(f"{where}: current_mA {current} is above the {MAX_CURRENT_MA} mA "
                         f"safety limit; pass --allow-high-current if this is intended")
    for key in ("frequency_Hz", "ramp_up_s", "ramp_down_s", "duration_s"):
        if _number(data, key, where) < 0:
            raise InputError(f"{where}: {key} must not be negative")
    if str(data["condition"]).lower() not in ("active", "sham"):
        raise InputError(f"{where}: condition {data['condition']!r} must be active or sham")
    if not isinstance(data["electrodes"], list) or len(data["electrodes"]) < 2:
        raise InputError(f"{where}: electrodes must list at least two "
                         f"{{position, size}} entries")
    return data


def tacs_sidecar(log: dict[str, Any], blinding_code: str, source: Path) -> dict[str, Any]:
    """The BEP037-style sidecar for one stimulation session (condition blinded)."""
    impedance = log.get("impedance_kOhm")
    sidecar: dict[str, Any] = {
        "StimulationSystemName": "tes",
        "Device": str(log["device"]),
        "Setting": str(log.get("setting", "n/a")),
        "ElectrodeSet": [_electrode(e, source) for e in log["electrodes"]],
        "StimulusSet": [{
            "Waveform": str(log["waveform"]).lower(),
            "CurrentAmplitude": float(log["current_mA"]), "CurrentUnits": "mA",
            "Frequency": float(log["frequency_Hz"]), "FrequencyUnits": "Hz",
            "RampUp": float(log["ramp_up_s"]), "RampDown": float(log["ramp_down_s"]),
            "Duration": float(log["duration_s"]), "TimeUnits": "s"}],
        "Condition": "blinded",
        "BlindingCode": blinding_code,
    }
    if impedance is not None:
        values = impedance if isinstance(impedance, list) else [impedance]
        sidecar["Impedance"] = [float(v) for v in values]
        sidecar["ImpedanceUnits"] = "kOhm"
    if "adherence" in log:
        sidecar["Adherence"] = float(log["adherence"])
    validate_instance(sidecar, "nibs_tes", source=f"session log {source}")
    return sidecar


def _electrode(item: Any, source: Path) -> dict[str, Any]:
    if not isinstance(item, dict) or "position" not in item or "size" not in item:
        raise InputError(f"session log {source}: each electrode needs position and size, "
                         f"e.g. {{position: F3, size: 50x50}}")
    match = _SIZE.match(str(item["size"]).replace(" ", ""))
    if match is None:
        raise InputError(f"session log {source}: electrode size {item['size']!r}; write "
                         f"WxH in mm (50x50) or disc:D (disc:10)")
    shape, first, second = match.groups()
    size = [float(first)] + ([float(second)] if second else [])
    shape = shape or ("rect" if second else "disc")
    position = str(item["position"])
    if position.lower() not in _ten_ten_names():
        raise InputError(f"session log {source}: electrode position {position!r} is not a "
                         f"10-10/10-05 name (e.g. F3, Fp2, CPz)")
    return {"Position": position, "Shape": shape, "Size": size, "SizeUnits": "mm"}


@cache
def _ten_ten_names() -> frozenset[str]:
    import mne

    names = mne.channels.get_builtin_montages()
    name = "colin27_1005" if "colin27_1005" in names else "standard_1005"  # MNE 1.13 rename
    return frozenset(n.lower() for n in mne.channels.make_standard_montage(name).ch_names)
