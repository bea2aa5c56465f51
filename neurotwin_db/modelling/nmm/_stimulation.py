"""tACS as seen by a neural mass: a field at each node that shifts pyramidal potentials.

The field component normal to the cortex, ``E⊥`` (V/m), polarises pyramidal somata by
``ΔV = λ·E⊥``. The default ``λ = 0.14 mV per V/m`` is the somatic polarisation measured
for layer-5 pyramidal cells (Radman et al. 2009, Brain Stimul 2:215-228). The waveform
is a sine at the stimulation frequency under a trapezoidal envelope (linear ramps).
Sham is the usual ramp-only control: the ramp up is followed at once by the ramp down,
at the start and again at the end, with no stimulation between.

>>> stim = Stimulation(freq_hz=40.0, field_v_per_m=0.3, ramp_s=0.5)
>>> stim.envelope(np.array([0.0, 0.25, 1.0, 1.75, 2.0]), duration_s=2.0).tolist()
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurotwin_db.errors import InputError

RADMAN_LAMBDA_MV_PER_V_PER_M = 0.14


@dataclass(frozen=True, slots=True)
class Stimulation:
    """A tACS waveform and the peak normal field it makes at each node.

    ``field_v_per_m`` is one value for every node or an array with one per node.
    """

    freq_hz: float = 40.0
    field_v_per_m: float | tuple[float, ...] = 0.3
    ramp_s: float = 1.0
    sham: bool = False
    lam_mv_per_v_per_m: float = RADMAN_LAMBDA_MV_PER_V_PER_M
    waveform_name: str = "sine"

    def __post_init__(self) -> None:
        if not self.freq_hz > 0:
            raise InputError(f"stimulation frequency {self.freq_hz} Hz is not positive; "
                             "give --freq in Hz, e.g. 40")
        if self.ramp_s < 0:
            raise InputError(f"ramp {self.ramp_s} s is negative; give a ramp ≥ 0 s")
        if self.waveform_name != "sine":
            raise InputError(f"waveform {self.waveform_name!r} is not supported; use 'sine'")
        if not np.all(np.isfinite(np.atleast_1d(self.field_v_per_m))):
            raise InputError(f"stimulation field {self.field_v_per_m} V/m is not finite")

    def fields(self, n_nodes: int) -> np.ndarray:
        """Peak normal field per node (V/m)."""
        field = np.atleast_1d(np.asarray(self.field_v_per_m, dtype=float))
        if field.size == 1:
            return np.full(n_nodes, float(field[0]))
        if field.size != n_nodes:
            raise InputError(f"{field.size} field values for {n_nodes} nodes; give one "
                             "value, or one per node")
        return field.copy()

    def envelope(self, times: np.ndarray, duration_s: float) -> np.ndarray:
        """Amplitude envelope in [0, 1]: trapezoid (active) or the two sham ramps."""
        ramp = max(self.ramp_s, 1e-12)
        up = np.clip(times / ramp, 0.0, 1.0)
        down = np.clip((duration_s - times) / ramp, 0.0, 1.0)
        if not self.sham:
            return np.minimum(up, down)
        first = np.clip(1.0 - np.abs(times - ramp) / ramp, 0.0, 1.0)
        last = np.clip(1.0 - np.abs(duration_s - ramp - times) / ramp, 0.0, 1.0)
        return np.maximum(first, last)

    def waveform(self, times: np.ndarray, duration_s: float) -> np.ndarray:
        """Unitless waveform ``w(t)``: the field at a node is ``E⊥ · w(t)``."""
        return self.envelope(times, duration_s) * np.sin(2 * np.pi * self.freq_hz * times)

    def describe(self) -> dict[str, object]:
        """Metadata for sidecars: frequency, waveform, ramps, sham and λ."""
        return {"Frequency": self.freq_hz, "Waveform": self.waveform_name,
                "RampUp": self.ramp_s, "RampDown": self.ramp_s, "Sham": self.sham,
                "PeakNormalField": (list(np.atleast_1d(self.field_v_per_m).astype(float))
                                    if np.ndim(self.field_v_per_m) else self.field_v_per_m),
                "PolarisationLambda": self.lam_mv_per_v_per_m,
                "PolarisationLambdaUnits": "mV per V/m"}


def fields_from_map(path, centres_mm: np.ndarray, radius_mm: float = 10.0  # noqa: ANN001
                    ) -> np.ndarray:
    """Mean normal field (V/m) around each node centre, from an efield ``…_En.nii.gz``.

    The map and the centres must share a space (the template's maps are in MNI305, as are
    approximately the TVB and AAL centres). Voxels outside grey matter are zero in the map
    and are left out; a node with no grey matter within ``radius_mm`` gets 0.
    """
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=float)
    except Exception as exc:  # nibabel raises many kinds on bad files
        raise InputError(f"cannot read the field map {path} ({exc}); give the "
                         "…_En.nii.gz written by `ntdb model efield`") from None
    centres = np.asarray(centres_mm, dtype=float)
    if centres.ndim != 2 or centres.shape[1] != 3:
        raise InputError("the connectome has no node centres (x, y, z in mm); use one with "
                         "centres (tvb76, or a .npz with a 'centres' array)")
    voxels = np.argwhere(data != 0)
    values = data[tuple(voxels.T)]
    world = nib.affines.apply_affine(image.affine, voxels)
    fields = np.zeros(len(centres))
    for i, centre in enumerate(centres):
        near = np.linalg.norm(world - centre, axis=1) <= radius_mm
        if near.any():
            fields[i] = float(values[near].mean())
    if not np.any(fields):
        raise InputError(f"no node centre lies within {radius_mm:g} mm of the field in {path}; "
                         "are the map and the connectome in the same space?")
    return fields
