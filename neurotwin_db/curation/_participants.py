"""Read ``participants.tsv`` strictly: a malformed table is an error, never a guess."""

from __future__ import annotations

import re

from neurotwin_db.errors import InputError

_PARTICIPANT = re.compile(r"sub-[A-Za-z0-9]+")


def parse_participants(text: str, *, source: str) -> list[dict[str, str | None]]:
    r"""Parse the text of a participants.tsv into rows (``n/a`` becomes None).

    Raises InputError naming ``source``, the line and the fix when a row has the wrong
    number of fields, ``participant_id`` is missing or malformed, or an id repeats.

    >>> parse_participants("participant_id\tage\nsub-01\t70\n", source="p.tsv")
    [{'participant_id': 'sub-01', 'age': '70'}]
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{source} is empty; it needs at least the header "
                         f"'participant_id' (tab-separated)")
    header = lines[0].split("\t")
    if header[0] != "participant_id":
        raise InputError(f"{source}: the first column is {header[0]!r}, not 'participant_id'; "
                         f"columns must be tab-separated with participant_id first")
    if len(set(header)) != len(header):
        raise InputError(f"{source}: repeated column names in header {header}")
    rows: list[dict[str, str | None]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        values = line.split("\t")
        if len(values) != len(header):
            raise InputError(f"{source} line {number}: {len(values)} fields, the header has "
                             f"{len(header)}; separate columns with one tab and write n/a "
                             f"for missing values")
        pid = values[0]
        if not _PARTICIPANT.fullmatch(pid):
            raise InputError(f"{source} line {number}: participant_id {pid!r} must look like "
                             f"sub-<label> with an alphanumeric label")
        if pid in seen:
            raise InputError(f"{source} line {number}: participant_id {pid!r} appears twice")
        seen.add(pid)
        rows.append({k: (None if v == "n/a" else v) for k, v in zip(header, values, strict=True)})
    return rows
