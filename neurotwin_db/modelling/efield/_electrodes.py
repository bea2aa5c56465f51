"""Electrodes on the scalp: montage strings, cap positions, shapes and their scalp nodes.

Positions are in the mesh's millimetres. Cap positions come from MNE's montages:
``fsaverage_10xx`` on the fsaverage template head (the positions MNE fitted to that very
scalp), and the directions of ``spherical_10xx`` cast from the head's centre onto the
scalp of any other head (a sphere, or a subject head without measured positions: pass
``--electrode-positions`` for those).
"""

from __future__ import annotations

import csv
import difflib
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.headmodel import HeadMesh, outer_triangles

OFF_SCALP_MM = 10.0  # an explicit position farther than this from the scalp is refused
CAPS = ("standard_1020", "standard_1010", "standard_1005")


@dataclass(frozen=True, slots=True)
class Shape:
    """Electrode shape: ``point``, ``disc`` (radius mm) or ``rect`` (width x height mm)."""

    kind: str
    size_mm: tuple[float, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Shape:
        """Parse ``point``, ``disc:10mm`` (radius) or ``rect:50x50mm``.

        >>> Shape.parse("rect:50x35mm"), Shape.parse("disc:10mm").size_mm
        (Shape(kind='rect', size_mm=(50.0, 35.0)), (10.0,))
        """
        value = text.strip().lower()
        if value == "point":
            return cls("point")
        match = re.fullmatch(r"(disc|rect):(\d+(?:\.\d+)?)(?:x(\d+(?:\.\d+)?))?(?:mm)?", value)
        if match and (match[1] == "disc") == (match[3] is None) and float(match[2]) > 0:
            sizes = tuple(float(v) for v in match.groups()[1:] if v is not None)
            if all(s > 0 for s in sizes):
                return cls(match[1], sizes)
        raise InputError(f"electrode shape {text!r} is not understood; use 'point', "
                         f"'disc:RADIUSmm' (e.g. disc:10mm) or 'rect:WIDTHxHEIGHTmm' "
                         f"(e.g. rect:50x50mm)")

    def describe(self) -> dict[str, object]:
        """The shape as sidecar metadata."""
        if self.kind == "disc":
            return {"Shape": "disc", "RadiusMm": self.size_mm[0]}
        if self.kind == "rect":
            return {"Shape": "rectangle", "WidthMm": self.size_mm[0],
                    "HeightMm": self.size_mm[1]}
        return {"Shape": "point"}


def parse_montage(text: str) -> list[tuple[str, float]]:
    """``"F3:2.0,Fp2:-2.0"`` → ``[("F3", 2.0), ("Fp2", -2.0)]`` (mA); currents sum to zero.

    >>> parse_montage("F3:1, Fp2:-0.5, Cz:-0.5")
    [('F3', 1.0), ('Fp2', -0.5), ('Cz', -0.5)]
    """
    pairs: list[tuple[str, float]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, current = part.partition(":")
        try:
            pairs.append((name.strip(), float(current.removesuffix("mA"))))
        except ValueError:
            raise InputError(f"montage entry {part!r} must be NAME:CURRENT_mA, e.g. "
                             f"'F3:2.0,Fp2:-2.0'") from None
    names = [n for n, _ in pairs]
    if len(pairs) < 2 or len(set(names)) != len(names) or not all(names):
        raise InputError(f"montage {text!r} needs at least two distinct electrodes, e.g. "
                         f"'F3:2.0,Fp2:-2.0'")
    total = sum(c for _, c in pairs)
    if abs(total) > 1e-9 * max(abs(c) for _, c in pairs):
        listed = ", ".join(f"{n} {c:+g} mA" for n, c in pairs)
        raise InputError(f"montage currents must sum to zero (what goes in comes out), but "
                         f"{listed} sum to {total:+g} mA; change one of them by {-total:+g} mA")
    if all(c == 0 for _, c in pairs):
        raise InputError(f"montage {text!r} has no current; give currents in mA")
    return pairs


def cap_positions(cap: str, *, template: bool) -> dict[str, np.ndarray]:
    """Positions (template, mm) or unit directions (any head) of a 10-20/10-10/10-05 cap."""
    import mne

    if cap not in CAPS:
        raise InputError(f"unknown cap {cap!r}; use one of {', '.join(CAPS)}")
    name = cap.replace("standard", "fsaverage" if template else "spherical")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        positions = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    if template:
        return {ch: np.asarray(xyz) * 1000.0 for ch, xyz in positions.items()}
    return {ch: np.asarray(xyz) / np.linalg.norm(xyz) for ch, xyz in positions.items()}


def read_positions(path: Path) -> dict[str, np.ndarray]:
    """Electrode positions (mm, mesh space) from a TSV/CSV with columns name, x, y, z."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read electrode positions {path} ({exc.strerror})") from None
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    out: dict[str, np.ndarray] = {}
    for number, row in enumerate(rows, start=2):
        try:
            out[row["name"].strip()] = np.array([float(row[k]) for k in "xyz"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(f"{path}, line {number}: need columns name, x, y, z with "
                             f"numbers in mm (mesh space), got {row}") from None
    if not out:
        raise InputError(f"{path} lists no electrodes; give columns name, x, y, z (mm)")
    return out


def lookup(positions: Mapping[str, np.ndarray], name: str, source: str) -> np.ndarray:
    """The position of ``name`` (case-insensitive), or an error with the closest names."""
    folded = {k.lower(): k for k in positions}
    if name.lower() in folded:
        return positions[folded[name.lower()]]
    close = difflib.get_close_matches(name, list(positions), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"electrode {name!r} is not in {source}{hint} (it has "
                     f"{len(positions)} positions)")


@dataclass(frozen=True, eq=False)
class Scalp:
    """The outer surface of a head mesh: triangles, node ids, and a search tree."""

    mesh: HeadMesh
    triangles: np.ndarray
    nodes: np.ndarray
    _tree: cKDTree

    @classmethod
    def of(cls, mesh: HeadMesh) -> Scalp:
        """The scalp of ``mesh`` (every face on its outside)."""
        triangles = outer_triangles(mesh)
        nodes = np.unique(triangles)
        return cls(mesh, triangles, nodes, cKDTree(mesh.nodes[nodes]))

    def nearest(self, point: np.ndarray) -> tuple[int, float]:
        """The scalp node nearest to ``point`` and its distance (mm)."""
        distance, i = self._tree.query(point)
        return int(self.nodes[i]), float(distance)

    def cast(self, centre: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Where the ray from ``centre`` along ``direction`` leaves the scalp (farthest hit)."""
        p = self.mesh.nodes[self.triangles]
        e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        h = np.cross(direction, e2)
        a = np.einsum("ij,ij->i", e1, h)
        ok = np.abs(a) > 1e-12
        f = np.where(ok, 1.0 / np.where(ok, a, 1.0), 0.0)
        s = centre - p[:, 0]
        u = f * np.einsum("ij,ij->i", s, h)
        q = np.cross(s, e1)
        v = f * (q @ direction)
        t = f * np.einsum("ij,ij->i", e2, q)
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if not hit.any():
            raise InputError("a cap direction does not meet the scalp; the head mesh is not "
                             "closed around its centre: pass --electrode-positions")
        return centre + t[hit].max() * direction

    def outward_normal(self, node: int) -> np.ndarray:
        """Area-weighted outward normal of the scalp at ``node``."""
        near = self.triangles[(self.triangles == node).any(axis=1)]
        p = self.mesh.nodes[near]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]).sum(axis=0)
        return n / np.linalg.norm(n)


@dataclass(frozen=True, eq=False)
class Electrode:
    """One electrode: its name, current (mA), centre on the scalp and the nodes it covers."""

    name: str
    current_ma: float
    centre_mm: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray  # share of the current per node (sums to 1), for Neumann injection


def place(scalp: Scalp, name: str, current_ma: float, position: np.ndarray, shape: Shape, *,
          explicit: bool) -> Electrode:
    """Put an electrode of ``shape`` at ``position``; explicit positions must be on the scalp."""
    node, distance = scalp.nearest(position)
    if explicit and distance > OFF_SCALP_MM:
        raise InputError(f"electrode {name!r} at {np.round(position, 1).tolist()} mm is "
                         f"{distance:.1f} mm off the scalp (limit {OFF_SCALP_MM:g} mm); give "
                         f"its position in the head mesh's coordinates (mm), on the skin")
    centre = scalp.mesh.nodes[node]
    if shape.kind == "point":
        return Electrode(name, current_ma, centre, np.array([node]), np.array([1.0]))
    covered = _patch_nodes(scalp, node, shape)
    weights = _node_areas(scalp, covered)
    return Electrode(name, current_ma, centre, covered, weights / weights.sum())


def _patch_nodes(scalp: Scalp, centre_node: int, shape: Shape) -> np.ndarray:
    centre = scalp.mesh.nodes[centre_node]
    normal = scalp.outward_normal(centre_node)
    offsets = scalp.mesh.nodes[scalp.nodes] - centre
    facing = (offsets @ normal) > -0.5 * max(shape.size_mm)  # same side of the head
    if shape.kind == "disc":
        inside = np.linalg.norm(offsets, axis=1) <= shape.size_mm[0]
    else:
        up = np.array([0.0, 0.0, 1.0]) if abs(normal[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        height_axis = up - (up @ normal) * normal
        height_axis /= np.linalg.norm(height_axis)
        width_axis = np.cross(normal, height_axis)
        inside = ((np.abs(offsets @ width_axis) <= shape.size_mm[0] / 2)
                  & (np.abs(offsets @ height_axis) <= shape.size_mm[1] / 2))
    covered = scalp.nodes[inside & facing]
    return covered if len(covered) else np.array([centre_node])


def _node_areas(scalp: Scalp, nodes: np.ndarray) -> np.ndarray:
    """A third of the area of every scalp triangle around each node (lumped areas)."""
    p = scalp.mesh.nodes[scalp.triangles]
    areas = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1) / 2
    lumped = np.zeros(scalp.mesh.n_nodes)
    np.add.at(lumped, scalp.triangles.ravel(), np.repeat(areas / 3, 3))
    return np.maximum(lumped[nodes], 1e-12)


def place_montage(mesh: HeadMesh, montage: Sequence[tuple[str, float]], shape: Shape, *,
                  cap: str = "standard_1005", template: bool = False,
                  positions: Mapping[str, np.ndarray] | None = None) -> list[Electrode]:
    """Place every electrode of a montage on the scalp of ``mesh``; overlaps are errors."""
    scalp = Scalp.of(mesh)
    placed = []
    directions = None
    for name, current in montage:
        if positions is not None:
            point = lookup(positions, name, "the electrode positions file")
        elif template:
            point = lookup(cap_positions(cap, template=True), name, f"cap {cap}")
        else:
            directions = directions or cap_positions(cap, template=False)
            centre = mesh.nodes[scalp.nodes].mean(axis=0)
            point = scalp.cast(centre, lookup(directions, name, f"cap {cap}"))
        placed.append(place(scalp, name, current, point, shape, explicit=positions is not None))
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            if np.intersect1d(a.nodes, b.nodes).size:
                raise InputError(f"electrodes {a.name!r} and {b.name!r} overlap on the scalp; "
                                 f"use smaller electrodes (--electrode) or other positions")
    return placed
