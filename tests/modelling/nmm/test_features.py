"""Spectral features for neural-mass fitting, on synthetic signals and real EEG files."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.nmm._features import (
    BANDS,
    Spectrum,
    phase_locking_value,
    read_eeg_spectrum,
    spectral_features,
    welch_psd,
)

SFREQ = 250.0
SECONDS = 60.0


def power_law_noise(n: int, exponent: float, seed: int, sfreq: float = SFREQ) -> np.ndarray:
    """Gaussian noise with PSD ∝ 1/f**exponent, unit variance."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, 1 / sfreq)
    spectrum = rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)
    spectrum[0] = 0.0
    spectrum[1:] /= f[1:] ** (exponent / 2)
    x = np.fft.irfft(spectrum, n)
    return x / x.std()


def times(seconds: float = SECONDS, sfreq: float = SFREQ) -> np.ndarray:
    return np.arange(int(seconds * sfreq)) / sfreq


# --- features of simulated signals --------------------------------------------------------


def test_alpha_sine_in_pink_noise_gives_the_alpha_peak() -> None:
    t = times()
    x = np.sin(2 * np.pi * 10 * t) + power_law_noise(t.size, 1.0, seed=1)
    features = spectral_features(welch_psd(x, SFREQ))
    assert features.alpha_peak_hz == pytest.approx(10.0, abs=0.3)
    assert max(features.relative_power, key=features.relative_power.get) == "alpha"
    assert any(abs(cf - 10) < 0.3 for cf, _, _ in features.peaks)
    assert sum(features.relative_power.values()) == pytest.approx(1.0, abs=1e-9)
    assert features.r_squared > 0.9


def test_slowed_alpha_is_tracked() -> None:
    """An AD-like 8 Hz rhythm must not be reported as 10 Hz."""
    t = times()
    x = np.sin(2 * np.pi * 8 * t) + power_law_noise(t.size, 1.0, seed=2)
    assert spectral_features(welch_psd(x, SFREQ)).alpha_peak_hz == pytest.approx(8.0, abs=0.3)


def test_brown_noise_gives_aperiodic_exponent_two() -> None:
    x = power_law_noise(times().size, 2.0, seed=3)
    features = spectral_features(welch_psd(x, SFREQ))
    assert features.aperiodic_exponent == pytest.approx(2.0, abs=0.3)
    assert max(features.relative_power, key=features.relative_power.get) == "delta"


def test_knee_mode_also_recovers_the_exponent() -> None:
    x = power_law_noise(times().size, 2.0, seed=3)
    features = spectral_features(welch_psd(x, SFREQ), aperiodic_mode="knee")
    assert features.aperiodic_exponent == pytest.approx(2.0, abs=0.3)


def test_40hz_sine_gives_strong_relative_40hz_power() -> None:
    t = times()
    x = np.sin(2 * np.pi * 40 * t) + 0.1 * power_law_noise(t.size, 1.0, seed=4)
    features = spectral_features(welch_psd(x, SFREQ))
    assert features.power_40hz > 10
    assert max(features.relative_power, key=features.relative_power.get) == "gamma"


def test_pink_noise_has_no_40hz_excess() -> None:
    x = power_law_noise(times().size, 1.0, seed=5)
    assert spectral_features(welch_psd(x, SFREQ)).power_40hz < 1.0


def test_zero_spectrum_gives_nan_features_without_crashing() -> None:
    features = spectral_features(welch_psd(np.zeros((2, 2000)), SFREQ))
    values = features.as_dict()
    assert all(np.isnan(v) for v in values.values())
    assert features.peaks == ()


def test_as_dict_and_vector() -> None:
    t = times(10)
    features = spectral_features(welch_psd(np.sin(2 * np.pi * 10 * t), SFREQ))
    table = features.as_dict()
    assert list(table) == ["alpha_peak_hz", *(f"rel_{b}" for b in BANDS), "power_40hz",
                           "aperiodic_offset", "aperiodic_exponent", "r_squared"]
    vec = features.vector(["rel_theta", "alpha_peak_hz"])
    assert vec.tolist() == [table["rel_theta"], table["alpha_peak_hz"]]
    with pytest.raises(InputError, match="alpha_peak_hz, rel_delta") as info:
        features.vector(["alpha_peak", "rel_alpha"])
    assert "'alpha_peak'" in str(info.value)
    with pytest.raises(InputError, match="must be a list"):
        features.vector("rel_alpha")


def test_bad_aperiodic_mode() -> None:
    spectrum = welch_psd(np.random.default_rng(0).standard_normal(2000), SFREQ)
    with pytest.raises(InputError, match="'lorentz'"):
        spectral_features(spectrum, aperiodic_mode="lorentz")


# --- welch_psd -----------------------------------------------------------------------------


def test_welch_psd_shape_units_and_range() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5000))  # white, variance 1: PSD = 2 / sfreq one-sided
    spectrum = welch_psd(x, SFREQ, channels=["a", "b", "c"], fmin=2, fmax=60, seconds=2)
    assert spectrum.channels == ("a", "b", "c")
    assert spectrum.psd.shape == (3, spectrum.freqs.size)
    assert spectrum.freqs[0] == 2 and spectrum.freqs[-1] == 60
    assert np.diff(spectrum.freqs) == pytest.approx(0.5)
    assert spectrum.mean().mean() == pytest.approx(2 / SFREQ, rel=0.05)
    one = welch_psd(x[0], SFREQ)
    assert one.psd.shape[0] == 1 and one.channels == ("ch0",)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (np.r_[np.ones(10), np.nan, np.ones(989)], {}, "1 NaN/inf"),
        (np.ones(300), {}, "300 samples"),
        (np.ones(1000), {"fmax": 200.0}, "fmax=200.0 Hz"),
    ],
    ids=["nan", "too-short", "above-nyquist"],
)
def test_welch_psd_rejects_bad_input(data: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        welch_psd(data, SFREQ, **kwargs)
    assert "\n" not in str(info.value)


def test_welch_psd_suggests_a_lower_fmax() -> None:
    with pytest.raises(InputError, match="pass fmax=124 or lower"):
        welch_psd(np.ones(1000), SFREQ, fmax=200.0)


def test_spectrum_checks_its_shape() -> None:
    with pytest.raises(InputError, match="one channel name per psd row"):
        Spectrum(np.arange(5.0), np.ones((2, 5)), ("a",))
    assert Spectrum(np.arange(5.0), np.ones(5), ("a",)).psd.shape == (1, 5)


# --- phase-locking value -------------------------------------------------------------------


def test_plv_locked_and_independent() -> None:
    t = times(60)  # ~240 independent phase samples in a 4 Hz band: noise PLV ~ 0.05
    reference = np.sin(2 * np.pi * 40 * t)
    rng = np.random.default_rng(7)
    locked = np.sin(2 * np.pi * 40 * t + 0.8) + 0.5 * rng.standard_normal(t.size)
    noise = rng.standard_normal(t.size)
    assert phase_locking_value(locked, reference, SFREQ, 40.0) > 0.95
    assert phase_locking_value(noise, reference, SFREQ, 40.0) < 0.2
    both = phase_locking_value(np.stack([locked, noise]), reference, SFREQ, 40.0)
    assert isinstance(both, np.ndarray) and both.shape == (2,)
    assert both[0] > 0.95 and both[1] < 0.2


def test_plv_rejects_bad_input() -> None:
    x = np.zeros(1000)
    with pytest.raises(InputError, match="1000 samples but reference has 999"):
        phase_locking_value(x, x[:-1], SFREQ, 40.0)
    with pytest.raises(InputError, match="123-127 Hz"):
        phase_locking_value(x, x, SFREQ, 125.0)
    with pytest.raises(InputError, match="-1-3 Hz"):
        phase_locking_value(x, x, SFREQ, 1.0)


# --- real EEG files ------------------------------------------------------------------------

EEG_SFREQ = 200.0
NAMES = ["Fp1", "Fp2", "C3", "C4", "P3", "P4", "O1", "O2"]


def make_raw(data: np.ndarray, types: str | list[str] = "eeg") -> mne.io.RawArray:
    info = mne.create_info(NAMES[: len(data)], EEG_SFREQ, types)
    return mne.io.RawArray(data, info, verbose="error")


def alpha_eeg(seconds: float = 30.0) -> np.ndarray:
    """8 channels of 10 Hz alpha (20 µV) in pink noise (5 µV), in volts."""
    t = times(seconds, EEG_SFREQ)
    rows = [20e-6 * np.sin(2 * np.pi * 10 * t + k)
            + 5e-6 * power_law_noise(t.size, 1.0, seed=10 + k, sfreq=EEG_SFREQ)
            for k in range(len(NAMES))]
    return np.array(rows)


@pytest.mark.parametrize("suffix", [".edf", "_raw.fif"])
def test_read_eeg_spectrum_finds_the_alpha_peak(tmp_path: Path, suffix: str) -> None:
    data = alpha_eeg()
    path = tmp_path / f"rec{suffix}"
    if suffix == ".edf":
        mne.export.export_raw(path, make_raw(data), verbose="error")  # 16-bit EDF via edfio
    else:
        make_raw(data).save(path, verbose="error")  # export_raw does not write FIF
    spectrum = read_eeg_spectrum(path)
    assert spectrum.channels == tuple(NAMES)
    assert spectrum.freqs[-1] <= EEG_SFREQ / 2 - 1  # fmax=100 lowered below Nyquist
    assert spectral_features(spectrum).alpha_peak_hz == pytest.approx(10.0, abs=0.3)
    # same numbers as a simulation with the same samples (volts in, V²/Hz out)
    direct = welch_psd(data, EEG_SFREQ, fmax=spectrum.freqs[-1])
    np.testing.assert_allclose(spectrum.psd, direct.psd, rtol=1e-2)


def test_read_eeg_spectrum_drops_bad_nan_and_non_eeg_channels(tmp_path: Path) -> None:
    data = alpha_eeg(10)
    data[2] = np.nan
    raw = make_raw(data, ["eeg"] * 6 + ["ecg", "eeg"])
    raw.info["bads"] = ["Fp2"]
    path = tmp_path / "bads_raw.fif"
    raw.save(path, verbose="error")
    spectrum = read_eeg_spectrum(path)
    assert spectrum.channels == ("Fp1", "C4", "P3", "P4", "O2")
    assert np.all(np.isfinite(spectrum.psd))


def test_flat_file_has_no_usable_channels(tmp_path: Path) -> None:
    path = tmp_path / "flat.edf"
    mne.export.export_raw(path, make_raw(np.zeros((8, 2000))), verbose="error")
    with pytest.raises(InputError, match="no usable EEG channels") as info:
        read_eeg_spectrum(path)
    assert "8 are flat" in str(info.value) and str(path) in str(info.value)


def test_file_without_eeg_has_no_usable_channels(tmp_path: Path) -> None:
    path = tmp_path / "ecg_raw.fif"
    make_raw(alpha_eeg(10)[:2], ["ecg", "misc"]).save(path, verbose="error")
    with pytest.raises(InputError, match="no usable EEG channels.*2 are not EEG"):
        read_eeg_spectrum(path)


@pytest.mark.parametrize("name", ["garbage.edf", "notes.txt", "missing.fif"])
def test_unreadable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name != "missing.fif":
        path.write_bytes(b"this is not an EEG recording\n" * 50)
    with pytest.raises(InputError, match=name) as info:
        read_eeg_spectrum(path)
    message = str(info.value)
    assert "does not exist" in message if name == "missing.fif" else "EDF/BDF" in message
