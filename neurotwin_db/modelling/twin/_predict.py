"""A twin's prediction: its simulated EEG under active tACS against sham, seed by seed.

Active and sham runs share their noise seeds (paired), so their difference is the
effect of the field, not of the noise. Both are analysed in the same window, clear of
every ramp: from ``2·ramp`` to ``duration - 2·ramp`` (sham ramps up and straight down at
each end). Entrainment is the phase-locking value between the EEG proxy and the
stimulation sine at ``freq``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.nmm._features import phase_locking_value
from neurotwin_db.modelling.nmm._fit import features_of
from neurotwin_db.modelling.nmm._models import Model
from neurotwin_db.modelling.nmm._simulate import simulate
from neurotwin_db.modelling.nmm._stimulation import RADMAN_LAMBDA_MV_PER_V_PER_M, Stimulation

MEASURES = ("power_40hz", "alpha_peak_hz", "rel_theta", "rel_alpha", "rel_gamma", "plv")


def condition_measures(model: Model, stimulation: Stimulation, seed: int, duration_s: float,
                       ) -> tuple[dict[str, float], object]:
    """The measures of one run (and its spectrum), in the window clear of the ramps."""
    sim = simulate(model, duration_s=duration_s, sfreq=500.0, seed=seed,
                   stimulation=stimulation)
    window = ((sim.times >= 2 * stimulation.ramp_s)
              & (sim.times <= duration_s - 2 * stimulation.ramp_s))
    data, times = sim.eeg[:, window], sim.times[window]
    features, spectrum = features_of(data, sim.sfreq)
    reference = np.sin(2 * np.pi * stimulation.freq_hz * times)
    values = features.as_dict()
    values["plv"] = float(phase_locking_value(data[0], reference, sim.sfreq,
                                              stimulation.freq_hz))
    return {k: float(values[k]) for k in MEASURES}, spectrum


def predict_effect(model: Model, field_v_per_m: float, *, freq_hz: float = 40.0,
                   seeds: Sequence[int] = (0, 1, 2, 3, 4), duration_s: float = 24.0,
                   ramp_s: float = 2.0,
                   lam_mv_per_v_per_m: float = RADMAN_LAMBDA_MV_PER_V_PER_M
                   ) -> dict[str, object]:
    """Active minus sham for each measure: mean and SD over paired seeds."""
    if duration_s - 4 * ramp_s < 4.0:
        raise InputError(f"a {duration_s:g} s run with {ramp_s:g} s ramps leaves less than 4 s "
                         "clear of the ramps to analyse; lengthen the run or shorten the ramps")
    rows: dict[str, list[dict[str, float]]] = {"active": [], "sham": []}
    spectra: dict[str, object] = {}
    for seed in seeds:
        for condition in rows:
            stim = Stimulation(freq_hz, field_v_per_m, ramp_s, condition == "sham",
                               lam_mv_per_v_per_m)
            values, spectrum = condition_measures(model, stim, seed, duration_s)
            rows[condition].append(values)
            spectra.setdefault(condition, spectrum)
    result: dict[str, object] = {}
    for condition, table in rows.items():
        result[condition.capitalize()] = _mean_sd({k: [r[k] for r in table] for k in MEASURES})
    result["Change"] = _mean_sd({k: [a[k] - s[k] for a, s in zip(rows["active"], rows["sham"],
                                                                  strict=True)]
                                 for k in MEASURES})
    result["Seeds"] = list(seeds)
    result["_spectra"] = spectra
    return result


def _mean_sd(columns: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: {"Mean": float(np.mean(v)), "SD": float(np.std(v, ddof=1)) if len(v) > 1
                else 0.0} for k, v in columns.items()}
