"""The PHI test corpus: real identifying files from installed packages, plus EEG we write.

- DICOM: pydicom's ``examples_overlay.dcm``, ``waveform_ecg.dcm``, ``CT_small.dcm``,
  ``MR_small.dcm``, ``dicomdirtests/`` and the three ultrasound files with burned-in
  text, and nibabel's Siemens ``0.dcm``/``1.dcm``;
- sidecars as dcm2niix writes them when asked to keep identifiers (``-ba n``);
- EEG written with MNE as EDF, BDF, BrainVision and FIF, with a name, a birth date and a
  hospital ID in the headers (no package ships real EEG);
- a participants.tsv with names, birth dates, addresses and an age above 89;
- a NIfTI whose header text and extension hold a name.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import nibabel
import numpy as np
import pydicom

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
NIBABEL_DICOM = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
DICOM_NAMES = ("examples_overlay.dcm", "waveform_ecg.dcm", "CT_small.dcm", "MR_small.dcm")
ULTRASOUND = ("examples_rgb_color.dcm", "examples_ybr_color.dcm", "examples_palette.dcm")

FIRST, LAST = "Johanna", "Testperson"
BIRTHDAY = date(1948, 3, 15)
HIS_ID = "MRN0012345"
MEAS_DATE = datetime(2024, 5, 6, 10, 11, 12, tzinfo=UTC)
PARTICIPANTS = [("01", "Erika Mustermann", "1931-02-03", "Hauptstrasse 12, Berlin", "93"),
                ("02", "Max Mustermann", "1950-07-08", "Musterweg 3, Bonn", "74"),
                ("03", "Johanna Testperson", "1948-03-15", "Lindenallee 7, Graz", "76"),
                ("04", "Ottilie Beispiel", "1952-11-30", "Am Ring 5, Wien", "71")]
KNOWN = [f"{FIRST} {LAST}", HIS_ID, BIRTHDAY.isoformat(), "Erika Mustermann",
         "Max Mustermann", "Ottilie Beispiel", "Hauptstrasse 12", "Musterweg 3",
         "Lindenallee 7", "1931-02-03", "1950-07-08", "1952-11-30"]


@dataclass
class Corpus:
    """Where the corpus is and what was planted in which file."""

    root: Path
    planted: dict[str, list[str]] = field(default_factory=dict)  # rel path -> values

    def plant(self, rel: str, *values: str) -> None:
        """Note values planted in ``rel`` (skipping empty and trivial ones)."""
        keep = [v for v in values if v and len(v.strip()) >= 4]
        if keep:
            self.planted.setdefault(rel, []).extend(keep)


def dicom_identifiers(path: Path) -> list[str]:
    """The identifying values a DICOM file holds (names, dates of birth, IDs, sites)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keywords = {"PatientID", "PatientBirthDate", "PatientAddress", "InstitutionName",
                "InstitutionAddress", "StationName", "DeviceSerialNumber", "OtherPatientIDs"}
    values = []
    for elem in ds.iterall():
        if elem.VR == "PN" or elem.keyword in keywords:
            text = str(elem.value).strip()
            if text and text.upper() not in ("ANONYMOUS", "----"):
                values.append(text)
    return values


def add_dicoms(corpus: Corpus, folder: str = "dicom") -> Path:
    """Copy the real identifying DICOM files into ``folder``."""
    out = corpus.root / folder
    out.mkdir(parents=True, exist_ok=True)
    sources = [PYDICOM_FILES / n for n in DICOM_NAMES + ULTRASOUND]
    sources += [NIBABEL_DICOM / "0.dcm", NIBABEL_DICOM / "1.dcm"]
    for src in sources:
        name = f"nibabel_{src.name}" if src.parent == NIBABEL_DICOM else src.name
        shutil.copyfile(src, out / name)
        corpus.plant(f"{folder}/{name}", *dicom_identifiers(src))
    tree = PYDICOM_FILES / "dicomdirtests"
    for src in sorted(tree.rglob("*")):
        if src.is_file():
            rel = f"{folder}/dicomdirtests/{src.relative_to(tree).as_posix()}"
            (corpus.root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, corpus.root / rel)
            if src.name != "DICOMDIR" and not src.name.startswith("README"):
                corpus.plant(rel, *dicom_identifiers(src))
    return out


def dcm2niix_sidecars(corpus: Corpus, folder: str) -> list[Path]:
    """Convert nibabel's Siemens DWI with dcm2niix keeping identifiers (``-ba n``)."""
    from neurotwin_db.curation.ingest.dicom import dcm2niix_binary

    src = corpus.root / ".dcm2niix-src"
    src.mkdir(exist_ok=True)
    for name in ("0.dcm", "1.dcm"):
        shutil.copyfile(NIBABEL_DICOM / name, src / name)
    out = corpus.root / folder
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([dcm2niix_binary(), "-b", "y", "-ba", "n", "-z", "y", "-f", "dwi",
                    "-o", str(out), str(src)], check=True, capture_output=True)
    shutil.rmtree(src)
    return sorted(out.iterdir())


def raw_with_names(sfreq: float = 256.0):  # noqa: ANN201 - mne.io.RawArray
    """A short 8-channel recording with a name, birth date and ID in its info."""
    import mne

    info = mne.create_info([f"EEG{i:03d}" for i in range(8)], sfreq, "eeg")
    rng = np.random.default_rng(7)
    raw = mne.io.RawArray(rng.normal(0, 1e-5, (8, int(2 * sfreq))), info, verbose="error")
    raw.set_meas_date(MEAS_DATE)
    with raw.info._unlock():
        raw.info["subject_info"] = {"first_name": FIRST, "last_name": LAST,
                                    "birthday": BIRTHDAY, "his_id": HIS_ID, "sex": 2}
        raw.info["experimenter"] = "Dr Smith"
    return raw


def write_eeg(path: Path, fmt: str) -> Path:
    """Write the named recording as ``fmt`` (edf, bdf, brainvision, fif)."""
    import mne

    raw = raw_with_names()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "fif":
            raw.save(path, overwrite=True, verbose="error")
        else:
            mne.export.export_raw(path, raw, fmt=fmt, overwrite=True, verbose="error")
    if fmt == "brainvision":  # Recorder writes free-text comments; plant a name there
        text = path.read_text(encoding="utf-8")
        if "[Comment]" not in text:
            text += "\n[Comment]\n"
        text += f"\nPatient: {FIRST} {LAST}, born {BIRTHDAY:%d.%m.%Y}, {HIS_ID}\n"
        path.write_text(text, encoding="utf-8")
    return path


def participants_tsv(path: Path) -> Path:
    """participants.tsv with names, birth dates, addresses and an age above 89."""
    lines = ["participant_id\tname\tbirth_date\taddress\tage\tsex"]
    lines += [f"sub-{label}\t{name}\t{born}\t{address}\t{age}\tF"
              for label, name, born, address, age in PARTICIPANTS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def nifti_with_name(path: Path, image: nibabel.Nifti1Image | None = None) -> Path:
    """A NIfTI whose descrip, aux_file and a header extension hold a name."""
    image = image or nibabel.Nifti1Image(np.arange(1000, dtype=np.int16).reshape(10, 10, 10),
                                         np.eye(4))
    image = nibabel.Nifti1Image(np.asanyarray(image.dataobj), image.affine, image.header)
    image.header["descrip"] = f"{LAST} {BIRTHDAY:%Y%m%d}".encode()
    image.header["aux_file"] = HIS_ID.encode()
    image.header.extensions.append(nibabel.nifti1.Nifti1Extension(
        6, f"PatientName={LAST}^{FIRST}".encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(image, path)
    return path


def build_scan_corpus(root: Path) -> Corpus:
    """A folder of identifying files of every kind phi-scan reads."""
    corpus = Corpus(root)
    add_dicoms(corpus)
    for path in dcm2niix_sidecars(corpus, "dcm2niix"):
        if path.suffix == ".json":
            import json

            data = json.loads(path.read_text())
            corpus.plant(f"dcm2niix/{path.name}", *[str(data.get(k, "")) for k in (
                "PatientName", "PatientID", "PatientBirthDate", "StationName",
                "DeviceSerialNumber", "InstitutionName")])
    name = f"{FIRST} {LAST}"
    for fmt, filename in (("edf", "rec.edf"), ("bdf", "rec.bdf"), ("fif", "rec_raw.fif")):
        write_eeg(root / "eeg" / filename, fmt)
        corpus.plant(f"eeg/{filename}", name, BIRTHDAY.isoformat(), HIS_ID)
    write_eeg(root / "eeg" / "rec.vhdr", "brainvision")
    corpus.plant("eeg/rec.vhdr", name)
    participants_tsv(root / "participants.tsv")
    corpus.plant("participants.tsv", *[p[1] for p in PARTICIPANTS], *[p[2] for p in PARTICIPANTS])
    nifti_with_name(root / "anat" / "image.nii.gz")
    corpus.plant("anat/image.nii.gz", LAST, HIS_ID)
    (root / "README").write_text(f"Contact the study nurse: nurse.jane@clinic-example.org, "
                                 f"+49 30 1234 5678.\nSession notes for {name}.\n")
    corpus.plant("README", "nurse.jane@clinic-example.org", "+49 30 1234 5678", name)
    (root / f"notes_{LAST}.txt").write_text("follow-up in two weeks\n")
    corpus.plant(f"notes_{LAST}.txt", LAST)
    return corpus
