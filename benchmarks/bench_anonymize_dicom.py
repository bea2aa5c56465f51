"""`ntdb anonymize-dicom` vs the pydicom I/O floor and vs deid alone, same files, one run.

    python benchmarks/bench_anonymize_dicom.py [--files 5000] [--jobs 2] [--repeat 3]
                                               [--rounds-per-series 20] [--profile]

Input: the real DICOM files of the test corpus that anonymize-dicom writes (pydicom's
examples_overlay, waveform_ecg, CT_small, MR_small and the dicomdirtests images, and
nibabel's Siemens 0.dcm/1.dcm: 87 files in 19 series), copied round-robin into FILES
files. Every --rounds-per-series rounds get new Study and Series UIDs (series keep their
files together, as in real data; 20 rounds make series of ~92 files) and every file a new
SOP Instance UID. anonymize-dicom writes PSEUDONYM/STUDY/SERIES/ folders, so small series
cost it a folder per few files (the floor writes one flat folder). Timed, each writing
every file to its own scratch folder:

1. floor: pydicom read + write of each file (one process, and through the same process
   pool as ntdb when --jobs > 1);
2. deid alone: deid.dicom.replace_identifiers (remove_private=True) + write, once with
   deid's default recipe and once with the ntdb recipe (its hooks given as deid ids);
3. ntdb: anonymize_dicom with one process and with --jobs processes.

The floor and ntdb phases run --repeat times, interleaved, and the best time counts
(deid, being slow, runs once). Prints JSON with seconds, files per second and the ratios
ntdb/floor and ntdb/deid.
--profile also prints the top of a cProfile of ntdb in one process.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

CORPUS = ("examples_overlay.dcm", "waveform_ecg.dcm", "CT_small.dcm", "MR_small.dcm")


def corpus_files() -> list[Path]:
    """The corpus files anonymize-dicom writes (no pixel-risk files, no DICOMDIRs)."""
    import nibabel
    import pydicom

    from neurotwin_db.curation.phi._pixels import pixel_risk

    tests = Path(pydicom.__file__).parent / "data" / "test_files"
    nicom = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    found = [tests / name for name in CORPUS] + [nicom / "0.dcm", nicom / "1.dcm"]
    for path in sorted((tests / "dicomdirtests").rglob("*")):
        if path.is_file() and "DICOMDIR" not in path.name and "README" not in path.name:
            found.append(path)
    return [p for p in found if pixel_risk(pydicom.dcmread(p)) is None]


def make_input(folder: Path, n_files: int, rounds_per_series: int = 1) -> int:
    """Copy the corpus round-robin into ``n_files`` files with fresh UIDs.

    Every ``rounds_per_series`` rounds of copies get new Study and Series UIDs (one per
    original study and series, so series keep their files together); every file gets a
    new SOP Instance UID. With 1, a series holds 4.6 files on average (the corpus's own
    series): anonymize-dicom then makes a folder for every 4.6 files it writes.
    """
    import pydicom
    from pydicom.uid import generate_uid

    originals = [pydicom.dcmread(p) for p in corpus_files()]
    old = [(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)) for ds in originals]
    for i in range(n_files):
        ds = originals[i % len(originals)]
        study, series = old[i % len(originals)]
        round_ = str(i // (len(originals) * rounds_per_series))
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[study, round_])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[series, round_])
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        target = folder / f"{i // 500:03d}" / f"{i:06d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
    return n_files


def floor_one(item: tuple[str, str]) -> None:
    """Read one file with pydicom and write it back (the I/O floor)."""
    import pydicom

    source, target = item
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmread(source).save_as(target)


def run_floor(files: list[Path], out: Path, jobs: int) -> float:
    from neurotwin_db.parallel import map_tasks

    items = [(str(f), str(out / f"{i:06d}.dcm")) for i, f in enumerate(files)]
    start = time.perf_counter()
    if jobs == 1:
        for item in items:
            floor_one(item)
    else:
        map_tasks(floor_chunk, [items[i:i + 64] for i in range(0, len(items), 64)],
                  jobs=jobs)
    return time.perf_counter() - start


def floor_chunk(items: list[tuple[str, str]]) -> None:
    """A batch of floor_one (the pool gets batches, as ntdb's does)."""
    for item in items:
        floor_one(item)


def run_deid(files: list[Path], out: Path, recipe: str | None, key: object) -> float:
    import pydicom
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    from neurotwin_db.curation.anonymize.dicom import _quiet_deid, _uid_hook

    out.mkdir(parents=True)
    parsed = DeidRecipe(recipe) if recipe else DeidRecipe()
    ids: dict[str, dict[str, object]] = {}
    if recipe:  # the ntdb hooks, the way deid takes per-file values (not timed)
        for path in files:
            subject = str(pydicom.dcmread(path, stop_before_pixels=True).PatientID)
            ids[os.path.abspath(path)] = {"ntdb_pseudonym": key.pseudonym(subject),
                                          "ntdb_date_shift": key.date_offset(subject).days,
                                          "ntdb_uid": _uid_hook(key)}
    start = time.perf_counter()
    with _quiet_deid(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, path in enumerate(files):
            ds = replace_identifiers([str(path)], deid=parsed, ids=ids,
                                     remove_private=True)[0]
            ds.save_as(out / f"{i:06d}.dcm")
    return time.perf_counter() - start


def run_ntdb(src: Path, out: Path, key: object, jobs: int, profile: bool = False) -> float:
    from neurotwin_db.curation.anonymize.dicom import anonymize_dicom

    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    result = anonymize_dicom(src, out, key=key, jobs=jobs)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - start
    assert result.ok and not result.quarantined, result.failed[:3]
    if profiler:
        stats = io.StringIO()
        pstats.Stats(profiler, stream=stats).sort_stats("cumulative").print_stats(25)
        print(stats.getvalue())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the floor and ntdb phases (the best counts)")
    parser.add_argument("--profile", action="store_true", help="cProfile ntdb (one process)")
    parser.add_argument("--rounds-per-series", type=int, default=20,
                        help="rounds of copies that share a series: 20 (default) gives ~92 "
                             "files a series, as in a real MR or CT series; 1 gives the "
                             "corpus's own 4.6, a new output folder every 4.6 files")
    args = parser.parse_args()

    from neurotwin_db.curation.anonymize import load_key
    from neurotwin_db.curation.anonymize.dicom import PROJECT_RECIPE

    work = Path(tempfile.mkdtemp(prefix="ntdb-bench-deid-"))
    try:
        src = work / "src"
        make_input(src, args.files, args.rounds_per_series)
        files = sorted(src.rglob("*.dcm"))
        size = sum(f.stat().st_size for f in files)
        key = load_key(work / "keys" / "bench.key", new=True)
        times: dict[str, list[float]] = {}
        for rep in range(args.repeat):  # interleaved, best of N: the machine may be shared
            for name, jobs in (("floor_1", 1), ("floor_n", args.jobs), ("ntdb_1", 1),
                               ("ntdb_n", args.jobs)):
                out = work / f"{name}-{rep}"
                if name.startswith("floor"):
                    seconds = run_floor(files, out, jobs)
                else:
                    seconds = run_ntdb(src, out, key, jobs, args.profile and jobs == 1 and not rep)
                times.setdefault(name, []).append(seconds)
                shutil.rmtree(out)
        floor_1, floor_n, ntdb_1, ntdb_n = (min(times[n]) for n in
                                            ("floor_1", "floor_n", "ntdb_1", "ntdb_n"))
        deid_default = run_deid(files, work / "deid-default", None, key)
        deid_ntdb = run_deid(files, work / "deid-ntdb", str(PROJECT_RECIPE), key)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    figures = {
        "files": len(files), "megabytes": round(size / 1e6, 1), "jobs": args.jobs,
        "rounds_per_series": args.rounds_per_series,
        "repeat": args.repeat, "load_average_1min": round(os.getloadavg()[0], 2),
        "floor_1_process_s": round(floor_1, 2), f"floor_{args.jobs}_processes_s":
            round(floor_n, 2),
        "deid_default_recipe_s": round(deid_default, 2),
        "deid_ntdb_recipe_s": round(deid_ntdb, 2),
        "ntdb_1_process_s": round(ntdb_1, 2), f"ntdb_{args.jobs}_processes_s": round(ntdb_n, 2),
        "files_per_s_ntdb": round(len(files) / ntdb_n, 1),
        "ratio_ntdb_over_floor_1_process": round(ntdb_1 / floor_1, 2),
        # each repeat runs both back to back: the median of those pairs resists the drift
        # of a shared machine better than the ratio of two minima
        "ratio_ntdb_over_floor_1_process_median_of_pairs": round(statistics.median(
            n / f for n, f in zip(times["ntdb_1"], times["floor_1"], strict=True)), 2),
        f"ratio_ntdb_over_floor_{args.jobs}_processes": round(ntdb_n / floor_n, 2),
        "ratio_ntdb_over_deid_default_1_process": round(ntdb_1 / deid_default, 3),
        "ratio_ntdb_over_deid_ntdb_recipe_1_process": round(ntdb_1 / deid_ntdb, 3),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
