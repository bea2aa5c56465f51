"""EEGLAB ``.set`` files (MATLAB v5/v7): list identifying fields, re-save anonymized."""

from __future__ import annotations

import re
import shutil
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from neurotwin_db.curation.anonymize.eeg._common import EVENT_PREFIX, _unreadable
from neurotwin_db.errors import InputError

_SET_TEXT = ("setname", "comments", "history", "filename", "filepath")
_MAT_HEADER = "MATLAB 5.0 MAT-file, anonymized by neurotwin_db"


def _load_set(path: Path) -> tuple[dict[str, Any], Any]:
    """The MAT variables and the EEG fields (the ``EEG`` struct or the variables)."""
    from scipy.io import loadmat

    with path.open("rb") as handle:
        head = handle.read(128)
    if b"MATLAB 7.3" in head:
        raise InputError(f"{path} is a MATLAB v7.3 (HDF5) .set file, which is not supported; "
                         "re-save it in EEGLAB as v6/v7 (pop_editoptions('option_saveversion6',"
                         " 1), then pop_saveset)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mat = loadmat(path, mat_dtype=False)
    except Exception as exc:  # scipy raises many types for corrupt files
        raise _unreadable(path, "EEGLAB", exc) from None
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    return mat, mat["EEG"] if "EEG" in mat else mat


def _get(eeg: Any, name: str) -> Any:
    if isinstance(eeg, dict):
        return eeg.get(name)
    return eeg[name][0, 0] if name in (eeg.dtype.names or ()) else None


def _put(eeg: Any, name: str, value: Any) -> None:
    """Replace field ``name`` if the file has it (no new fields are added)."""
    if isinstance(eeg, dict):
        if name in eeg:
            eeg[name] = value
    elif name in (eeg.dtype.names or ()):
        eeg[name][0, 0] = value


def _mat_text(value: Any) -> str:
    import numpy as np

    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return "\n".join(row.rstrip() for row in value.ravel()).strip()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return "\n".join(t for t in (_mat_text(v) for v in value.ravel()) if t)
    return ""


def _mat_leaves(value: Any, where: str, change: Callable[[str, Any], Any] | None = None,
                ) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) for every leaf of a MATLAB struct/cell; ``change`` replaces it."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype.names:
        for i, index in enumerate(np.ndindex(value.shape)):
            for name in value.dtype.names:
                item = value[name][index]
                label = f"{where}.{name}" if value.size == 1 else f"{where}({i + 1}).{name}"
                yield from _mat_leaves(item, label, change)
                if change is not None:
                    value[name][index] = change(label, item)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for i, item in enumerate(value.reshape(-1)):
            yield from _mat_leaves(item, f"{where}{{{i + 1}}}", change)
    else:
        yield where, value


def _t0(value: Any) -> datetime | None:
    import numpy as np

    flat = np.asarray(value).ravel() if np.asarray(value).dtype.kind in "fiu" else ()
    if len(flat) != 6:
        return None
    try:
        whole = datetime(*(int(v) for v in flat[:5]))
        return whole + timedelta(seconds=float(flat[5]))
    except (ValueError, OverflowError):
        return None


def _eeglab_fields(path: Path, add: Callable[[str, object, str], None]) -> None:
    with path.open("rb") as handle:
        header = handle.read(116).decode("latin-1")
    _, eeg = _load_set(path)
    created = re.search(r"Created on:\s*(.+?)\s*$", header.rstrip("\0 "))
    if created:
        try:
            add("MAT header creation date",
                datetime.strptime(created[1], "%a %b %d %H:%M:%S %Y"), "date")
        except ValueError:
            add("MAT header creation date", created[1], "date")
    add("EEGLAB EEG.subject", _mat_text(_get(eeg, "subject")), "id")
    for name in _SET_TEXT:
        add(f"EEGLAB EEG.{name}", _mat_text(_get(eeg, name)), "text")
    etc = _get(eeg, "etc")
    for where, leaf in _mat_leaves(etc, "EEGLAB EEG.etc") if etc is not None else ():
        if where.endswith(".T0") and _t0(leaf):
            add(where, _t0(leaf), "date")
        else:
            add(where, _mat_text(leaf), "text")
    events = _get(eeg, "event")
    if events is not None and getattr(events, "dtype", None) is not None and events.dtype.names:
        for i, item in enumerate(events.reshape(-1)):
            if "type" in events.dtype.names:
                add(f"{EVENT_PREFIX}EEGLAB EEG.event({i + 1}).type", _mat_text(item["type"]),
                    "text")


def _rewrite_eeglab(src: Path, staged: Path, subject: str,
                    shift: timedelta | None) -> tuple[list[str], list[Path]]:
    import numpy as np
    from scipy.io import savemat

    mat, eeg = _load_set(src)
    _put(eeg, "subject", np.array(subject))
    _put(eeg, "setname", np.array(subject))
    for name in _SET_TEXT[1:]:
        _put(eeg, name, np.array(""))

    def scrub(where: str, leaf: Any) -> Any:
        if where.endswith(".T0") and _t0(leaf) is not None:
            new = _t0(leaf) + (shift or timedelta(0))
            seconds = new.second + new.microsecond / 1e6
            return np.array([[new.year, new.month, new.day, new.hour, new.minute, seconds]])
        return np.array("") if _mat_text(leaf) else leaf

    etc = _get(eeg, "etc")
    if etc is not None:
        deque(_mat_leaves(etc, "EEG.etc", scrub), maxlen=0)  # walk it: scrub edits in place
    outputs = []
    data = _mat_text(_get(eeg, "data"))
    if data:  # the samples live in a separate .fdt file
        fdt = staged.with_suffix(".fdt")
        try:
            shutil.copyfile(src.parent / data, fdt)
        except OSError as exc:
            raise InputError(f"cannot copy {data} named in {src} ({exc.strerror}); copy the "
                             ".fdt file next to the .set file") from None
        _put(eeg, "data", np.array(fdt.name))
        outputs.append(fdt)
    if _get(eeg, "datfile") is not None:
        _put(eeg, "datfile", np.array(outputs[0].name if outputs else ""))
    savemat(staged, mat, appendmat=False, long_field_names=True, oned_as="row")
    with staged.open("r+b") as handle:  # scipy writes the current time in the header
        handle.write(_MAT_HEADER.ljust(116).encode("ascii"))
    return ["EEGLAB .set re-saved (MATLAB v5)"], [*outputs, staged]
