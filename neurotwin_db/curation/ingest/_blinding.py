"""The unblinding key: condition codes that live outside every dataset (mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from neurotwin_db._io import write_json
from neurotwin_db.errors import InputError

Codes = dict[str, dict[str, str | None]]


def read_key(key_file: Path, *, new_key: bool = False) -> Codes:
    """The codes in ``key_file``; a missing file is an error unless ``new_key``."""
    key_file = Path(key_file)
    if not key_file.exists():
        if new_key:
            return {}
        raise InputError(f"unblinding key {key_file} does not exist; pass --new-key to create "
                         f"it (keep it outside every dataset, and back it up)")
    try:
        return dict(json.loads(key_file.read_text(encoding="utf-8"))["codes"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"unblinding key {key_file} cannot be read ({exc}); restore it "
                         f"from your backup") from None


def find_code(codes: Codes, *, dataset: str, subject: str, session: str | None,
              condition: str) -> tuple[str, bool]:
    """The code of this session (reused on re-runs) and whether it is new."""
    wanted = {"dataset": dataset, "subject": subject, "session": session}
    for code, entry in codes.items():
        if {k: entry.get(k) for k in wanted} == wanted:
            if entry.get("condition") != condition:
                raise InputError(f"the unblinding key already records sub-{subject} session "
                                 f"{session} as another condition; a session's condition "
                                 f"cannot change")
            return code, False
    return secrets.token_hex(8), True


def save_code(key_file: Path, codes: Codes, code: str, *, dataset: str, subject: str,
              session: str | None, condition: str) -> None:
    """Add one code to the key file (written atomically, mode 0600)."""
    codes = {**codes, code: {"dataset": dataset, "subject": subject, "session": session,
                             "condition": condition}}
    write_json(Path(key_file), {"format": 1, "codes": codes}, overwrite=True)
    os.chmod(key_file, 0o600)
