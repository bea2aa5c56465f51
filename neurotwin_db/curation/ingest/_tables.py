"""Merge rows into participants.tsv and scans.tsv (pure text in, text out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from neurotwin_db.curation._participants import parse_participants


def merge_participant(text: str | None, row: Mapping[str, str | None], *, source: str) -> str:
    r"""Add or update one participant row; new columns are appended, others kept.

    >>> t = "participant_id\tspecies\nsub-01\thomo sapiens\n"
    >>> print(merge_participant(t, {"participant_id": "sub-02", "age": "70"}, source="p"))
    ... # doctest: +NORMALIZE_WHITESPACE
    participant_id	species	age
    sub-01	homo sapiens	n/a
    sub-02	n/a	70
    <BLANKLINE>
    """
    rows = parse_participants(text, source=source) if text else []
    header = list(rows[0]) if rows else (text.splitlines()[0].split("\t") if text else
                                         ["participant_id"])
    header += [k for k in row if k not in header]
    merged = False
    for existing in rows:
        if existing["participant_id"] == row["participant_id"]:
            existing.update({k: v for k, v in row.items() if v is not None})
            merged = True
    if not merged:
        rows.append(dict(row))
    return format_tsv(header, [[r.get(c) for c in header] for r in rows])


def merge_scans(text: str | None, rows: Sequence[tuple[str, str | None]]) -> str:
    """Add or replace ``(filename, acq_time)`` rows of a scans.tsv, sorted by filename."""
    table: dict[str, list[str | None]] = {}
    header = ["filename", "acq_time"]
    if text:
        lines = [line.split("\t") for line in text.splitlines() if line.strip()]
        header = lines[0]
        for values in lines[1:]:
            table[values[0]] = [None if v == "n/a" else v for v in values]
    time_col = header.index("acq_time") if "acq_time" in header else None
    for filename, acq_time in rows:
        values = table.get(filename, [filename] + [None] * (len(header) - 1))
        if time_col is not None:
            values[time_col] = acq_time
        table[filename] = values
    return format_tsv(header, [table[k] for k in sorted(table)])


def format_tsv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["\t".join(header)]
    lines += ["\t".join("n/a" if v is None or v == "" else str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def parse_tsv(text: str) -> list[dict[str, str | None]]:
    r"""Rows of a BIDS TSV as dicts (``n/a`` becomes None).

    >>> parse_tsv("a\tb\n1\tn/a\n")
    [{'a': '1', 'b': None}]
    """
    lines = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0]
    return [{k: (None if v == "n/a" else v) for k, v in zip(header, values, strict=False)}
            for values in lines[1:]]
