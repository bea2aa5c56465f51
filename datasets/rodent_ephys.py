"""Rodent demo dataset: a short Neuropixels 1.0 recording written in the SpikeGLX format.

Why: `ntdb ingest rodent` reads SpikeGLX with spikeinterface/neo, as for a real rig. No
package ships a SpikeGLX recording, so this writes one: 384 AP channels + sync at 30 kHz
for 0.2 s (int16 .bin and the .meta text SpikeGLX writes, NP1.0 imro table), with
simulated spikes on a few channels over noise. The optogenetic log is a CSV of light
trains, as a laser controller would export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_CHANNELS = 384
RATE = 30000.0
SECONDS = 0.2
AP_GAIN = 500
RANGE_V = 0.6  # imAiRangeMax


def write_spikeglx(folder: Path, run: str = "mouse1", seconds: float = SECONDS,
                   seed: int = 0) -> Path:
    """Write ``<run>_g0_t0.imec0.ap.bin/.meta`` into ``folder``; return the .bin path."""
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    uv_per_bit = RANGE_V / 512 / AP_GAIN * 1e6
    traces = rng.normal(0, 8 / uv_per_bit, size=(n, N_CHANNELS + 1))
    for channel in (40, 41, 200):  # a few units firing at ~20 Hz, -80 uV spikes
        times = rng.choice(n - 30, size=int(20 * seconds), replace=False)
        for t in times:
            traces[t:t + 30, channel] += -80 / uv_per_bit * np.hanning(30)
    traces[:, -1] = (np.arange(n) // int(RATE / 2)) % 2 * 64  # sync: 1 Hz square wave
    data = traces.astype("<i2")
    folder.mkdir(parents=True, exist_ok=True)
    bin_path = folder / f"{run}_g0_t0.imec0.ap.bin"
    data.tofile(bin_path)
    bin_path.with_suffix(".meta").write_text(_meta(bin_path, n), encoding="utf-8")
    return bin_path


def _meta(bin_path: Path, n_samples: int) -> str:
    n_saved = N_CHANNELS + 1
    imro = "".join(f"({c} 0 0 {AP_GAIN} 250 1)" for c in range(N_CHANNELS))
    chan_map = "".join(f"(AP{c};{c}:{c})" for c in range(N_CHANNELS)) + \
        f"(SY0;{N_CHANNELS}:{N_CHANNELS})"
    geom = "".join(f"(0:{[43, 11, 59, 27][c % 4]}:{20 * (c // 2)}:1)" for c in range(N_CHANNELS))
    lines = {
        "acqApLfSy": f"{N_CHANNELS},{N_CHANNELS},1",
        "appVersion": "20230905",
        "fileCreateTime": "2025-07-01T10:00:00",
        "fileName": str(bin_path),
        "fileSizeBytes": str(n_samples * n_saved * 2),
        "fileTimeSecs": f"{n_samples / RATE:.6f}",
        "firstSample": "0",
        "imAiRangeMax": str(RANGE_V),
        "imAiRangeMin": str(-RANGE_V),
        "imDatPrb_pn": "PRB_1_4_0480_1",
        "imDatPrb_sn": "000000000",
        "imDatPrb_type": "0",
        "imMaxInt": "512",
        "imSampRate": str(RATE),
        "nSavedChans": str(n_saved),
        "snsApLfSy": f"{N_CHANNELS},0,1",
        "snsSaveChanSubset": f"0:{N_CHANNELS}",
        "typeThis": "imec",
        "~imroTbl": f"(0,{N_CHANNELS}){imro}",
        "~snsChanMap": f"({N_CHANNELS},{N_CHANNELS},1){chan_map}",
        "~snsGeomMap": f"(NP1000,1,0,70){geom}",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def write_opto_log(path: Path) -> Path:
    """Two 40 Hz blue-light trains (5 ms pulses) over CA1, as a laser controller logs them."""
    path.write_text("onset,duration,wavelength_nm,power_mW,pulse_frequency_Hz,"
                    "pulse_width_ms,site\n"
                    "0.05,0.05,473,5,40,5,CA1\n0.12,0.05,473,5,40,5,CA1\n", encoding="utf-8")
    return path


def build(root: Path) -> list[str]:
    """Ingest one mouse's SpikeGLX run with its optogenetic log into ``root``."""
    import tempfile

    from neurotwin_db.curation.ingest import ingest_rodent

    with tempfile.TemporaryDirectory(prefix="ntdb-demo-sglx-") as tmp:
        folder = Path(tmp)
        write_spikeglx(folder)
        _, result = ingest_rodent(folder, root, subject="m01", task="opto",
                                  strain="C57BL/6J", strain_rrid="RRID:IMSR_JAX:000664",
                                  opto_log=write_opto_log(folder / "opto.csv"))
    assert result is not None
    return result.written
