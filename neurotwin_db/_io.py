"""The only place that writes files: atomic writes (temporary file, then rename)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from neurotwin_db.errors import OutputExistsError


def write_text(path: Path, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically; refuse to replace unless ``overwrite``."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` (mode 0644).

    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse to replace unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
    return path


def copy_file(source: Path, path: Path) -> Path:
    """Copy ``source`` to ``path`` atomically (replacing it)."""
    with atomic_target(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)


def write_json(path: Path, payload: Mapping[str, object] | Sequence[object], *,
               overwrite: bool = False) -> Path:
    """Write ``payload`` as indented UTF-8 JSON, atomically."""
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    return write_text(path, text, overwrite=overwrite)


def write_tsv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]], *,
              overwrite: bool = False) -> Path:
    """Write a BIDS TSV file (``n/a`` for missing values), atomically."""
    lines = ["\t".join(header)]
    lines += ["\t".join("n/a" if v is None or v == "" else str(v) for v in row) for row in rows]
    return write_text(path, "\n".join(lines) + "\n", overwrite=overwrite)


def write_nifti(path: Path, image: object, *, overwrite: bool = False) -> Path:
    """Write a nibabel NIfTI image atomically; ``.nii.gz`` is gzipped with no timestamp."""
    import gzip

    data = image.to_bytes()  # type: ignore[attr-defined]
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return write_bytes(path, data, overwrite=overwrite)
