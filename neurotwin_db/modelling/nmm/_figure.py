"""Figures of spectra: a fitted model against the EEG, or a twin with and without tACS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.integrate import trapezoid

from neurotwin_db._io import atomic_target
from neurotwin_db.modelling.nmm._features import Spectrum


def _normalised(spectrum: Spectrum, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Channel-mean PSD up to ``fmax``, divided by its total (shapes, not units, compare)."""
    keep = spectrum.freqs <= fmax
    psd = spectrum.mean()[keep]
    return spectrum.freqs[keep], psd / max(float(trapezoid(psd, spectrum.freqs[keep])),
                                           1e-300)


def write_spectra_figure(path: Path, curves: Sequence[tuple[str, Spectrum]], *, title: str,
                         fmax: float = 60.0, marks: Sequence[float] = ()) -> Path:
    """Log-power spectra (each normalised to unit area) on one axis, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, spectrum in curves:
        freqs, psd = _normalised(spectrum, fmax)
        ax.semilogy(freqs, psd, label=label, lw=1.6)
    for freq in marks:
        ax.axvline(freq, color="0.6", lw=0.8, ls="--")
    ax.set(xlabel="Frequency (Hz)", ylabel="Relative power (1/Hz)", title=title, xlim=(1, fmax))
    ax.legend(frameon=False)
    fig.tight_layout()
    with atomic_target(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
