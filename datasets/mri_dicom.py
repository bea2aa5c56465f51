"""MRI demo dataset converted from real DICOM files with `ntdb ingest dicom`.

Why: the ingest path end to end, on real scanner files with identifying tags: nibabel
ships a Philips MPRAGE (T1w, 256x256x176) and two Siemens diffusion slices (b=0 and
b=1000), gzipped. They are decompressed into a scratch folder (the package files are only
read) and converted by dcm2niix; the heuristic names them T1w and dwi.
Source: nibabel/nicom/tests/data/{philips_mprage,siemens_dwi_0,siemens_dwi_1000}.dcm.gz
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

SOURCES = ("philips_mprage", "siemens_dwi_0", "siemens_dwi_1000")


def write_sources(folder: Path) -> Path:
    """Decompress the shipped DICOMs into ``folder``."""
    import nibabel

    data = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        with gzip.open(data / f"{name}.dcm.gz") as src, open(folder / f"{name}.dcm", "wb") as out:
            shutil.copyfileobj(src, out)
    return folder


def build(root: Path) -> list[str]:
    """Ingest the DICOMs as sub-01 of the dataset at ``root``; return the files written."""
    from neurotwin_db.curation.ingest import ingest_dicom

    with tempfile.TemporaryDirectory(prefix="ntdb-demo-dicom-") as tmp:
        _, result = ingest_dicom(write_sources(Path(tmp) / "dicom"), root, subject="01")
    assert result is not None
    return result.written
