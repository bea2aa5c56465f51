"""An Alzheimer's disease (AD) progression path for the laminar neural mass model (LaNMM).

AD changes the resting EEG in a known direction (Jeong 2004, Clin Neurophysiol
115:1490-1505; Babiloni et al. 2020, Neurobiol Aging 85:58-73): the alpha peak frequency
falls, power moves from alpha and beta to theta and delta ("slowing"), and relative alpha
falls. Early on, before the slowing, patients and amyloid mouse models show hyperactivity
with more gamma (van Deursen et al. 2008, J Neural Transm 115:1301-1311). :data:`AD_STAGES`
is a cumulative path of LaNMM parameter changes (from the defaults of
:class:`~neurotwin_db.modelling.nmm._models.LaNMM`) that follows the literature's order:
fast (PV) inhibition fails first, then synaptic kinetics slow down.

``healthy``
    The published LaNMM (Sanchez-Todo et al. 2023, NeuroImage 270:119938): alpha peak
    near 10 Hz from the deep (P1/SST) loop, gamma near 39 Hz from the superficial
    (P2/PV) loop.
``early`` -- amyloid-beta weakens PV (fast) inhibition: ``A_GABAf`` -30 -> -22 mV
    Soluble amyloid-beta impairs parvalbumin (PV) basket cells (Nav1.1 loss in hAPP
    mice, Verret et al. 2012, Cell 149:708-721; review: Palop & Mucke 2016, Nat Rev
    Neurosci 17:777-792). The Ruffini / Sanchez-Todo group models AD in the LaNMM by
    this route: amyloid-beta acting on PV interneurons gives the early hyperactive phase
    (more gamma, sometimes more alpha), hyperphosphorylated tau acting later on pyramidal
    cells gives the slowing (Sanchez-Todo et al., bioRxiv preprint, summarised by
    Neuroelectrics 2025, "Modeling Alzheimer's in the brain: how neural mass models
    reproduce EEG biomarkers"; de Palma Aristides et al. 2026, PLoS Comput Biol
    22:e1014022). A 27 % smaller PV IPSP is our choice of dose, not a published value.
``intermediate`` -- slower slow inhibition: also ``a_GABAs`` 50 -> 48 /s (20 -> 20.8 ms)
    Amyloid-beta burden goes with longer inhibitory time constants in neural-mass fits
    to patients' MEG (Ranasinghe et al. 2022, eLife 11:e77850), and an amyloid-dependent
    inhibitory rate is what slows the EEG in the virtual-brain model of Stefanovski et
    al. 2019 (Front Comput Neurosci 13:54).
``late`` -- tau slows excitatory synapses: also ``a_AMPA`` 100 -> 85 /s (10 -> 11.8 ms)
    Tau burden goes with longer excitatory time constants (Ranasinghe et al. 2022), and
    tau damages pyramidal cells late in the disease (as above). Hyperactivity leading to
    slowing also appears in whole-brain models (van Nifterick et al. 2022, Alzheimers Res
    Ther 14, doi:10.1186/s13195-022-01041-4).

What the model does with this path (``benchmarks/lanmm_ad_direction.py``, 5 seeds of
30 s; table and figure in ``docs/nmm/ad_direction.md``):

* PV loss alone does **not** slow the rhythm: ``A_GABAf`` from -30 to -15 mV keeps the
  alpha peak at 10 Hz (and relative theta unchanged); it raises gamma and 40 Hz power
  (absolute alpha power by only ~5 %), shifts the gamma peak down (39 -> 37 Hz), and so
  past about -20 mV lowers the *narrow-band* 38-42 Hz power again.
* Slowing needs a second mechanism. The slow-inhibition rate gives 9 Hz at 48 /s but
  jumps to a 5 Hz theta limit cycle at 47 /s or below (no graded path); with less
  excitatory drive ``p1`` the model flickers between the two regimes. Slower AMPA
  kinetics on top give a graded slowing to about 8 Hz with relative theta near 0.35 --
  the direction of the biomarkers. On the theta side, ``alpha_peak_hz`` (7-14 Hz) picks
  the 2nd harmonic near 10 Hz and misses the slowing; ``dominant_hz`` does not.
* The model's absolute alpha power *rises* along the path (it is a noise-driven limit
  cycle), unlike the fall of absolute alpha in patients; only relative alpha falls.
  Nearly all of the late stage's relative theta is the 7-8 Hz flank of its slowed ~8 Hz
  peak: the model slows its one rhythm rather than growing broadband theta/delta.

>>> list(AD_STAGES)
['healthy', 'early', 'intermediate', 'late']
>>> stage_model(AD_STAGES["late"]).a_AMPA
85.0
>>> rows = disease_trajectory({"healthy": {}}, seeds=(0,), duration_s=6.0)
>>> rows[0]["stage"], round(rows[0]["alpha_peak_hz"])
('healthy', 10)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurotwin_db._io import atomic_target
from neurotwin_db.errors import InputError
from neurotwin_db.modelling.nmm._features import BANDS, _band_power, _parabolic_offset
from neurotwin_db.modelling.nmm._fit import features_of
from neurotwin_db.modelling.nmm._models import LaNMM, with_parameters
from neurotwin_db.modelling.nmm._simulate import simulate

AD_STAGES: dict[str, dict[str, float]] = {
    "healthy": {},
    "early": {"A_GABAf": -22.0},
    "intermediate": {"A_GABAf": -22.0, "a_GABAs": 48.0},
    "late": {"A_GABAf": -22.0, "a_GABAs": 48.0, "a_AMPA": 85.0},
}
"""Cumulative LaNMM parameter changes from the defaults, in disease order (see above)."""

METRICS: tuple[str, ...] = (
    "alpha_peak_hz", "rel_theta", "rel_alpha", "rel_gamma", "power_40hz", "dominant_hz",
    "alpha_power", "gamma_power",
)
"""Per-stage biomarkers of :func:`disease_trajectory` (mean, and ``<name>_sd``)."""

DOMINANT_RANGE = (2.0, 20.0)
"""Search range (Hz) of ``dominant_hz``, the strongest slow rhythm (theta included)."""

_SFREQ = 500.0


def stage_model(changes: Mapping[str, float], *, base: LaNMM | None = None) -> LaNMM:
    """The LaNMM of one disease stage: ``base`` (default parameters) with ``changes``.

    Parameters
    ----------
    changes : mapping of str to float
        Parameter values replacing those of ``base``, e.g. ``AD_STAGES["late"]``.
    base : LaNMM, optional
        The healthy model (e.g. a fitted twin); the published defaults if omitted.

    Returns
    -------
    LaNMM
        A new model; ``base`` is not modified.

    Raises
    ------
    InputError
        If ``base`` is not a LaNMM or a name in ``changes`` is not a LaNMM parameter.
    """
    base = LaNMM() if base is None else base
    if not isinstance(base, LaNMM):
        raise InputError(f"AD stages are LaNMM parameter changes, but base is a "
                         f"{type(base).__name__}; pass a LaNMM (or nothing for the defaults)")
    return with_parameters(base, dict(changes))


def disease_trajectory(stages: Mapping[str, Mapping[str, float]] = AD_STAGES, *,
                       seeds: Sequence[int] = (0, 1, 2, 3, 4), duration_s: float = 30.0,
                       base: LaNMM | None = None, dt_s: float = 1e-4,
                       sfreq: float = _SFREQ) -> list[dict[str, Any]]:
    """Simulate each disease stage with several noise seeds and summarise its biomarkers.

    Parameters
    ----------
    stages : mapping of str to mapping
        Stage name -> parameter changes from ``base``, in disease order
        (default :data:`AD_STAGES`).
    seeds : sequence of int
        Noise seeds; each stage is simulated once per seed.
    duration_s : float
        Simulated seconds per run, after the simulator's discarded 1 s transient; at
        least 2 s (one Welch window).
    base : LaNMM, optional
        The healthy model; the published defaults if omitted.
    dt_s, sfreq : float
        Integration step (s) and output sampling rate (Hz) of :func:`simulate`.

    Returns
    -------
    list of dict
        One row per stage, in order, with ``stage``, ``changes`` (a dict), ``n_seeds``,
        the mean of each name in :data:`METRICS` and its seed-to-seed standard deviation
        as ``<name>_sd`` (``ddof=1``; 0.0 for a single seed), and ``freqs`` / ``psd``:
        the seed-mean of the channel-mean Welch PSD (mV²/Hz) used by
        :func:`write_trajectory_figure`. ``alpha_peak_hz`` and the relative powers are
        the fitting features of :func:`features_of`; ``dominant_hz`` is the PSD maximum in
        :data:`DOMINANT_RANGE` (it sees a theta rhythm that ``alpha_peak_hz``, searched in
        7-14 Hz, cannot); ``alpha_power`` / ``gamma_power`` are absolute band powers
        (mV²).

    Raises
    ------
    InputError
        For no stages, no seeds, an unknown parameter name or unusable settings.
    ModelDivergenceError
        If a stage's parameters make the model blow up.
    """
    if not stages:
        raise InputError("no disease stages given; pass a mapping of stage name to "
                         "parameter changes, e.g. AD_STAGES")
    seeds = [_seed(s) for s in seeds]
    if not seeds:
        raise InputError("no seeds given; pass at least one noise seed, e.g. seeds=(0, 1, 2)")
    rows = []
    for name, changes in stages.items():
        model = stage_model(changes, base=base)
        values, spectra, freqs = [], [], None
        for seed in seeds:
            sim = simulate(model, duration_s=duration_s, dt_s=dt_s, sfreq=sfreq, seed=seed)
            feats, spectrum = features_of(sim.eeg, sim.sfreq)
            freqs, psd = spectrum.freqs, spectrum.mean()
            values.append(_biomarkers(feats.as_dict(), freqs, psd))
            spectra.append(psd)
        table = np.array(values, dtype=float)
        sd = table.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(METRICS))
        row: dict[str, Any] = {"stage": str(name), "changes": dict(changes),
                               "n_seeds": len(seeds)}
        for i, metric in enumerate(METRICS):
            row[metric] = float(table[:, i].mean())
            row[f"{metric}_sd"] = float(sd[i])
        row["freqs"] = freqs
        row["psd"] = np.mean(spectra, axis=0)
        rows.append(row)
    return rows


def _seed(value: object) -> int:
    """A noise seed as an int, or an :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"seeds must be integers, got {value!r}; pass e.g. seeds=(0, 1, 2)")
    return int(value)


def _biomarkers(features: Mapping[str, float], freqs: np.ndarray,
                psd: np.ndarray) -> list[float]:
    """The values of :data:`METRICS` for one run, in order."""
    lo, hi = DOMINANT_RANGE
    idx = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    i = int(idx[np.argmax(psd[idx])])
    step = float(freqs[1] - freqs[0])
    extra = {
        "dominant_hz": float(freqs[i] + _parabolic_offset(psd, i) * step),
        "alpha_power": _band_power(freqs, psd, *BANDS["alpha"]),
        "gamma_power": _band_power(freqs, psd, *BANDS["gamma"]),
    }
    return [float(features[m]) if m in features else extra[m] for m in METRICS]


def write_trajectory_figure(rows: Sequence[Mapping[str, Any]], path: str | Path, *,
                            fmax: float = 60.0) -> Path:
    """Plot a disease trajectory and write it as a PNG, atomically.

    Panel A shows each stage's seed-mean spectrum (log power); panel B the biomarkers
    across stages (mean ± seed-to-seed standard deviation): alpha peak and dominant
    frequency, relative theta / alpha / gamma power, and 40 Hz power.

    Parameters
    ----------
    rows : sequence of mapping
        The output of :func:`disease_trajectory`.
    path : str or Path
        Output PNG; its folder is created. The file appears only once complete.
    fmax : float
        Upper frequency (Hz) of panel A.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If ``rows`` is empty or a row lacks the fields :func:`disease_trajectory` gives.
    """
    if not rows:
        raise InputError("no trajectory rows to plot; pass the output of "
                         "disease_trajectory()")
    needed = {"stage", "freqs", "psd", *METRICS, *(f"{m}_sd" for m in METRICS)}
    for row in rows:
        missing = sorted(needed - set(row))
        if missing:
            raise InputError(f"trajectory row {row.get('stage', '?')!r} lacks "
                             f"{', '.join(missing)}; pass the output of disease_trajectory()")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 6.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 2, width_ratios=(1.35, 1.0))
    colours = [_colour(i, len(rows)) for i in range(len(rows))]
    _spectra_panel(fig.add_subplot(grid[:, 0]), rows, colours, fmax)
    _biomarker_panels([fig.add_subplot(grid[i, 1]) for i in range(3)], rows)
    fig.suptitle("LaNMM along the AD path: PV (fast) inhibition weakens, then kinetics slow")
    path = Path(path)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _colour(i: int, n: int) -> tuple[float, float, float, float]:
    """Stage colour: dark blue (healthy) to yellow (late)."""
    from matplotlib import colormaps

    return colormaps["viridis"](0.9 * i / max(n - 1, 1))


def _spectra_panel(ax, rows, colours, fmax: float) -> None:
    """Panel A: seed-mean log power spectra, with the theta and alpha bands shaded."""
    for (name, (lo, hi)), shade in zip((("theta", BANDS["theta"]), ("alpha", BANDS["alpha"])),
                                       ("#f2e1d4", "#dbe8f4"), strict=True):
        ax.axvspan(lo, hi, color=shade, lw=0)
        ax.text((lo + hi) / 2, 0.99, name, transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=8, color="0.35")
    ax.axvline(40.0, color="0.6", lw=0.8, ls="--")
    for row, colour in zip(rows, colours, strict=True):
        freqs, psd = np.asarray(row["freqs"]), np.asarray(row["psd"])
        keep = freqs <= fmax
        ax.semilogy(freqs[keep], psd[keep], color=colour, lw=1.6, label=row["stage"])
    ax.set(xlabel="Frequency (Hz)", ylabel="Power (mV²/Hz, log)", xlim=(1.0, fmax),
           title="A  Spectra per stage (mean of seeds)")
    ax.title.set_ha("left")
    ax.title.set_x(0.0)
    ax.legend(frameon=False, title="stage")


def _biomarker_panels(axes, rows) -> None:
    """Panel B: the biomarkers across stages, mean ± sd over seeds."""
    x = np.arange(len(rows))
    series = (
        (axes[0], "Frequency (Hz)", (("alpha_peak_hz", "alpha peak (7-14 Hz)", "o"),
                                     ("dominant_hz", "dominant (2-20 Hz)", "s"))),
        (axes[1], "Relative power", (("rel_theta", "theta", "o"), ("rel_alpha", "alpha", "s"),
                                     ("rel_gamma", "gamma", "^"))),
        (axes[2], "40 Hz power (rel.)", (("power_40hz", "38-42 Hz / 1-80 Hz", "o"),)),
    )
    for ax, label, metrics in series:
        for metric, text, marker in metrics:
            mean = [row[metric] for row in rows]
            sd = [row[f"{metric}_sd"] for row in rows]
            ax.errorbar(x, mean, yerr=sd, marker=marker, ms=5, capsize=3, lw=1.2, label=text)
        ax.set_ylabel(label)
        ax.set_xticks(x, [row["stage"] for row in rows] if ax is axes[-1] else [])
        ax.legend(frameon=False, fontsize=8)
    axes[2].set_yscale("log")
    axes[0].set_title("B  Biomarkers across stages (mean ± sd of seeds)", loc="left")
