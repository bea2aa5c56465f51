"""What a deposit uploads: the shareable files of the recorded version, packed as zip archives.

One archive per subject plus ``top-level.zip`` for everything else keeps a record
under Zenodo's limits (100 files, 50 GB). Archives are deterministic (sorted entries,
fixed timestamps and modes), so an interrupted deposit rebuilds byte-identical files
and resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from neurotwin_db import datalad as dl
from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError

MAX_FILES = 100
MAX_BYTES = 50 * 10**9
TOP_LEVEL = "top-level.zip"
# never deposited: raw sources, DataLad/git internals, the database's own folder
EXCLUDED_FOLDERS = ("sourcedata", ".datalad", ".ntdb", ".git")
_STORED = (".gz", ".zip", ".bz2", ".xz", ".zst", ".png", ".jpg", ".jpeg", ".mp4", ".7z")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_ANNEX_KEY_SIZE = re.compile(r"-s(\d+)--")


@dataclass(frozen=True, slots=True)
class TrackedFile:
    """One file of the recorded version: its path and git object (a content address)."""

    path: str
    object: str
    size: int


@dataclass(frozen=True, slots=True)
class Archive:
    """One archive of the deposit and the files it holds."""

    name: str
    files: tuple[TrackedFile, ...]

    @property
    def size(self) -> int:
        """Uncompressed bytes."""
        return sum(f.size for f in self.files)

    def fingerprint(self, overrides: Mapping[str, bytes]) -> str:
        """A digest of the content: paths and git objects (and replaced file contents)."""
        digest = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.path):
            extra = overrides.get(f.path)
            marker = hashlib.sha256(extra).hexdigest() if extra is not None else f.object
            digest.update(f"{f.path}\0{marker}\n".encode())
        return digest.hexdigest()


def is_shareable(path: str) -> bool:
    """Whether a tracked file belongs in a deposit.

    >>> [is_shareable(p) for p in ("sub-01/eeg/a.edf", "sourcedata/x.dcm", ".ntdb/k.json",
    ...                             "sub-01/.gitattributes", ".bidsignore")]
    [True, False, False, False, True]
    """
    parts = path.split("/")
    if parts[0] in EXCLUDED_FOLDERS:
        return False
    return not any(part.startswith(".git") for part in parts)


def list_shareable(root: Path) -> list[TrackedFile]:
    """The shareable files tracked at HEAD (subdatasets, i.e. gitlinks, are left out)."""
    out = dl.git(root, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    files = []
    for entry in out.decode("utf-8", errors="surrogateescape").split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, obj = meta.split()
        if kind != "blob" or not is_shareable(path):
            continue  # "commit" entries are subdatasets: private datasets stay out
        files.append(TrackedFile(path, obj, _size(root, path, mode)))
    return files


def _size(root: Path, path: str, mode: str) -> int:
    """The file's size; for annexed content not present here, the size its key records."""
    target = root / path
    if mode == "120000" and not target.exists():  # a symlink to absent annexed content
        match = _ANNEX_KEY_SIZE.search(os.readlink(target))
        return int(match.group(1)) if match else 0
    size = target.stat().st_size if target.exists() else 0
    if 0 < size < 1024:  # maybe an unlocked annexed file's pointer
        head = target.read_bytes()
        match = _ANNEX_KEY_SIZE.search(head.decode(errors="replace"))
        if head.startswith(b"/annex/objects/") and match:
            return int(match.group(1))
    return size


def check_content(root: Path, files: Iterable[TrackedFile]) -> None:
    """Raise a clear error when annexed content of ``files`` is not present locally."""
    wanted = {f.path for f in files}
    missing = [p for p in dl.missing_content(root) if p in wanted]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"the content of {len(missing)} annexed file(s) of {root} is not here "
                         f"({', '.join(missing[:3])}{more}); fetch it with `datalad get -d "
                         f"{root} .` and retry")


def plan_archives(files: Iterable[TrackedFile], *, max_files: int = MAX_FILES,
                  max_bytes: int = MAX_BYTES) -> list[Archive]:
    """Group files into archives: one per subject (or per run of subjects), one top-level.

    >>> fs = [TrackedFile(p, "x", 1) for p in ("README", "sub-1/eeg/a", "sub-2/eeg/b")]
    >>> [(a.name, len(a.files)) for a in plan_archives(fs)]
    [('top-level.zip', 1), ('sub-1.zip', 1), ('sub-2.zip', 1)]
    >>> [a.name for a in plan_archives(fs, max_files=2)]
    ['top-level.zip', 'sub-1--sub-2.zip']
    """
    subjects: dict[str, list[TrackedFile]] = {}
    top: list[TrackedFile] = []
    for f in files:
        head, _, rest = f.path.partition("/")
        if head.startswith("sub-") and rest:
            subjects.setdefault(head, []).append(f)
        else:
            top.append(f)
    slots = max(1, max_files - (1 if top else 0))
    names = sorted(subjects)
    per = math.ceil(len(names) / slots) if names else 1
    archives = [Archive(TOP_LEVEL, tuple(top))] if top else []
    for start in range(0, len(names), per):
        group = names[start:start + per]
        name = f"{group[0]}.zip" if len(group) == 1 else f"{group[0]}--{group[-1]}.zip"
        archives.append(Archive(name, tuple(f for s in group for f in subjects[s])))
    total = sum(a.size for a in archives)
    if total > max_bytes:
        raise InputError(f"the dataset holds {total / 1e9:.1f} GB, over the {max_bytes / 1e9:.0f}"
                         f" GB a Zenodo record takes; split it into several datasets or ask "
                         f"Zenodo support for a larger quota")
    return archives


def write_archive(root: Path, archive: Archive, target: Path,
                  overrides: Mapping[str, bytes]) -> tuple[str, int]:
    """Write ``archive`` to ``target`` (a zip; deterministic); return its md5 and size.

    ``overrides`` replaces the content of some files (e.g. dataset_description.json
    with the DOI the record will have).
    """
    with atomic_target(target) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for f in sorted(archive.files, key=lambda f: f.path):
                info = zipfile.ZipInfo(f.path, date_time=_FIXED_TIME)
                info.create_system = 3
                info.external_attr = 0o100644 << 16
                stored = f.path.lower().endswith(_STORED)
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                if f.path in overrides:
                    zf.writestr(info, overrides[f.path])
                    continue
                with open(root / f.path, "rb") as src, \
                        zf.open(info, "w", force_zip64=f.size >= zipfile.ZIP64_LIMIT) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    return md5_file(target), target.stat().st_size


def md5_file(path: Path) -> str:
    """The md5 hex digest of a file (what Zenodo reports as ``md5:...``)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
