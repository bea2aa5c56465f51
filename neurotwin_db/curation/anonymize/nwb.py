"""Anonymize an NWB file: relabel the subject, shift its dates, drop staff and site names.

The file is exported anew with pynwb (rather than edited in place with h5py), so the old
values do not survive in unused space of the file and internal references stay valid.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError

DROPPED = ("experimenter", "institution", "lab", "data_collection", "surgery", "notes",
           "related_publications")


def rewrite_nwb(src: Path, dst: Path, *, subject: str | None,
                shift: timedelta | None) -> list[str]:
    """Write an anonymized copy of the NWB file ``src`` to ``dst``; return the changes."""
    from pynwb import NWBHDF5IO

    notes: list[str] = []
    try:
        with warnings.catch_warnings(), NWBHDF5IO(str(src), "r") as source, \
                atomic_target(dst) as tmp:
            warnings.simplefilter("ignore")  # pynwb warns about cached namespaces
            nwb = source.read()
            for name in DROPPED:
                if nwb.fields.pop(name, None) is not None:
                    notes.append(f"drop {name}")
            if nwb.subject is not None:
                if subject:
                    nwb.subject.fields["subject_id"] = f"sub-{subject}"
                    notes.append("relabel subject_id")
                if nwb.subject.fields.pop("date_of_birth", None) is not None:
                    notes.append("drop subject date_of_birth")
                nwb.subject.set_modified()
            notes += _shift_dates(nwb, shift)
            nwb.set_modified()
            with NWBHDF5IO(str(tmp), "w") as target:
                target.export(src_io=source, nwbfile=nwb)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{src} is not a readable NWB file ({exc}); repair or remove it, "
                         "then re-run") from None
    return notes


def _shift_dates(nwb: object, shift: timedelta | None) -> list[str]:
    if shift is None:
        raise InputError("an NWB file outside any sub- folder has no subject to shift its "
                         "dates by; move it under its sub-<label>/ folder")
    fields = nwb.fields  # type: ignore[attr-defined]
    for name in ("session_start_time", "timestamps_reference_time"):
        if fields.get(name) is not None:
            fields[name] = fields[name] + shift
    if fields.get("file_create_date") is not None:
        fields["file_create_date"] = [d + shift for d in fields["file_create_date"]]
    return ["shift session_start_time, timestamps_reference_time and file_create_date"]
