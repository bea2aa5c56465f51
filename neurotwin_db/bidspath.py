"""An immutable path to one BIDS file, expressed as entities.

Entity names, their order and their allowed values come from the BIDS schema that
bidsschematools bundles; nothing here is a hand-typed list.

Examples
--------
>>> p = BIDSPath.create(sub="01", task="rest", datatype="eeg", suffix="eeg", extension=".vhdr")
>>> p.relpath
'sub-01/eeg/sub-01_task-rest_eeg.vhdr'
>>> p.with_(run="2").basename
'sub-01_task-rest_run-2_eeg.vhdr'
>>> BIDSPath.parse("sub-01/ses-a/anat/sub-01_ses-a_T1w.nii.gz").entity_dict
{'sub': '01', 'ses': 'a'}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from neurotwin_db.errors import EntityError

OnError = Literal["raise", "ignore"]

_LABEL = re.compile(r"[A-Za-z0-9]+")
_INDEX = re.compile(r"[0-9]+")
_SUFFIX = re.compile(r"[A-Za-z0-9]+")


@cache
def bids_schema() -> Any:
    """Return the BIDS schema bundled with bidsschematools (loaded once)."""
    from bidsschematools.schema import load_schema

    return load_schema()


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One BIDS entity as the schema defines it."""

    key: str  # short key used in file names, e.g. "sub"
    name: str  # long name, e.g. "subject" (pybids uses these)
    format: str  # "label" or "index"
    enum: tuple[str, ...] | None


@cache
def entity_specs() -> dict[str, EntitySpec]:
    """Return the schema's entities keyed by short key, in the schema's order."""
    schema = bids_schema()
    specs = {}
    for name in schema.rules.entities:
        obj = schema.objects.entities[name]
        enum = obj.get("enum")
        specs[obj.name] = EntitySpec(obj.name, name, obj.format, tuple(enum) if enum else None)
    return specs


@cache
def entity_order() -> tuple[str, ...]:
    """Short entity keys in the order the schema requires in file names."""
    return tuple(entity_specs())


@cache
def datatypes() -> frozenset[str]:
    """The datatype folder names the schema knows."""
    return frozenset(v.value for v in bids_schema().objects.datatypes.values())


@cache
def bids_version() -> str:
    """The BIDS version of the bundled schema."""
    return str(bids_schema().bids_version)


def _clean(value: str, key: str = "") -> str:
    if key and value.startswith(f"{key}-"):
        value = value[len(key) + 1:]  # "sub-04" given as a label: the label is "04"
    return re.sub(r"[^A-Za-z0-9]", "", value) or "01"


@lru_cache(maxsize=1 << 16)  # labels repeat across files; the catalog checks 100k+ names
def check_label(key: str, value: str) -> str:
    """Return ``value`` if it is a valid label for entity ``key``, else raise EntityError."""
    spec = entity_specs().get(key)
    if spec is None:
        raise EntityError(
            f"unknown BIDS entity {key!r}; allowed entities are {', '.join(entity_order())}"
        )
    if not isinstance(value, str):
        value = str(value)
    if "/" in value or "\\" in value or ".." in value:
        raise EntityError(
            f"{key}={value!r} would escape the dataset root; BIDS labels must match "
            f"[a-zA-Z0-9]+ (try {key}={_clean(value)!r})"
        )
    pattern = _INDEX if spec.format == "index" else _LABEL
    if not pattern.fullmatch(value):
        kind = "[0-9]+" if spec.format == "index" else "[a-zA-Z0-9]+"
        raise EntityError(
            f"{key}={value!r} is not a valid BIDS {spec.format}; it must match {kind} "
            f"(try {key}={_clean(value, key)!r})"
        )
    if spec.enum and value not in spec.enum:
        raise EntityError(f"{key}={value!r} is not allowed; choose one of {list(spec.enum)}")
    return value


@dataclass(frozen=True, slots=True)
class BIDSPath:
    """Location of one BIDS file as entities, datatype, suffix and extension.

    Immutable: :meth:`with_` returns a changed copy. Construction validates every
    part, so an invalid path can never exist.
    """

    entities: tuple[tuple[str, str], ...] = ()
    datatype: str | None = None
    suffix: str | None = None
    extension: str | None = None
    root: Path | None = None

    def __post_init__(self) -> None:
        given = dict(self.entities)
        if len(given) != len(self.entities):
            raise EntityError(f"duplicate entity in {self.entities!r}; give each entity once")
        order = entity_order()
        for key, value in given.items():
            check_label(key, value)
        ordered = tuple((k, str(given[k])) for k in order if k in given)
        object.__setattr__(self, "entities", ordered)
        if self.datatype is not None and self.datatype not in datatypes():
            raise EntityError(
                f"datatype {self.datatype!r} is not a BIDS datatype; "
                f"choose one of {sorted(datatypes())}"
            )
        if self.suffix is not None and not _SUFFIX.fullmatch(self.suffix):
            raise EntityError(
                f"suffix {self.suffix!r} must match [a-zA-Z0-9]+ (try {_clean(self.suffix)!r})"
            )
        ext = self.extension
        if ext is not None and (not ext.startswith(".") or "/" in ext or ".." in ext):
            raise EntityError(f"extension {ext!r} must start with '.', e.g. '.nii.gz'")

    @classmethod
    def create(cls, *, root: Path | None = None, datatype: str | None = None,
               suffix: str | None = None, extension: str | None = None,
               **entities: str | int) -> BIDSPath:
        """Build a path from keyword entities, e.g. ``create(sub="01", task="rest")``."""
        pairs = tuple((k, str(v)) for k, v in entities.items() if v is not None)
        return cls(pairs, datatype, suffix, extension, root)

    @property
    def entity_dict(self) -> dict[str, str]:
        """The entities as a dict of short key to label."""
        return dict(self.entities)

    def get(self, key: str) -> str | None:
        """Return the label of entity ``key`` or None."""
        return self.entity_dict.get(key)

    def with_(self, **changes: str | int | Path | None) -> BIDSPath:
        """Return a copy with entities or parts changed; ``None`` removes an entity."""
        parts = {k: changes.pop(k) for k in ("datatype", "suffix", "extension", "root")
                 if k in changes}
        entities = self.entity_dict
        for key, value in changes.items():
            if value is None:
                entities.pop(key, None)
            else:
                entities[key] = str(value)
        return replace(self, entities=tuple(entities.items()), **parts)  # type: ignore[arg-type]

    @property
    def basename(self) -> str:
        """The file name, e.g. ``sub-01_task-rest_eeg.vhdr``."""
        stem = "_".join([f"{k}-{v}" for k, v in self.entities] + [self.suffix or ""])
        return stem.rstrip("_") + (self.extension or "")

    @property
    def directory(self) -> PurePosixPath:
        """The folder relative to the dataset root, e.g. ``sub-01/ses-1/eeg``."""
        parts = [f"{k}-{self.get(k)}" for k in ("sub", "ses") if self.get(k)]
        if self.datatype:
            parts.append(self.datatype)
        return PurePosixPath(*parts) if parts else PurePosixPath(".")

    @property
    def relpath(self) -> str:
        """Path relative to the dataset root, POSIX style."""
        return str(self.directory / self.basename)

    def __fspath__(self) -> str:
        if self.root is None:
            raise EntityError(f"{self.relpath} has no root; use .with_(root=DATASET)")
        return os.fspath(Path(self.root) / self.relpath)

    @classmethod
    def parse(cls, path: str | os.PathLike[str], *, root: Path | None = None,
              on_error: OnError = "raise") -> BIDSPath | None:
        """Parse a path (absolute under ``root``, or relative to the dataset root).

        With ``on_error="ignore"`` a path that is not BIDS gives None instead of an error.
        """
        try:
            rel = _relative(path, root)
            entities, datatype, suffix, extension = split_relpath(rel)
            return cls(tuple(entities.items()), datatype, suffix, extension, root)
        except EntityError:
            if on_error == "ignore":
                return None
            raise


def nibs_sidecar(stem: str) -> str:
    """Where the draft-BEP037 stimulation sidecar of a recording goes: ``nibs/``.

    ``ntdb ingest`` writes it there and ``ntdb validate`` looks for it there.

    >>> nibs_sidecar("sub-01/ses-1/eeg/sub-01_ses-1_task-tep")
    'sub-01/ses-1/nibs/sub-01_ses-1_task-tep_nibs.json'
    """
    folder, _, name = stem.rpartition("/")
    parent = folder.rsplit("/", 1)[0] if folder.endswith(("/eeg", "/nibs")) else folder
    return f"{parent}/nibs/{name}_nibs.json"


def _relative(path: str | os.PathLike[str], root: Path | None) -> str:
    p = Path(path)
    if p.is_absolute():
        if root is None:
            raise EntityError(f"{p} is absolute; pass root=DATASET or a relative path")
        try:
            p = p.relative_to(root)
        except ValueError:
            raise EntityError(f"{p} is outside the dataset root {root}") from None
    rel = p.as_posix()
    if ".." in PurePosixPath(rel).parts:
        raise EntityError(f"{rel!r} would escape the dataset root; remove the '..' parts")
    return rel


def split_relpath(rel: str) -> tuple[dict[str, str], str | None, str, str]:
    """Split a relative BIDS path into (entities, datatype, suffix, extension).

    Pure and fast (used by the catalog on every file). Raises EntityError with a
    suggested fix when the name does not follow BIDS.

    >>> split_relpath("sub-01/eeg/sub-01_task-rest_eeg.vhdr")
    ({'sub': '01', 'task': 'rest'}, 'eeg', 'eeg', '.vhdr')
    """
    folders, _, name = rel.rpartition("/")
    stem, dot, tail = name.partition(".")
    extension = dot + tail
    *pairs, suffix = stem.split("_")
    if not _SUFFIX.fullmatch(suffix):
        raise EntityError(f"{rel}: {suffix!r} is not a BIDS suffix; the name must end "
                          f"in _<suffix><extension>, e.g. sub-01_T1w.nii.gz")
    specs = entity_specs()
    order = _order_index()
    entities: dict[str, str] = {}
    last = -1
    for pair in pairs:
        key, dash, value = pair.partition("-")
        if not dash or key not in specs:
            raise EntityError(f"{rel}: {pair!r} is not a BIDS entity (key-label); "
                              f"known keys are {', '.join(order)}")
        if key in entities:
            raise EntityError(f"{rel}: entity {key!r} appears twice")
        check_label(key, value)
        if order[key] < last:
            fixed = "_".join(f"{k}-{v}" for k, v in sorted(
                {**entities, key: value}.items(), key=lambda kv: order[kv[0]]))
            raise EntityError(f"{rel}: entities are out of order; BIDS order gives "
                              f"{fixed}_{suffix}{extension}")
        last = order[key]
        entities[key] = value
    datatype = None
    if folders:
        parts = folders.split("/")
        if parts[-1] in datatypes():
            datatype = parts[-1]
        for part in parts:
            key, dash, value = part.partition("-")
            if key in ("sub", "ses") and dash and entities.get(key) != value:
                what = "lacks" if key not in entities else "does not match the folder:"
                raise EntityError(f"{rel}: the file name {what} {key}-{value}; BIDS names "
                                  f"repeat their folders' labels, e.g. {part}_..._<suffix>")
    return entities, datatype, suffix, extension


@cache
def _order_index() -> dict[str, int]:
    return {k: i for i, k in enumerate(entity_order())}
