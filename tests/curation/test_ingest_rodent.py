import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spikeinterface.extractors as se
from neurotwin_db.demo_datasets.rodent_ephys import write_opto_log, write_spikeglx
from pynwb import NWBHDF5IO

from neurotwin_db.catalog import add_dataset
from neurotwin_db.curation.ingest import ingest_rodent
from neurotwin_db.errors import InputError

pytestmark = pytest.mark.datalad


@pytest.fixture(scope="module")
def spikeglx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sglx")
    write_spikeglx(folder, seconds=0.05)
    write_opto_log(folder / "opto.csv")
    return folder


@pytest.fixture
def mice(db):
    add_dataset(db, "mice", modality="rodent")
    return db.root / "mice"


def test_spikeglx_becomes_bep032_with_nwb(spikeglx, mice):
    _, result = ingest_rodent(spikeglx, mice, subject="m01", task="opto", strain="C57BL/6J",
                              strain_rrid="RRID:IMSR_JAX:000664",
                              opto_log=spikeglx / "opto.csv")
    stem = mice / "sub-m01/ecephys/sub-m01_task-opto"
    original = se.read_spikeglx(spikeglx, stream_id="imec0.ap")
    with NWBHDF5IO(str(stem) + "_ecephys.nwb", "r") as io:
        nwb = io.read()
        series = nwb.acquisition["ElectricalSeries"]
        assert np.array_equal(series.data[:], original.get_traces(return_in_uV=False))
        assert series.rate == 30000.0 and len(nwb.electrodes) == 384
        assert nwb.subject.species == "Mus musculus" and nwb.subject.strain == "C57BL/6J"
    sidecar = json.loads(Path(str(stem) + "_ecephys.json").read_text())
    for key in ("PowerLineFrequency", "SamplingFrequency", "SoftwareFilters"):
        assert key in sidecar
    channels = Path(str(stem) + "_channels.tsv").read_text().splitlines()
    assert len(channels) == 385 and channels[0].startswith("name\telectrode_name\ttype")
    electrodes = (mice / "sub-m01/ecephys/sub-m01_electrodes.tsv").read_text().splitlines()
    assert electrodes[0] == "name\tprobe_name\tx\ty\tz" and len(electrodes) == 385
    assert "PRB_1_4_0480_1" in (mice / "sub-m01/ecephys/sub-m01_probes.tsv").read_text()
    events = Path(str(stem) + "_events.tsv").read_text().splitlines()
    assert events[1].split("\t")[:3] == ["0.05", "0.05", "optogenetics"]
    opto = json.loads(Path(str(stem) + "_optogenetics.json").read_text())
    assert opto["OptogeneticStimulation"][0]["Wavelength"] == "473"
    participants = (mice / "participants.tsv").read_text()
    assert "sub-m01\tmus musculus" in participants and "RRID:IMSR_JAX:000664" in participants
    assert "**/ecephys" in (mice / ".bidsignore").read_text()
    assert "BEP032" in (mice / "README.md").read_text()
    proc = subprocess.run([str(Path(sys.executable).parent / "bids-validator-deno"), "--json",
                           str(mice)], capture_output=True, text=True)
    errors = [i for i in json.loads(proc.stdout)["issues"]["issues"] if i["severity"] == "error"]
    assert errors == []
    _, again = ingest_rodent(spikeglx, mice, subject="m01", task="opto", strain="C57BL/6J",
                             strain_rrid="RRID:IMSR_JAX:000664", opto_log=spikeglx / "opto.csv")
    assert again.written == [] and not again.saved
    assert result.saved


def test_meta_that_disagrees_with_the_bin_is_refused(spikeglx, mice, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(spikeglx, bad)
    binary = next(bad.glob("*.ap.bin"))
    binary.write_bytes(binary.read_bytes()[:-770])  # a run cut short by 1 sample
    with pytest.raises(InputError, match="holds .* bytes; the recording was cut short"):
        ingest_rodent(bad, mice, subject="m01", task="rec")
    assert not (mice / "sub-m01").exists()


def test_rodent_needs_an_animal_and_a_good_opto_log(spikeglx, mice, tmp_path):
    with pytest.raises(InputError, match="animal species"):
        ingest_rodent(spikeglx, mice, subject="m01", task="rec", species="homo sapiens")
    log = tmp_path / "opto.csv"
    log.write_text("onset,duration,wavelength_nm\n0,1,473\n")
    with pytest.raises(InputError, match="lacks"):
        ingest_rodent(spikeglx, mice, subject="m01", task="rec", opto_log=log)
    assert not (mice / "sub-m01").exists()
