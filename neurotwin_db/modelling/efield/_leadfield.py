"""Lead field: the field of every cap electrode against one reference, for any montage.

Each electrode injects 1 mA through its nodes (shares ``Electrode.weights``); the grounded
reference nodes (0 V) take it out. All solves share one matrix and one AMG hierarchy; any
montage's field follows by superposition, as in the lead-field optimisation of Saturnino
et al. 2019 (doi:10.1016/j.neuroimage.2019.116119).
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as default
from pathlib import Path

import numpy as np

from neurotwin_db import __version__
from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.efield._electrodes import (
    Electrode,
    Scalp,
    Shape,
    cap_positions,
    lookup,
    place,
)
from neurotwin_db.modelling.efield._fem import (
    P1Geometry,
    assemble_stiffness,
    element_conductivity,
    element_field,
)
from neurotwin_db.modelling.efield._solve import RTOL, ReducedSystem, SolveStats
from neurotwin_db.modelling.efield._summary import GM, cortex_normals
from neurotwin_db.modelling.headmodel import HeadMesh

FORMAT = "neurotwin-db lead field 1"
POINT = Shape("point")
ARRAYS = ("elements", "field", "centroids_mm", "volumes_m3", "tags", "normals", "centres_mm",
          "transfer")


@dataclass(frozen=True, eq=False)
class LeadField:
    """Fields (V/m per mA) of each electrode against ``reference`` in selected elements.

    ``field[i]`` is the field when 1 mA enters at ``electrodes[i]`` and leaves at the
    reference. ``transfer[i, j]`` is the potential (V, i.e. kΩ) of electrode ``i``
    relative to the reference when 1 mA enters at electrode ``j``; it is symmetric.
    ``normals`` are outward cortex normals of the grey-matter elements (zero elsewhere).
    """

    cap: str
    reference: str
    electrodes: tuple[str, ...]
    elements: np.ndarray
    field: np.ndarray
    centroids_mm: np.ndarray
    volumes_m3: np.ndarray
    tags: np.ndarray
    normals: np.ndarray
    centres_mm: np.ndarray  # electrodes then the reference
    transfer: np.ndarray
    shape: Shape = POINT
    stats: list[SolveStats] = default(default_factory=list)
    timings: dict[str, float] = default(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Every electrode that can carry current: the electrodes, then the reference."""
        return (*self.electrodes, self.reference)

    def index_of(self, name: str) -> int:
        """Position of ``name`` in :attr:`names` (case-insensitive), or a helpful error."""
        folded = [n.lower() for n in self.names]
        if name.lower() in folded:
            return folded.index(name.lower())
        close = difflib.get_close_matches(name, list(self.names), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"electrode {name!r} is not in this lead field ({len(self.names)} "
                         f"electrodes of {self.cap}, reference {self.reference}){hint}")

    def weights_of(self, currents: Mapping[str, float]) -> np.ndarray:
        """Currents (mA) of :attr:`names` from a name → mA map; the reference balances them."""
        weights = np.zeros(len(self.names))
        for name, current in currents.items():
            weights[self.index_of(name)] += float(current)
        if not any(n.lower() == self.reference.lower() for n in currents):
            weights[-1] = -weights[:-1].sum()
        scale = max(np.abs(weights).max(), 1e-300)
        if abs(weights.sum()) > 1e-9 * scale:
            raise InputError(f"montage currents must sum to zero (reference {self.reference} "
                             f"included), but they sum to {weights.sum():+g} mA; change the "
                             f"reference's current or leave it out to balance automatically")
        return weights

    def field_of(self, currents: Mapping[str, float]) -> np.ndarray:
        """Field (V/m, float64, one row per stored element) of a montage (mA) by superposition.

        Omit the reference to let it take minus the sum of the other currents.
        """
        weights = self.weights_of(currents)[:-1]
        used = np.flatnonzero(weights)
        return np.tensordot(weights[used], self.field[used], axes=1).astype(np.float64)

    def save(self, path: Path, *, overwrite: bool = False) -> Path:
        """Write the lead field to HDF5 atomically (temporary file next to it, then rename)."""
        import h5py

        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
        with atomic_target(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "cap": self.cap, "reference": self.reference,
                            "units": "V/m per mA",
                            "shape": json.dumps([self.shape.kind, self.shape.size_mm]),
                            "solver_stats": json.dumps([s.as_json() for s in self.stats]),
                            "timings": json.dumps(self.timings),
                            "neurotwin_db_version": __version__})
            f.create_dataset("electrodes", data=np.array(self.electrodes, dtype=object),
                             dtype=h5py.string_dtype())
            for key in ARRAYS:
                f.create_dataset(key, data=getattr(self, key))
        return path

    @classmethod
    def load(cls, path: Path) -> LeadField:
        """Read a lead field written by :meth:`save`."""
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise InputError(f"{path} is not a neurotwin-db lead field (format "
                                     f"{f.attrs.get('format')!r}); compute one with "
                                     f"compute_leadfield(...).save(path)")
                kind, sizes = json.loads(f.attrs["shape"])
                stats = [SolveStats(s["Iterations"], s["RelativeResidual"], s["SolveSeconds"])
                         for s in json.loads(f.attrs["solver_stats"])]
                return cls(str(f.attrs["cap"]), str(f.attrs["reference"]),
                           tuple(f["electrodes"].asstr()[()]), **{k: f[k][()] for k in ARRAYS},
                           shape=Shape(kind, tuple(sizes)), stats=stats,
                           timings=json.loads(f.attrs["timings"]))
        except (OSError, KeyError) as exc:
            raise InputError(f"cannot read the lead field {path} ({exc}); recompute it") from None


def compute_leadfield(mesh: HeadMesh, sigma_by_tag: Mapping[int, float],
                      cap: str = "standard_1010", reference: str = "Cz", *,
                      template: bool = False, positions: Mapping[str, np.ndarray] | None = None,
                      shape: Shape = POINT, elements: np.ndarray | None = None,
                      names: Sequence[str] | None = None) -> LeadField:
    """Lead field of a cap (or of ``positions``: name → mm) against ``reference``.

    ``names`` restricts the electrodes (default: all of the cap or of ``positions``);
    ``elements`` (indices or a mask of tetrahedra) chooses where the field is kept
    (default: grey matter, tag 2, or every element when there is none).
    """
    start = time.perf_counter()
    chosen = _choose_elements(mesh, elements)
    electrodes, ref = _place(mesh, cap, reference, template, positions, shape, names)
    timings = {"Placement": time.perf_counter() - start}
    tick = time.perf_counter()
    geometry = P1Geometry.of(mesh)
    matrix = assemble_stiffness(mesh, geometry, element_conductivity(mesh, sigma_by_tag))
    timings["Assembly"] = time.perf_counter() - tick
    system = ReducedSystem.build(matrix, ref.nodes)
    timings["Setup"] = system.setup_seconds
    fields = np.empty((len(electrodes), len(chosen), 3), dtype=np.float32)
    transfer = np.empty((len(electrodes), len(electrodes)))
    stats, field_seconds = [], 0.0
    for i, e in enumerate(electrodes):
        source = np.zeros(mesh.n_nodes)
        np.add.at(source, e.nodes, e.weights * 1e-3)  # 1 mA in; out at the grounded reference
        potential, s = system.solve(source, rtol=RTOL, what=f"electrode {e.name} vs {reference}")
        tick = time.perf_counter()
        fields[i] = element_field(mesh, geometry, potential)[chosen]
        field_seconds += time.perf_counter() - tick
        transfer[:, i] = [potential[o.nodes] @ o.weights for o in electrodes]
        stats.append(s)
    timings.update(Solve=sum(s.seconds for s in stats), Field=field_seconds)
    tags, normals, tick = mesh.tags[chosen], np.zeros((len(chosen), 3)), time.perf_counter()
    if (gm := tags == GM).any():
        normals[gm] = cortex_normals(mesh, GM)[np.cumsum(mesh.tags == GM)[chosen[gm]] - 1]
    timings.update(Normals=time.perf_counter() - tick, Total=time.perf_counter() - start)
    return LeadField(cap if positions is None else "custom", ref.name,
                     tuple(e.name for e in electrodes), chosen, fields,
                     mesh.centroids()[chosen], geometry.volumes[chosen], tags, normals,
                     np.array([e.centre_mm for e in (*electrodes, ref)]), transfer, shape,
                     stats, timings)


def _choose_elements(mesh: HeadMesh, elements: np.ndarray | None) -> np.ndarray:
    if elements is None:
        gm = np.flatnonzero(mesh.tags == GM)
        return gm if len(gm) else np.arange(mesh.n_tets)
    chosen = np.asarray(elements)
    if chosen.dtype == bool:
        if chosen.shape != (mesh.n_tets,):
            raise InputError(f"an element mask needs one entry per tetrahedron "
                             f"({mesh.n_tets}), got shape {chosen.shape}")
        chosen = np.flatnonzero(chosen)
    chosen = np.unique(chosen.astype(np.int64))
    if not len(chosen) or chosen[0] < 0 or chosen[-1] >= mesh.n_tets:
        raise InputError(f"element indices must be a non-empty set of 0-based tetrahedra in "
                         f"0..{mesh.n_tets - 1}; got {len(chosen)} indices")
    return chosen


def _place(mesh: HeadMesh, cap: str, reference: str, template: bool,
           positions: Mapping[str, np.ndarray] | None, shape: Shape,
           names: Sequence[str] | None) -> tuple[list[Electrode], Electrode]:
    scalp = Scalp.of(mesh)
    if positions is not None:
        table, source, explicit = dict(positions), "the electrode positions", True
    else:
        table, source, explicit = cap_positions(cap, template=template), f"cap {cap}", False
    wanted = list(names) if names is not None else list(table)
    lookup(table, reference, source)
    unique: dict[str, str] = {}
    for name in wanted:
        unique.setdefault(name.lower(), name)
    unique.pop(reference.lower(), None)
    wanted = list(unique.values())
    if not wanted:
        raise InputError(f"the lead field needs at least one electrode besides the reference "
                         f"{reference}; add names or positions")
    centre = mesh.nodes[scalp.nodes].mean(axis=0)

    def put(name: str) -> Electrode:
        point = lookup(table, name, source)
        if not explicit and not template:
            point = scalp.cast(centre, point)
        real = next(k for k in table if k.lower() == name.lower())
        return place(scalp, real, 1.0, point, shape, explicit=explicit)

    ref = put(reference)
    electrodes = [put(n) for n in wanted]
    for e in electrodes:
        if np.intersect1d(e.nodes, ref.nodes).size:
            raise InputError(f"electrode {e.name!r} overlaps the reference {ref.name!r} on the "
                             f"scalp; use smaller electrodes, a finer mesh or leave it out")
    return electrodes, ref
