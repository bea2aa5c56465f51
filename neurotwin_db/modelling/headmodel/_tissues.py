"""Tissue tags and default conductivities, in SimNIBS's conventions.

Tags: 1 WM, 2 GM, 3 CSF, 4 bone, 5 scalp, 6 eyes, 7 compact bone, 8 spongy bone,
9 blood, 10 muscle; a surface between tissues carries the tag of the tissue inside
plus 1000. Conductivities (S/m) are SimNIBS's defaults (Saturnino et al. 2019,
doi:10.1016/j.neuroimage.2019.116183; Thielscher et al. 2015,
doi:10.1109/EMBC.2015.7318340). The five-compartment template head uses "bone"
(tag 4) with the generic skull value.
"""

from __future__ import annotations

from collections.abc import Mapping

TISSUE_NAMES: Mapping[int, str] = {
    1: "WM", 2: "GM", 3: "CSF", 4: "bone", 5: "scalp", 6: "eyes",
    7: "compact_bone", 8: "spongy_bone", 9: "blood", 10: "muscle",
}
TISSUE_TAGS: Mapping[str, int] = {name: tag for tag, name in TISSUE_NAMES.items()}
DEFAULT_CONDUCTIVITY: Mapping[int, float] = {
    1: 0.126, 2: 0.275, 3: 1.654, 4: 0.010, 5: 0.465, 6: 0.5,
    7: 0.008, 8: 0.025, 9: 0.6, 10: 0.16,
}
SURFACE_OFFSET = 1000


def tissue_tag(name_or_tag: str | int) -> int:
    """The SimNIBS tag of a tissue given by name (``"GM"``) or tag (``2``).

    >>> tissue_tag("gm"), tissue_tag(5), tissue_tag("bone")
    (2, 5, 4)
    """
    from neurotwin_db.errors import InputError

    if isinstance(name_or_tag, int) or str(name_or_tag).isdigit():
        tag = int(name_or_tag)
        if tag in TISSUE_NAMES:
            return tag
    else:
        for name, tag in TISSUE_TAGS.items():
            if name.lower() == str(name_or_tag).lower():
                return tag
    known = ", ".join(f"{t} {n}" for t, n in TISSUE_NAMES.items())
    raise InputError(f"unknown tissue {name_or_tag!r}; use one of the SimNIBS tissues: {known}")


def conductivities(overrides: Mapping[str | int, float] | None = None) -> dict[int, float]:
    """SimNIBS default conductivities by tag, with ``overrides`` (by name or tag) applied.

    >>> conductivities({"GM": 0.3})[2]
    0.3
    """
    from neurotwin_db.errors import InputError

    values = dict(DEFAULT_CONDUCTIVITY)
    for key, value in (overrides or {}).items():
        if not float(value) > 0:
            raise InputError(f"conductivity of {key!r} must be a positive number of S/m, "
                             f"got {value!r}")
        values[tissue_tag(key)] = float(value)
    return values
