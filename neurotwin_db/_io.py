"""The only place that writes files: atomic writes (temporary file, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from neurotwin_db.errors import OutputExistsError


def write_text(path: Path, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically; refuse to replace unless ``overwrite``."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_bytes(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse to replace unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
