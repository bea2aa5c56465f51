"""MRI demo dataset from the MNI ICBM152 2009a template that ships inside nilearn.

Why: a real anatomical image with a real NIfTI header to catalogue and fetch, and real
grey/white-matter probability maps of the same head as a derivative that cites it.
Source: nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz
(Fonov et al. 2011, NeuroImage 54:313; 2009a nonlinear symmetric).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from neurotwin_db._io import write_json, write_tsv
from neurotwin_db.bidspath import BIDSPath

SUBJECT = "MNI152"
SPACE = "MNI152NLin2009aSym"
CITATION = "Fonov et al. 2011, NeuroImage 54(1):313-327, doi:10.1016/j.neuroimage.2010.07.033"


def template_file(kind: str) -> Path:
    """Path of the nilearn template file ``kind`` (t1, gm or wm); it is only read."""
    import nilearn.datasets

    data = Path(nilearn.datasets.__file__).parent / "data"
    return data / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"


def build_raw(root: Path) -> list[Path]:
    """Write sub-MNI152's T1w image and sidecar, and the participants row."""
    t1w = BIDSPath.create(root=root, sub=SUBJECT, datatype="anat", suffix="T1w",
                          extension=".nii.gz")
    Path(t1w).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_file("t1"), t1w)
    sidecar = write_json(Path(t1w.with_(extension=".json")), {
        "Description": "MNI ICBM152 2009a nonlinear symmetric T1w template, as shipped "
                       "by nilearn; an average of 152 adult heads, not one person.",
        "References": CITATION,
    })
    participants = write_tsv(root / "participants.tsv",
                             ["participant_id", "species", "age", "sex", "group"],
                             [[f"sub-{SUBJECT}", "homo sapiens", None, None, "template"]],
                             overwrite=True)
    return [Path(t1w), sidecar, participants]


def build_tissue_derivative(root: Path) -> list[Path]:
    """Write the GM and WM probability maps into the derivative at ``root``."""
    written = []
    for label, kind in (("GM", "gm"), ("WM", "wm")):
        path = BIDSPath.create(root=root, sub=SUBJECT, space=SPACE, label=label,
                               datatype="anat", suffix="probseg", extension=".nii.gz")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_file(kind), path)
        written.append(Path(path))
    written.append(write_json(root / "space-MNI152NLin2009aSym_probseg.json",
                              {"Description": "Tissue probability from the MNI ICBM152 2009a "
                                              "template.", "References": CITATION}))
    return written
