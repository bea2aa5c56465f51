"""`ntdb ingest dicom` vs dcm2niix alone on the same 1,000 DICOM files, in one run.

    python benchmarks/bench_ingest_dicom.py [--series 500] [--out bench-out]

The input is nibabel's two Siemens DWI slices copied into SERIES series with new UIDs
(2 x SERIES files). dcm2niix alone converts them into a scratch folder with the flags
the ingest uses (-b y -ba y -z y). The ingest is timed in its two phases: convert and
name (dcm2niix + heuristic + plan), then write (copy into the DataLad dataset,
scans.tsv/participants.tsv) and record it with one `datalad save`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def make_series(folder: Path, n_series: int) -> int:
    """Copy nibabel's 0.dcm/1.dcm into ``n_series`` series with fresh UIDs."""
    import nibabel
    import pydicom
    from pydicom.uid import generate_uid

    data = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    originals = [pydicom.dcmread(data / name) for name in ("0.dcm", "1.dcm")]
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for s in range(n_series):
        series_uid = generate_uid()
        for i, ds in enumerate(originals):
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesNumber = s + 1
            ds.save_as(folder / f"s{s:04d}_{i}.dcm")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()

    from neurotwin_db.catalog import add_dataset, init_database
    from neurotwin_db.curation.ingest import apply_plan, plan_dicom
    from neurotwin_db.curation.ingest.dicom import dcm2niix_binary

    work = Path(tempfile.mkdtemp(prefix="ntdb-bench-dicom-", dir=args.out if
                                 args.out.exists() else None))
    src = work / "dicom"
    n_files = make_series(src, args.series)

    scratch = work / "dcm2niix-alone"
    scratch.mkdir()
    (work / "ingest-scratch").mkdir()
    t = time.perf_counter()
    subprocess.run([dcm2niix_binary(), "-b", "y", "-ba", "y", "-z", "y", "-f", "%t_%s",
                    "-o", str(scratch), str(src)], check=True, capture_output=True)
    alone = time.perf_counter() - t

    db = init_database(work / "db")
    add_dataset(db, "mri", modality="mri")
    t = time.perf_counter()
    plan = plan_dicom(src, db.root / "mri", subject="01", workdir=work / "ingest-scratch")
    planned = time.perf_counter() - t
    t = time.perf_counter()
    result = apply_plan(plan)
    applied = time.perf_counter() - t

    figures = {"dicom_files": n_files, "series": args.series,
               "files_written": len(result.written),
               "dcm2niix_alone_s": round(alone, 2),
               "ntdb_convert_and_name_s": round(planned, 2),
               "ntdb_write_and_datalad_save_s": round(applied, 2),
               "ratio_convert_and_name": round(planned / alone, 2),
               "ratio_total": round((planned + applied) / alone, 2)}
    print(json.dumps(figures, indent=2))
    print(f"\nconvert + name: {planned:.1f} s vs dcm2niix alone {alone:.1f} s = "
          f"{planned / alone:.2f}x; with copying and the DataLad record "
          f"({applied:.1f} s): {(planned + applied) / alone:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
