"""BrainVision headers (``.vhdr`` + ``.vmrk``): list identifying lines, write clean copies.

Free text is dropped, marker dates are shifted and the data file is copied unchanged.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from neurotwin_db.curation.anonymize.eeg._common import EVENT_PREFIX, _unreadable
from neurotwin_db.errors import InputError

_BV_SECTIONS = {"Common Infos", "Binary Infos", "ASCII Infos", "Channel Infos", "Coordinates",
                "Marker Infos", "Comment"}
_BV_NOTES = re.compile(r";\s*($|Data created by the Vision Recorder|Written using pybv|"
                       r"Exported using pybv|Data orientation|Sampling interval|Each entry|<|"
                       r"Fields are delimited|Commas in|Data synchroni[sz]ed)", re.IGNORECASE)
_BV_CODES = {"New Segment", "Stimulus", "Response", "SyncStatus"}  # descriptions are codes


@dataclass(frozen=True)
class _Ini:
    path: Path
    lines: list[str]
    encoding: str
    newline: str


def _read_ini(path: Path) -> _Ini:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror}); the BrainVision header "
                         "points at it: check that all three files were copied") from None
    utf8 = re.search(rb"^\s*Codepage\s*=\s*UTF-8", data, re.MULTILINE | re.IGNORECASE)
    text = data.decode("utf-8" if utf8 else "latin-1", "surrogateescape")
    lines = text.splitlines()
    if not lines or "Brain" not in lines[0] or "Vision" not in lines[0]:
        raise _unreadable(path, "BrainVision", "first line is not a Brain Vision identifier")
    return _Ini(path, lines, "utf-8" if utf8 else "latin-1", "\r\n" if "\r\n" in text else "\n")


def _ini_lines(ini: _Ini) -> Iterator[tuple[int, str | None, str, bool]]:
    """Yield (line number, section, line, keep): keep is False for free text."""
    section: str | None = None
    for number, line in enumerate(ini.lines, start=1):
        stripped = line.strip()
        if number == 1 or not stripped:
            yield number, section, line, True
        elif stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            yield number, section, line, section in _BV_SECTIONS
        elif stripped.startswith(";"):
            yield number, section, line, bool(_BV_NOTES.match(stripped))
        else:
            yield number, section, line, (section in _BV_SECTIONS and section != "Comment"
                                         and "=" in stripped)


def _ini_entries(ini: _Ini, wanted: str) -> dict[str, str]:
    entries = {}
    for _, section, line, keep in _ini_lines(ini):
        if keep and section == wanted and "=" in line and not line.lstrip().startswith(";"):
            key, value = line.split("=", 1)
            entries[key.strip()] = value.strip()
    return entries


def _companion(vhdr: Path, name: str) -> Path:
    """The file a header entry names, relative to the header."""
    return vhdr.parent / name


def _vmrk_date(text: str) -> datetime | None:
    if not re.fullmatch(r"\d{20}", text) or not text.strip("0"):
        return None
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(microsecond=int(text[14:]))
    except ValueError:
        return None


def _markers(ini: _Ini) -> Iterator[tuple[str, list[str]]]:
    for key, value in _ini_entries(ini, "Marker Infos").items():
        if re.fullmatch(r"Mk\d+", key):
            yield key, value.split(",")


def _free_text(ini: _Ini, name: str, add: Callable[[str, object, str], None]) -> None:
    for number, section, line, keep in _ini_lines(ini):
        if not keep and not line.strip().startswith("["):
            where = "comment" if line.strip().startswith(";") else f"[{section}]"
            add(f"{name} {where} line {number}", line, "text")


def _brainvision_fields(path: Path, add: Callable[[str, object, str], None]) -> None:
    vhdr = _read_ini(path)
    _free_text(vhdr, "vhdr", add)
    marker = _ini_entries(vhdr, "Common Infos").get("MarkerFile")
    if not marker:
        return
    vmrk = _read_ini(_companion(path, marker))
    _free_text(vmrk, "vmrk", add)
    for key, parts in _markers(vmrk):
        kind = parts[0]
        if len(parts) > 5 and parts[5].strip("0 "):
            add(f"vmrk {key} {kind} date", _vmrk_date(parts[5]) or parts[5], "date")
        if len(parts) > 1 and kind not in _BV_CODES:
            add(f"{EVENT_PREFIX}vmrk {key} {kind}", parts[1].replace(r"\1", ","), "text")


def _clean_ini(ini: _Ini, edit: Callable[[str | None, str, str], str]) -> bytes:
    """Kept lines only; ``edit(section, key, value)`` gives each entry's new value."""
    out = []
    for number, section, line, keep in _ini_lines(ini):
        if not keep:
            continue
        if number > 1 and "=" in line and not line.lstrip().startswith(";"):
            key, value = line.split("=", 1)
            line = f"{key}={edit(section, key.strip(), value)}"
        out.append(line)
    return (ini.newline.join(out) + ini.newline).encode(ini.encoding, "surrogateescape")


def _rewrite_brainvision(src: Path, staged: Path, subject: str,
                         shift: timedelta | None) -> tuple[list[str], list[Path]]:
    vhdr = _read_ini(src)
    common = _ini_entries(vhdr, "Common Infos")
    if not common.get("DataFile"):
        raise InputError(f"{src} has no DataFile= entry in [Common Infos]; it is not a "
                         "complete BrainVision header")
    data = staged.with_suffix(Path(common["DataFile"]).suffix or ".eeg")
    marker = staged.with_suffix(".vmrk") if common.get("MarkerFile") else None
    names = {"DataFile": data.name, "MarkerFile": marker.name if marker else ""}

    def edit(section: str | None, key: str, value: str) -> str:
        if section == "Common Infos" and key in names:
            return names[key]
        if section == "Marker Infos" and shift and re.fullmatch(r"Mk\d+", key):
            parts = value.split(",")
            when = _vmrk_date(parts[5]) if len(parts) > 5 else None
            if when:
                parts[5] = (when + shift).strftime("%Y%m%d%H%M%S%f")
            return ",".join(parts)
        return value

    try:
        shutil.copyfile(_companion(src, common["DataFile"]), data)
    except OSError as exc:
        raise InputError(f"cannot copy the data file {common['DataFile']} named in {src} "
                         f"({exc.strerror}); copy it next to the header") from None
    outputs = [data]
    if marker:
        marker.write_bytes(_clean_ini(_read_ini(_companion(src, common["MarkerFile"])), edit))
        outputs.append(marker)
    staged.write_bytes(_clean_ini(vhdr, edit))
    return [f"BrainVision files written as {', '.join(p.name for p in outputs)} "
            f"and {staged.name}"], [*outputs, staged]
