"""List a dataset's files from its git tree and annex keys, never from file contents.

A clone whose annexed content is not present lists exactly like the origin: sizes come
from the annex keys, and ``present`` only checks whether the annex object exists.
Plain folders (no git) are listed from the file system instead.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from neurotwin_db.errors import DataladError

_KEY_SIZE = re.compile(r"-s(\d+)")
_ANNEX_OBJECTS = "annex/objects/"


@dataclass(slots=True)
class Entry:
    """One file of a dataset."""

    path: str  # POSIX path relative to the dataset root
    size: int | None
    annexed: bool
    present: bool
    repo: Path  # the git repository (or plain folder) holding the file
    oid: str | None = None  # git blob id, None in plain folders
    relrepo: str = ""  # path of the file relative to ``repo``


@dataclass(slots=True)
class Subdataset:
    """A gitlink (subdataset) found in a tree."""

    path: str
    commit: str
    installed: bool


def is_git_repo(root: Path) -> bool:
    """Whether ``root`` is the top of a git work tree."""
    return (root / ".git").exists()


def scan_tree(root: Path, commit: str = "HEAD", *, prefix: str = ""
              ) -> tuple[list[Entry], list[Subdataset]]:
    """List the files of the git tree at ``commit`` (hidden paths are skipped)."""
    out = _git(root, "ls-tree", "-r", "-z", "--full-tree", "-l", commit)
    entries: list[Entry] = []
    links: list[tuple[int, str]] = []
    subdatasets: list[Subdataset] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        rel = raw_path.decode("utf-8", errors="surrogateescape")
        if rel.startswith(".") or "/." in rel:
            continue
        mode, kind, oid, size = meta.split()
        if kind == b"commit":
            installed = (root / rel / ".git").exists()
            subdatasets.append(Subdataset(prefix + rel, oid.decode(), installed))
            continue
        entry = Entry(prefix + rel, int(size), False, True, root, oid.decode(), rel)
        if mode == b"120000":
            links.append((len(entries), oid.decode()))
        entries.append(entry)
    targets = read_blobs(root, [oid for _, oid in links])
    for index, oid in links:
        target = targets[oid].decode("utf-8", errors="replace")
        if _ANNEX_OBJECTS in target:
            entry = entries[index]
            key = target.rsplit("/", 1)[-1]
            match = _KEY_SIZE.search(key)
            entry.size = int(match.group(1)) if match else None
            entry.annexed = True
            entry.present = os.path.exists(root / entry.relrepo)
    return entries, subdatasets


def scan_folder(root: Path) -> list[Entry]:
    """List the files of a plain folder (hidden files and folders are skipped)."""
    entries: list[Entry] = []
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        with os.scandir(folder) as it:
            for item in it:
                if item.name.startswith("."):
                    continue
                path = f"{rel}{item.name}"
                if item.is_dir(follow_symlinks=False):
                    stack.append((Path(item.path), path + "/"))
                else:
                    try:
                        size: int | None = item.stat().st_size  # follows symlinks
                    except FileNotFoundError:  # a dangling symlink
                        size = None
                    entries.append(Entry(path, size, False, size is not None, root, None, path))
    return entries


def read_blobs(root: Path, oids: Iterable[str]) -> dict[str, bytes]:
    """Read git blobs by object id in one ``git cat-file --batch`` call."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    data = _git(root, "cat-file", "--batch", stdin="\n".join(wanted) + "\n")
    blobs: dict[str, bytes] = {}
    pos = 0
    for oid in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        if len(header) < 3:  # "<oid> missing"
            raise DataladError(f"git object {oid} is missing in {root}; run `git fsck`")
        size = int(header[2])
        blobs[oid] = data[end + 1:end + 1 + size]
        pos = end + 1 + size + 1
    return blobs


def _git(root: Path, *args: str, stdin: str | None = None) -> bytes:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                          input=None if stdin is None else stdin.encode())
    if proc.returncode:
        raise DataladError(f"git {args[0]} failed in {root}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
