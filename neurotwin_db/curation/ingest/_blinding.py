"""The unblinding key: condition codes that live outside every dataset (mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from neurotwin_db._io import write_json
from neurotwin_db.errors import InputError


def blinding_code(key_file: Path, *, dataset: str, subject: str, session: str | None,
                  condition: str, new_key: bool = False, write: bool = True) -> str:
    """The code that stands for ``condition`` in the dataset; the mapping stays in the key.

    The same (dataset, subject, session) always gets the same code, so a re-run changes
    nothing. A missing key file is created only with ``new_key``.
    """
    key_file = Path(key_file)
    codes: dict[str, dict[str, str | None]] = {}
    if key_file.exists():
        try:
            codes = json.loads(key_file.read_text(encoding="utf-8"))["codes"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"unblinding key {key_file} cannot be read ({exc}); restore it "
                             f"from your backup") from None
    elif not new_key:
        raise InputError(f"unblinding key {key_file} does not exist; pass --new-key to create "
                         f"it (keep it outside every dataset, and back it up)")
    wanted = {"dataset": dataset, "subject": subject, "session": session}
    for code, entry in codes.items():
        if {k: entry.get(k) for k in wanted} == wanted:
            if entry.get("condition") != condition:
                raise InputError(f"unblinding key {key_file} already records sub-{subject} "
                                 f"session {session} as another condition; a session's "
                                 f"condition cannot change")
            return code
    code = secrets.token_hex(8)
    if write:
        codes[code] = {**wanted, "condition": condition}
        write_json(key_file, {"format": 1, "codes": codes}, overwrite=True)
        os.chmod(key_file, 0o600)
    return code
