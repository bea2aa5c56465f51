"""What identifiers look like: patterns, the steward's known identifiers, masking."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from neurotwin_db.errors import InputError

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Phone numbers: a +country code or an (area code) or dashes between digit groups, and
# at least 8 digits (plain space-separated numbers are tables, not phone numbers).
PHONE = re.compile(r"(?<![\w.+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}"
                   r"(?:[ .-]\d{2,4}){1,4}|\(\d{2,5}\)[ .-]?\d{2,4}(?:[ .-]\d{2,5}){1,3}"
                   r"|\d{2,5}-\d{3,4}-?\d{3,5})(?![\w.])")
ADDRESS = re.compile(r"\b\d{1,5}[a-z]?,? (?:[A-Z][\w.-]+ ){0,3}"
                     r"(?:Street|St\.|Road|Rd\.|Avenue|Ave\.|Lane|Drive|Boulevard|Blvd|Way|Court|Square|Place)\b"
                     r"|\b[A-Z][\w-]*(?:stra(?:ss|ß)e|weg|gasse|platz|allee|ring) \d{1,4}[a-z]?\b"
                     r"|\b[A-Z][\w-]* (?:Stra(?:ss|ß)e|Weg|Gasse|Platz|Allee) \d{1,4}[a-z]?\b")
SERIAL = re.compile(r"\b(?:S/?N|Serial(?: ?(?:No\.?|Number))?)[:#]? ?[A-Z0-9][A-Z0-9-]{3,}",
                    re.IGNORECASE)
ISO_DATE = re.compile(r"(?<!\d)(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?!\d)")
COMPACT_DATE = re.compile(r"(?<![\d.])(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
DICOM_NAME = re.compile(r"^[^\^=\d]{2,}\^[^\^=\d]+(\^[^=]*)?$")  # LAST^FIRST[^MIDDLE...]
PERSON_NAME = re.compile(r"^(?:Dr\.? |Prof\.? |Mr\.? |Mrs\.? |Ms\.? )?[A-Z][a-z'-]{1,20}"
                         r"(?: [A-Z]\.)? [A-Z][a-z'-]{1,25}$")
ORCID = re.compile(r"(?<![\d-])\d{4}-\d{4}-\d{4}-\d{3}[\dX](?![\d-])")
PSEUDONYM = re.compile(r"^p[0-9a-f]{9}$")  # what neurotwin_db.curation.anonymize writes
_SEPARATORS = re.compile(r"[\s^,;_./\\|:()\[\]{}\"'-]+")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def mask(value: str) -> str:
    """Hide a matched value: keep the first character of each word, star the rest."""
    words = re.split(r"(\W+)", str(value)[:80])
    return "".join(w if not w or not w[0].isalnum() else w[0] + "*" * (len(w) - 1)
                   for w in words)


def normalise(text: str) -> str:
    """Casefold, strip accents and turn every separator (``^ , _ -`` ...) into one space."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text.casefold()).strip()


def date_spellings(day: date) -> set[str]:
    """The ways a date is written in headers, sidecars and file names."""
    month = _MONTHS[day.month - 1]
    return {day.isoformat(), day.strftime("%Y%m%d"), day.strftime("%d.%m.%Y"),
            day.strftime("%d.%m.%y"), f"{day.day:02d}-{month}-{day.year}",
            day.strftime("%d/%m/%Y"), day.strftime("%m/%d/%Y")}


def looks_like_date(text: str) -> str | None:
    """The first absolute date (ISO or DICOM yyyymmdd) in ``text``, if any."""
    found = ISO_DATE.search(text) or COMPACT_DATE.search(text)
    return found.group(0) if found else None


@dataclass(frozen=True)
class Hit:
    """One identifier found in a value."""

    kind: str     # "known identifier", "e-mail address", ...
    matched: str  # the part of the value that matched (mask before showing it)
    exact: bool = True


@dataclass
class Identifiers:
    """The steward's list of known identifiers (names, IDs, dates), matched exact and fuzzy.

    >>> ids = Identifiers.from_lines(["Johanna Testperson", "MRN0012345"])
    >>> ids.find("TESTPERSON^JOHANNA").exact, ids.find("Frau Testpersen").exact
    (True, False)
    >>> ids.find("id mrn0012345") is not None, ids.find("Anna Test") is None
    (True, True)
    """

    entries: list[str] = field(default_factory=list)
    fuzzy_threshold: float = 85.0

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> Identifiers:
        """Build from text lines; blank lines and ``#`` comments are skipped."""
        entries = [line.strip() for line in lines]
        return cls([e for e in entries if e and not e.startswith("#")])

    @classmethod
    def from_file(cls, path: Path) -> Identifiers:
        """Read one identifier per line from ``path``."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the identifiers file {path}: {exc}; give a UTF-8 "
                             "text file with one name or ID per line") from None
        return cls.from_lines(text.splitlines())

    @cached_property
    def _variants(self) -> list[tuple[str, frozenset[str], str]]:
        """(normalised spelling, its tokens, compact spelling) for every entry and date form."""
        out = []
        for entry in self.entries:
            spellings = {entry}
            try:
                spellings |= date_spellings(date.fromisoformat(entry))
            except ValueError:
                pass
            for spelling in spellings:
                norm = normalise(spelling)
                if norm:
                    out.append((norm, frozenset(norm.split()), norm.replace(" ", "")))
        return out

    def __bool__(self) -> bool:
        return bool(self.entries)

    def find(self, value: str) -> Hit | None:
        """Whether ``value`` holds a known identifier (any order of its words, or fuzzy)."""
        if not self.entries or not value:
            return None
        norm = normalise(value)
        if not norm:
            return None
        tokens = set(norm.split())
        compact = norm.replace(" ", "")
        for spelled, words, squeezed in self._variants:
            if spelled in norm or words <= tokens or (len(squeezed) >= 6 and squeezed in compact):
                return Hit("known identifier", value)
        return self._fuzzy(norm, tokens)

    def _fuzzy(self, norm: str, tokens: set[str]) -> Hit | None:
        """A word of an identifier (4+ letters) equal to, or a near miss of, a word here."""
        from rapidfuzz import fuzz

        for _, words, _ in self._variants:
            for word in words:
                if len(word) < 4:
                    continue
                for token in tokens:
                    if token == word or (len(word) >= 5 and abs(len(token) - len(word)) <= 2
                                         and fuzz.ratio(word, token) >= self.fuzzy_threshold):
                        return Hit("known identifier (part or near miss)", token, exact=False)
        return None


def free_text_hits(value: str) -> list[Hit]:
    """E-mail and postal addresses, phone and serial numbers, and LAST^FIRST names in text."""
    hits = [Hit("e-mail address", m.group(0)) for m in EMAIL.finditer(value)]
    orcids = [m.span() for m in ORCID.finditer(value)]  # public researcher iDs, not phones
    for m in PHONE.finditer(value):
        digits = re.sub(r"\D", "", m.group(0))
        inside_orcid = any(a <= m.start() and m.end() <= b for a, b in orcids)
        if len(digits) >= 8 and not ISO_DATE.fullmatch(m.group(0).strip()) \
                and not inside_orcid:
            hits.append(Hit("phone number", m.group(0)))
    hits += [Hit("postal address", m.group(0)) for m in ADDRESS.finditer(value)]
    hits += [Hit("serial number", m.group(0)) for m in SERIAL.finditer(value)]
    if DICOM_NAME.match(value.strip()):
        hits.append(Hit("person name (LAST^FIRST)", value))
    return hits
