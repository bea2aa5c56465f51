"""Well-formed identifiers a deposit needs: ORCID iDs and license names (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Iterator

_ORCID = re.compile(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]")
_ORCID_URL = re.compile(r"^(?:https?://)?(?:www\.)?orcid\.org/", re.I)
# "ORCID 0000-...", "orcid: ...", "orcid.org/..." and bare iDs inside an author string
_ORCID_MENTION = re.compile(r"orcid(?:\.org/|\s*(?:id|iD)?\s*[:=]?\s*)([0-9][0-9Xx-]*)", re.I)
_BARE_ORCID = re.compile(r"(?<![\w-])\d{4}-\d{4}-\d{4}-\d{3}[\dXx](?![\w-])")
# License values the BIDS specification lists that are not SPDX identifiers
BIDS_LICENSES = frozenset({"PD", "PDDL", "CC0"})


def orcid_problem(orcid: str) -> str | None:
    """What is wrong with an ORCID iD (a URL form is fine), or None if it is well formed.

    The last character is an ISO 7064 MOD 11-2 check digit over the other fifteen.

    >>> orcid_problem("https://orcid.org/0000-0002-1825-0097") is None
    True
    >>> orcid_problem("0000-0002-1825-0098")
    'its check digit should be 7, not 8'
    >>> orcid_problem("0000-0002-1825")
    'it is not of the form 0000-0000-0000-000X'
    """
    value = _ORCID_URL.sub("", orcid.strip()).upper()
    if not _ORCID.fullmatch(value):
        return "it is not of the form 0000-0000-0000-000X"
    digits = value.replace("-", "")
    total = 0
    for digit in digits[:-1]:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    expected = "X" if result == 10 else str(result)
    if digits[-1] != expected:
        return f"its check digit should be {expected}, not {digits[-1]}"
    return None


def orcids_in(text: str) -> Iterator[str]:
    """The ORCID iDs an author string gives ("Ada Lovelace, ORCID 0000-...").

    >>> list(orcids_in("A. B. (https://orcid.org/0000-0002-1825-0097)"))
    ['0000-0002-1825-0097']
    >>> list(orcids_in("C. D., orcid: 0000-0002-1825"))
    ['0000-0002-1825']
    """
    seen = set()
    for match in [*_ORCID_MENTION.finditer(text), *_BARE_ORCID.finditer(text)]:
        value = match[1] if match.re is _ORCID_MENTION else match[0]
        value = value.rstrip("-")
        if value.upper() not in seen:
            seen.add(value.upper())
            yield value


def license_problem(value: str) -> str | None:
    """What is wrong with a ``License`` value, or None when a deposit can publish under it.

    The accepted licenses are the open ones ``ntdb deposit`` knows (its vocabulary), so
    that a dataset ``validate`` passes is never refused by the deposit for its License.

    >>> license_problem("CC-BY-4.0") is None, license_problem("CC0") is None
    (True, True)
    >>> license_problem("free for all")
    'not an SPDX license identifier or expression'
    >>> license_problem("MIT")
    'not one of the open data licenses a deposit accepts (CC0-1.0, CC-BY-4.0, ...)'
    """
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    from neurotwin_db.curation.deposit._vocab import LICENSES, spdx_license

    if spdx_license(value) is not None:
        return None
    if value.strip() not in BIDS_LICENSES:
        try:
            canonicalize_license_expression(value)
        except InvalidLicenseExpression:
            return "not an SPDX license identifier or expression"
    return (f"not one of the open data licenses a deposit accepts "
            f"({', '.join(list(LICENSES)[:2])}, ...)")
