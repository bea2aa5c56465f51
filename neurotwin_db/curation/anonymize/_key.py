"""The pseudonym key: keyed HMAC pseudonyms, per-subject date shifts and UID remapping.

The key is 32 random bytes (hex) in a file with mode 0600 that lives outside every
dataset. The same key gives the same pseudonym, date offset and UIDs across datasets
and re-runs, so a subject keeps one pseudonym everywhere. The mapping from real label
to pseudonym is appended to ``<key file>.mapping.tsv`` (mode 0600) next to the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from neurotwin_db.errors import InputError

KEY_BYTES = 32
PSEUDONYM_LENGTH = 10
# Dates move back by 10 to 20 years: intervals are kept, and the shifted dates stay
# inside what every format can hold (EDF headers cannot store years before 1985).
SHIFT_DAYS = (3650, 7300)


@dataclass(frozen=True)
class PseudonymKey:
    """A loaded key. Never print or log ``secret``."""

    path: Path
    secret: bytes

    def __repr__(self) -> str:
        return f"PseudonymKey(path={str(self.path)!r})"

    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self.secret, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()

    def pseudonym(self, label: str) -> str:
        """The BIDS label (lowercase letters and digits) that replaces subject ``label``."""
        digest = self._digest("subject", label).hex()
        return "p" + digest[: PSEUDONYM_LENGTH - 1]

    def date_offset(self, label: str) -> timedelta:
        """The secret shift (whole days, negative) for every date of subject ``label``."""
        low, high = SHIFT_DAYS
        n = int.from_bytes(self._digest("dateshift", label)[:8], "big")
        return -timedelta(days=low + n % (high - low + 1))

    def uid(self, uid: str, root: str = "2.25.") -> str:
        """A new DICOM UID for ``uid``: the same input always maps to the same output."""
        number = int.from_bytes(self._digest("uid", uid)[:16], "big")
        return f"{root}{number}"[:64]

    def record(self, label: str, dataset: str = "") -> str:
        """Append ``label -> pseudonym`` to the mapping file (0600) and return the pseudonym."""
        pseudo = self.pseudonym(label)
        mapping = mapping_path(self.path)
        line = f"{label}\t{pseudo}\t{dataset}\n"
        existing = mapping.read_text(encoding="utf-8") if mapping.is_file() else ""
        if line not in existing:
            fd = os.open(mapping, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                if not existing:
                    handle.write("label\tpseudonym\tdataset\n")
                handle.write(line)
        return pseudo


def mapping_path(key_path: Path) -> Path:
    """Where the label -> pseudonym table of a key lives."""
    return key_path.with_name(key_path.name + ".mapping.tsv")


def default_key_path() -> Path:
    """``$NTDB_KEY_FILE``, else ``~/.config/neurotwin-db/pseudonym.key``."""
    env = os.environ.get("NTDB_KEY_FILE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "neurotwin-db" / "pseudonym.key"


def _inside_dataset(path: Path) -> Path | None:
    """The DataLad dataset, or git repository that would track it, holding ``path``."""
    import subprocess

    for parent in path.resolve().parents:
        if (parent / ".datalad").is_dir():
            return parent
        if (parent / ".git").exists():
            ignored = subprocess.run(["git", "-C", str(parent), "check-ignore", "-q",
                                      str(path.resolve())], capture_output=True)
            return None if ignored.returncode == 0 else parent
    return None


def check_key_location(path: Path) -> None:
    """Refuse a key path inside a DataLad dataset, or a git repository that would track it."""
    holder = _inside_dataset(path)
    if holder is not None:
        raise InputError(f"key file {path} is inside the dataset or repository {holder}, "
                         "which could share it; keys must live outside every dataset (use "
                         "a path such as ~/.config/neurotwin-db/pseudonym.key)")


def load_key(path: Path | None = None, *, new: bool = False) -> PseudonymKey:
    """Read the key at ``path``; create it (mode 0600) only when ``new`` is set."""
    path = Path(path).expanduser() if path else default_key_path()
    check_key_location(path)
    if not path.exists():
        if not new:
            raise InputError(f"key file {path} does not exist; pass --new-key to create "
                             "one, or --key-file to point at the existing key")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    try:
        text = path.read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a hex key"
        raise InputError(f"cannot read key file {path}: {reason}; check its permissions, "
                         "or create a new key with --new-key at another path") from None
    if len(secret) < 16:
        raise InputError(f"key file {path} holds {len(secret)} bytes; a key needs at least "
                         "16 (create one with --new-key)")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return PseudonymKey(path=path, secret=secret)
