"""Simulated time series on disk (NPZ or HDF5) and their per-node spectral summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from scipy.integrate import trapezoid

from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError, OutputExistsError
from neurotwin_db.modelling.nmm._features import BANDS, welch_psd
from neurotwin_db.modelling.nmm._simulate import Simulation

_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}


def parse_seconds(text: str, what: str) -> float:
    """``'10s'``, ``'0.1ms'``, ``'2min'`` or a bare number of seconds.

    >>> parse_seconds("0.1ms", "--dt"), parse_seconds("10", "--duration")
    (0.0001, 10.0)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|min)?\s*", text)
    if not match:
        raise InputError(f"{what} {text!r} is not a duration; write e.g. 10s, 0.1ms or 2min")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


def node_summary(sim: Simulation) -> list[dict[str, object]]:
    """Peak frequency (Hz) and relative band powers of every node's EEG proxy."""
    spectrum = welch_psd(sim.eeg, sim.sfreq, channels=sim.labels, fmin=1.0,
                         fmax=min(80.0, sim.sfreq / 2 - 1), seconds=min(2.0, sim.eeg.shape[1]
                                                                         / sim.sfreq))
    freqs, rows = spectrum.freqs, []
    total = trapezoid(spectrum.psd, freqs, axis=1)
    for label, psd, whole in zip(sim.labels, spectrum.psd, total, strict=True):
        bands = {name: float(trapezoid(psd[(freqs >= lo) & (freqs < hi)],
                                          freqs[(freqs >= lo) & (freqs < hi)]) / whole)
                 for name, (lo, hi) in BANDS.items()}
        rows.append({"node": label, "peak_hz": float(freqs[np.argmax(psd)]),
                     **{f"rel_{k}": round(v, 5) for k, v in bands.items()}})
    return rows


def write_simulation(sim: Simulation, path: Path, *, overwrite: bool = False) -> Path:
    """Write the time series and its metadata to ``.npz`` or ``.h5``, atomically."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    meta = json.dumps({"model": sim.model, "parameters": sim.params, "dt_s": sim.dt_s,
                       "seed": sim.seed, "sfreq": sim.sfreq, "units": "mV",
                       "signal": "EEG proxy per node", "stimulation": sim.stimulation,
                       **sim.extra})
    if path.suffix == ".npz":
        with atomic_target(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, eeg=sim.eeg, times=sim.times,
                                labels=np.array(sim.labels), metadata=np.array(meta))
    elif path.suffix in (".h5", ".hdf5"):
        import h5py

        with atomic_target(path) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("eeg", data=sim.eeg, compression="gzip")
            f.create_dataset("times", data=sim.times)
            f.create_dataset("labels", data=np.array(sim.labels, dtype=object),
                             dtype=h5py.string_dtype())
            f.attrs["metadata"] = meta
    else:
        raise InputError(f"cannot write {path}: the output must end in .npz or .h5")
    return path
