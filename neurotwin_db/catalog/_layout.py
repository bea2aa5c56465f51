"""Where a file sits in a BIDS dataset: raw, derivative, top-level or not BIDS (pure)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from neurotwin_db.bidspath import bids_schema, split_relpath
from neurotwin_db.errors import EntityError


class Kind(StrEnum):
    """How the catalog treats a file."""

    BIDS = "bids"  # parsed into entities
    TOP = "top"  # a known top-level file (README, participants.tsv, ...)
    OTHER = "other"  # inside code/, sourcedata/, stimuli/ ...: kept, not parsed
    IGNORED = "ignored"  # matched by .bidsignore
    INVALID = "invalid"  # does not follow BIDS


@dataclass(frozen=True, slots=True)
class Placement:
    """The result of classifying one path."""

    kind: Kind
    pipeline: str | None
    base: str  # "" for raw files, "derivatives/<pipeline>" for derivative files
    entities: dict[str, str] | None = None
    datatype: str | None = None
    suffix: str | None = None
    extension: str | None = None
    error: str | None = None


@cache
def top_level_names() -> tuple[frozenset[str], frozenset[str]]:
    """(file names, folder names) the BIDS schema allows at the top of a dataset."""
    files, folders = set(), set()
    common = bids_schema().rules.files.common
    for group in (common.core, common.tables):
        for rule in group.values():
            if "path" in rule:
                (folders if "." not in rule.path and rule.path != "CHANGES" else files).add(
                    rule.path)
            elif "stem" in rule and rule.stem != "*":
                files.update(rule.stem + ext for ext in rule.extensions)
    folders.add("phenotype")
    return frozenset(files), frozenset(folders)


def parse_bidsignore(text: str) -> tuple[str, ...]:
    """Patterns of a ``.bidsignore`` file (comments and blank lines dropped)."""
    return tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


def is_ignored(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` matches a .bidsignore pattern (gitignore-like, simplified).

    >>> is_ignored("sub-01/nibs/sub-01_nibs.json", ("*_nibs.json",))
    True
    >>> is_ignored("extra/x.txt", ("extra/",))
    True
    """
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        pat = pattern.lstrip("/")
        if pat.endswith("/"):
            if path.startswith(pat) or f"/{pat}" in f"/{path}":
                return True
        elif fnmatch.fnmatchcase(path, pat) or fnmatch.fnmatchcase(name, pat) or \
                path.startswith(pat + "/"):
            return True
    return False


def place(path: str, ignore: tuple[str, ...] = ()) -> Placement:
    """Classify ``path`` (relative to the dataset root).

    >>> place("derivatives/fmriprep/sub-01/anat/sub-01_desc-brain_mask.nii.gz").pipeline
    'fmriprep'
    >>> place("sub-01/anat/notes.txt").kind
    <Kind.INVALID: 'invalid'>
    """
    pipeline, base, rel = None, "", path
    if path.startswith("derivatives/"):
        parts = path.split("/", 2)
        if len(parts) < 3:
            return Placement(Kind.INVALID, None, "", error="files directly in derivatives/ "
                             "belong in derivatives/<pipeline>/")
        pipeline, rel = parts[1], parts[2]
        base = f"derivatives/{pipeline}"
    if is_ignored(rel, ignore):
        return Placement(Kind.IGNORED, pipeline, base)
    files, folders = top_level_names()
    first = rel.split("/", 1)[0]
    if "/" not in rel and rel in files:
        return Placement(Kind.TOP, pipeline, base)
    if "/" in rel and not first.startswith("sub-"):
        kind = Kind.OTHER if first in folders else Kind.INVALID
        return Placement(kind, pipeline, base, error=f"folder {first!r} is not part of BIDS")
    try:
        entities, datatype, suffix, extension = split_relpath(rel)
    except EntityError as exc:
        return Placement(Kind.INVALID, pipeline, base, error=str(exc))
    if "/" in rel and "sub" not in entities:
        return Placement(Kind.INVALID, pipeline, base, error="the file name lacks sub-<label>")
    if "/" not in rel and extension not in (".json", ".tsv"):
        return Placement(Kind.INVALID, pipeline, base, error="only known files (README, "
                         "participants.tsv, ...) and inherited sidecars sit at the top level")
    return Placement(Kind.BIDS, pipeline, base, entities, datatype, suffix, extension)
