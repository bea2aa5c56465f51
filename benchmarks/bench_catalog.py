"""Catalog build vs pybids BIDSLayout on the same ~100k-file BIDS tree, in one run.

    python benchmarks/bench_catalog.py [--subjects 2000] [--out bench-out]

Each indexer runs in its own child process of this script, so wall time and peak
memory (ru_maxrss from wait4) are measured the same way for both, imports included.
Then it checks that every file's entities are the same in both indexes, and times
search latency (p50/p95) on an open catalog, with pybids ``layout.get`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

FILES_PER_SUBJECT = 50


def subject_files(sub: str) -> dict[str, str]:
    """The 50 files of one subject (tiny contents; JSON sidecars at subject and file level)."""
    files: dict[str, str] = {}
    a, f, e = f"sub-{sub}/anat/sub-{sub}", f"sub-{sub}/func/sub-{sub}", f"sub-{sub}/eeg/sub-{sub}"
    for mod in ("T1w", "T2w", "FLAIR"):
        files[f"{a}_{mod}.nii.gz"] = "nii"
        if mod != "FLAIR":
            files[f"{a}_{mod}.json"] = json.dumps({"EchoTime": 0.003 if mod == "T1w" else 0.08})
    files[f"{a}_acq-lowres_T1w.nii.gz"] = "nii"
    for task in ("rest", "memory"):
        files[f"sub-{sub}/sub-{sub}_task-{task}_bold.json"] = json.dumps({"RepetitionTime": 2.0})
        for run in (1, 2, 3):
            stem = f"{f}_task-{task}_run-{run}"
            files[f"{stem}_bold.nii.gz"] = "nii"
            files[f"{stem}_events.tsv"] = "onset\tduration\n0\t1\n"
            files[f"{stem}_bold.json"] = json.dumps({"SliceTimingCorrected": run == 1})
    files[f"sub-{sub}/sub-{sub}_task-rest_eeg.json"] = json.dumps({"SamplingFrequency": 500})
    for run in (1, 2, 3, 4):
        stem = f"{e}_task-rest_run-{run}"
        files[f"{stem}_eeg.edf"] = "edf"
        files[f"{stem}_channels.tsv"] = "name\ttype\tunits\nCz\tEEG\tuV\n"
        files[f"{stem}_events.tsv"] = "onset\tduration\n0\t1\n"
    files[f"{e}_space-CapTrak_electrodes.tsv"] = "name\tx\ty\tz\nCz\t0\t0\t1\n"
    files[f"{e}_space-CapTrak_coordsystem.json"] = json.dumps({"EEGCoordinateUnits": "m"})
    d = f"sub-{sub}/dwi/sub-{sub}"
    files[f"{d}_dwi.nii.gz"] = "nii"
    files[f"{d}_dwi.bval"] = "0 1000\n"
    files[f"{d}_dwi.bvec"] = "0 1\n0 0\n0 0\n"
    files[f"{d}_dwi.json"] = json.dumps({"PhaseEncodingDirection": "j-"})
    m = f"sub-{sub}/fmap/sub-{sub}"
    for name in ("magnitude1", "magnitude2", "phasediff"):
        files[f"{m}_{name}.nii.gz"] = "nii"
    files[f"{m}_phasediff.json"] = json.dumps({"EchoTime1": 0.004, "EchoTime2": 0.006})
    files[f"sub-{sub}/sub-{sub}_scans.tsv"] = "filename\tacq_time\n"
    assert len(files) == FILES_PER_SUBJECT, len(files)
    return files


def generate(root: Path, n_subjects: int) -> int:
    """Write the tree once (reused when the marker says it has the same size)."""
    marker = root / ".generated"
    if marker.is_file() and marker.read_text() == str(n_subjects):
        return sum(1 for _ in root.rglob("*") if _.is_file()) - 1
    subs = [f"{i:05d}" for i in range(1, n_subjects + 1)]
    top = {
        "dataset_description.json": json.dumps({"Name": "bench", "BIDSVersion": "1.10.0"}),
        "README": "synthetic benchmark tree\n",
        "participants.tsv": "participant_id\tage\n" + "".join(
            f"sub-{s}\t{20 + int(s) % 60}\n" for s in subs),
        "participants.json": json.dumps({"age": {"Description": "age", "Units": "year"}}),
        "task-rest_bold.json": json.dumps({"TaskName": "rest", "RepetitionTime": 2.5}),
        "task-memory_bold.json": json.dumps({"TaskName": "memory", "RepetitionTime": 2.5}),
        "task-rest_eeg.json": json.dumps({"TaskName": "rest", "SamplingFrequency": 250,
                                          "PowerLineFrequency": 50}),
    }
    count = 0
    for rel, text in top.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        count += 1
    for sub in subs:
        for rel, text in subject_files(sub).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            count += 1
    marker.write_text(str(n_subjects))
    return count


def run_child(code: str) -> tuple[float, int, str]:
    """Run ``code`` in a fresh interpreter; return (wall s, peak RSS MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"child failed:\n{code}")
    return wall, usage.ru_maxrss // 1024, out


NTDB_CHILD = """
import time, json
t = time.perf_counter()
from neurotwin_db.catalog import build_catalog
r = build_catalog({root!r}, out={out!r}, save=False)
print(json.dumps({{"index_s": time.perf_counter() - t, "files": r.files,
                  "issues": len(r.report)}}))
"""

PYBIDS_CHILD = """
import time, json, random, statistics
t = time.perf_counter()
from bids import BIDSLayout
layout = BIDSLayout({root!r}, validate=False)
index_s = time.perf_counter() - t
subs = layout.get_subjects()
rng = random.Random(0)
lat = []
for i in range(40):
    t0 = time.perf_counter()
    layout.get(subject=rng.choice(subs), suffix="bold", extension=".nii.gz")
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
ents = {{}}
for f in layout.get(return_type="object"):
    e = {{k: str(v) for k, v in f.get_entities().items()}}
    ents[f.relpath] = e
json.dump(ents, open({dump!r}, "w"))
print(json.dumps({{"index_s": index_s, "files": len(ents), "p50_ms": lat[len(lat) // 2],
                  "p95_ms": lat[int(len(lat) * 0.95) - 1]}}))
"""


def compare_entities(catalog_dir: Path, dump: Path) -> dict[str, int]:
    """Compare every file's entities in the catalog with pybids' entities."""
    from neurotwin_db.bidspath import entity_specs
    from neurotwin_db.catalog import Catalog

    long_to_short = {spec.name: key for key, spec in entity_specs().items()}
    pybids = json.loads(dump.read_text())
    catalog = Catalog(catalog_dir)
    keys = list(long_to_short.values())
    quoted = ", ".join(f'"{k}"' for k in keys)  # desc is an SQL keyword
    rows = catalog.sql(f"SELECT path, datatype, suffix, extension, {quoted} "
                       f"FROM files WHERE bids")
    checked = mismatched = missing = 0
    for row in rows:
        theirs = pybids.get(row["path"])
        if theirs is None:
            missing += 1
            continue
        ours = {k: row[k] for k in keys if row[k] is not None}
        # pybids adds pseudo-entities that are not BIDS entities ('fmap', 'scans'): skip them
        mapped = {long_to_short.get(k, k): v for k, v in theirs.items()
                  if k in long_to_short or k in ("datatype", "suffix", "extension")}
        if ours:  # datatype/suffix/extension are compared for BIDS-named files; pybids
            # also derives a 'suffix' for top-level files (dataset_description -> description)
            for part in ("datatype", "suffix", "extension"):
                if row[part] is not None:
                    ours[part] = row[part]
        else:
            mapped = {k: v for k, v in mapped.items() if k in keys}
        if "run" in ours:  # pybids stores run as an integer
            ours["run"] = str(int(ours["run"]))
        checked += 1
        if ours != mapped:
            mismatched += 1
            if mismatched <= 3:
                print("  mismatch", row["path"], ours, mapped)
    return {"checked": checked, "mismatched": mismatched, "not_in_pybids": missing,
            "pybids_files": len(pybids)}


def search_latency(catalog_dir: Path, n_subjects: int) -> dict[str, float]:
    """p50/p95 (ms) of typical searches on an open catalog."""
    from neurotwin_db.catalog import Catalog, Filters

    t = time.perf_counter()
    catalog = Catalog(catalog_dir)
    open_ms = (time.perf_counter() - t) * 1000
    rng = random.Random(0)
    queries = [
        lambda: catalog.search(Filters(sub=(f"{rng.randint(1, n_subjects):05d}",),
                                       suffix=("bold",), extension=(".nii.gz",))),
        lambda: catalog.search(Filters(task=("rest",), datatype=("eeg",), run=("2",))),
        lambda: catalog.sql("SELECT path FROM metadata WHERE key = 'SamplingFrequency' "
                            "AND value::DOUBLE > 400 LIMIT 100"),
        lambda: catalog.sql("SELECT datatype, count(*) FROM files GROUP BY 1"),
    ]
    lat = []
    for _ in range(50):
        for query in queries:
            t0 = time.perf_counter()
            query()
            lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return {"open_ms": open_ms, "p50_ms": lat[len(lat) // 2],
            "p95_ms": lat[int(len(lat) * 0.95) - 1], "queries": len(lat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    tree = (args.out / f"tree-{args.subjects}").resolve()
    tree.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    n_files = generate(tree, args.subjects)
    print(f"tree: {n_files} files, {args.subjects} subjects ({time.perf_counter() - t:.1f} s)")

    catalog_dir = (args.out / "catalog").resolve()
    dump = (args.out / "pybids_entities.json").resolve()
    ntdb_wall, ntdb_mib, ntdb_out = run_child(textwrap.dedent(NTDB_CHILD.format(
        root=str(tree), out=str(catalog_dir))))
    ntdb = json.loads(ntdb_out.strip().splitlines()[-1])
    print(f"ntdb catalog build: {ntdb_wall:.1f} s wall, {ntdb_mib} MiB peak")
    pybids_wall, pybids_mib, pybids_out = run_child(textwrap.dedent(PYBIDS_CHILD.format(
        root=str(tree), dump=str(dump))))
    pybids = json.loads(pybids_out.strip().splitlines()[-1])
    # the pybids child also dumps entities and times get(); its index time is in its output
    print(f"pybids BIDSLayout: {pybids['index_s']:.1f} s to index, {pybids_mib} MiB peak")

    entities = compare_entities(catalog_dir, dump)
    latency = search_latency(catalog_dir, args.subjects)
    result = {
        "files": n_files, "subjects": args.subjects,
        "ntdb": {"wall_s": ntdb_wall, "index_s": ntdb["index_s"], "peak_mib": ntdb_mib},
        "pybids": {"index_s": pybids["index_s"], "peak_mib": pybids_mib,
                   "get_p50_ms": pybids["p50_ms"], "get_p95_ms": pybids["p95_ms"]},
        "speedup": pybids["index_s"] / ntdb["index_s"],
        "memory_ratio": ntdb_mib / pybids_mib,
        "entities": entities, "search": latency,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"\nindex: ntdb {ntdb['index_s']:.2f} s vs pybids {pybids['index_s']:.2f} s "
          f"= {result['speedup']:.1f}x faster; peak memory {ntdb_mib} vs {pybids_mib} MiB "
          f"= {result['memory_ratio']:.2f}; entities: {entities['mismatched']} mismatches in "
          f"{entities['checked']} files; search p95 {latency['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
