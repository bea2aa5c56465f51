"""`ntdb phi-scan` throughput (MB/s) on 5,000 real DICOM files, against a plain pydicom read.

    python benchmarks/bench_phi_scan.py [--files 5000] [--out DIR]

The input is the identifying DICOM files that ship with pydicom and nibabel (the PHI test
corpus, ultrasound files included) copied with new UIDs until there are FILES of them.
The floor is reading every file with pydicom and touching every element (one process);
phi-scan runs as the CLI does, on local processes through neurotwin_db.parallel.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def make_files(folder: Path, n_files: int) -> int:
    """Copy the real identifying DICOMs, with new UIDs, until there are ``n_files``."""
    import nibabel
    import pydicom
    from pydicom.uid import generate_uid

    data = Path(pydicom.__file__).parent / "data" / "test_files"
    names = ["examples_overlay.dcm", "waveform_ecg.dcm", "CT_small.dcm", "MR_small.dcm",
             "examples_rgb_color.dcm", "examples_ybr_color.dcm", "examples_palette.dcm"]
    sources = [data / n for n in names]
    sources += sorted(p for p in (data / "dicomdirtests").rglob("*")
                      if p.is_file() and p.name != "DICOMDIR" and "README" not in p.name)
    sources += [Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / n
                for n in ("0.dcm", "1.dcm")]
    originals = [pydicom.dcmread(p) for p in sources]
    folder.mkdir(parents=True, exist_ok=True)
    size = 0
    for i in range(n_files):
        ds = originals[i % len(originals)]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / f"{i // 500:02d}" / f"f{i:05d}.dcm"
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path)
        size += path.stat().st_size
    return size


def read_all(folder: Path) -> int:
    """The floor: read every file and walk every element, nested ones included."""
    import pydicom

    count = 0
    for path in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(path, defer_size="4 KB")
        for elem in ds.iterall():
            count += elem.VM >= 0
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from neurotwin_db.curation.phi import scan_phi

    work = Path(tempfile.mkdtemp(prefix="ntdb-bench-phi-", dir=args.out))
    src = work / "dicom"
    size = make_files(src, args.files)
    mb = size / 1e6
    t = time.perf_counter()
    read_all(src)
    floor = time.perf_counter() - t
    t = time.perf_counter()
    report = scan_phi(src)
    scan = time.perf_counter() - t
    t = time.perf_counter()
    scan_phi(src, jobs=1)
    scan_one = time.perf_counter() - t
    figures = {"files": args.files, "megabytes": round(mb, 1),
               "pydicom_read_all_s": round(floor, 2),
               "phi_scan_s": round(scan, 2), "phi_scan_one_process_s": round(scan_one, 2),
               "phi_scan_MB_per_s": round(mb / scan, 1),
               "pydicom_read_MB_per_s": round(mb / floor, 1),
               "ratio_scan_to_read": round(scan / floor, 2),
               "findings": len(report), "files_failing_the_gate":
                   len({i.path for i in report if i.severity >= 30})}
    print(json.dumps(figures, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
