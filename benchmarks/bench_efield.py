"""tACS field solves on head meshes of ~1 M and ~5 M tetrahedra: ntdb vs Jacobi-CG vs direct.

    python benchmarks/bench_efield.py [--mesh sphere|template] [--tets 1e6,5e6]
                                      [--electrodes 20] [--fresh 20] [--direct-timeout 900]

For each size, on the same mesh, the same conductivities and the same right-hand side
(F3 +1 mA / Fp2 −1 mA, 10 mm disc electrodes, Dirichlet electrodes), each solver runs in
its own fresh process, which reports its own peak memory (ru_maxrss, mesh loading
included):

(a) ntdb: P1 assembly + pyamg smoothed aggregation + CG to rtol 1e-10 (solve_montage);
(b) scipy CG with a Jacobi preconditioner on the same reduced matrix, rtol 1e-10;
(c) a direct sparse solve (MKL PARDISO through pypardiso from the ``bench`` extra, else
    scipy's SuperLU) under a memory limit and a timeout.

Then the lead field: ``--electrodes`` electrodes of standard_1010 against Cz with one AMG
hierarchy, against ``--fresh`` fresh solves (assembly + AMG setup + solve, one electrode
each); when ``--fresh`` is below the electrode count the fresh cost is scaled up from
the mean, and the output says so. Meshes: 'sphere' is the 4-shell head (80/85/90/95 mm,
σ 0.33/1.654/0.0066/0.33), 'template' the fsaverage five-compartment head. Meshes are
cached in .cache/bench-efield/. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench-efield"
SPHERE = ((80.0, 85.0, 90.0, 95.0), (0.33, 1.654, 0.0066, 0.33))
MONTAGE = [("F3", 1.0), ("Fp2", -1.0)]


def build_mesh(kind: str, tets: float) -> Path:
    """Build (or reuse) a mesh of about ``tets`` tetrahedra; returns its .npz cache."""
    path = CACHE / f"{kind}-{tets:.0e}.npz"
    if path.is_file():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if kind == "sphere":
        from neurotwin_db.modelling.headmodel._sphere import sphere_head

        mesh = sphere_head(SPHERE[0], n_tets_target=int(tets))
        sigma = dict(zip((2, 3, 4, 5), SPHERE[1], strict=True))
    else:
        from neurotwin_db.modelling.headmodel._template import template_head
        from neurotwin_db.modelling.headmodel._tissues import conductivities

        mesh = template_head(max_volume_mm3=_template_volume(tets))
        sigma = conductivities()
    np.savez(path, nodes=mesh.nodes, tets=mesh.tets, tags=mesh.tags,
             sigma=np.array([[t, s] for t, s in sigma.items()]),
             template=kind == "template", seconds=time.perf_counter() - start)
    return path


def _template_volume(tets: float) -> float:
    """Largest tetrahedron volume (mm³) that gives about ``tets`` tetrahedra (head ≈ 4 L)."""
    return 4.0e6 / tets * 0.6


def _load(path: Path) -> tuple[object, dict[int, float], bool]:
    from neurotwin_db.modelling.headmodel import HeadMesh, with_boundaries

    data = np.load(path)
    mesh = with_boundaries(HeadMesh(data["nodes"], data["tets"], data["tags"]))
    return mesh, {int(t): float(s) for t, s in data["sigma"]}, bool(data["template"])


def _electrodes(mesh: object, template: bool) -> list:
    from neurotwin_db.modelling.efield._electrodes import Shape, place_montage

    return place_montage(mesh, MONTAGE, Shape.parse("disc:10mm"), cap="standard_1010",
                         template=template)


def worker_ntdb(path: Path) -> dict[str, object]:
    """(a): the whole ntdb solve."""
    from neurotwin_db.modelling.efield._montage import solve_montage

    mesh, sigma, template = _load(path)
    electrodes = _electrodes(mesh, template)
    start = time.perf_counter()
    solution = solve_montage(mesh, sigma, electrodes)
    wall = time.perf_counter() - start
    return {"wall_s": round(wall, 2), **{f"{k.lower()}_s": round(v, 2)
                                         for k, v in solution.timings.items()},
            "iterations": solution.stats[0].iterations,
            "relative_residual": solution.stats[0].relative_residual,
            "gm_magnE_99.9": float(np.percentile(solution.magnitude[mesh.tags == 2], 99.9))}


def _reduced(path: Path) -> tuple[object, np.ndarray]:
    from neurotwin_db.modelling.efield._fem import (
        P1Geometry,
        assemble_stiffness,
        element_conductivity,
    )

    mesh, sigma, template = _load(path)
    electrodes = _electrodes(mesh, template)
    matrix = assemble_stiffness(mesh, P1Geometry.of(mesh), element_conductivity(mesh, sigma))
    fixed = np.concatenate([e.nodes for e in electrodes])
    keep = np.ones(mesh.n_nodes, dtype=bool)
    keep[fixed] = False
    boundary = np.zeros(mesh.n_nodes)
    boundary[electrodes[0].nodes] = 1.0
    rhs = -(matrix[keep][:, ~keep] @ boundary[~keep])
    return matrix[keep][:, keep].tocsr(), rhs


def worker_jacobi(path: Path) -> dict[str, object]:
    """(b): scipy CG with a Jacobi preconditioner."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import cg

    reduced, rhs = _reduced(path)
    count = [0]
    start = time.perf_counter()
    x, info = cg(reduced, rhs, rtol=1e-10, maxiter=50000,
                 M=sp.diags(1.0 / reduced.diagonal()),
                 callback=lambda _: count.__setitem__(0, count[0] + 1))
    wall = time.perf_counter() - start
    residual = float(np.linalg.norm(rhs - reduced @ x) / np.linalg.norm(rhs))
    return {"solve_s": round(wall, 2), "iterations": count[0], "converged": info == 0,
            "relative_residual": residual}


def worker_direct(path: Path) -> dict[str, object]:
    """(c): a direct sparse solve: MKL PARDISO (``pip install .[bench]``), else SuperLU."""
    reduced, rhs = _reduced(path)
    start = time.perf_counter()
    try:
        import pypardiso

        solver = "MKL PARDISO (pypardiso)"
        x = pypardiso.spsolve(reduced, rhs)
    except ImportError:
        from scipy.sparse.linalg import spsolve

        solver = "SuperLU (scipy), COLAMD ordering"
        x = spsolve(reduced.tocsc(), rhs)
    wall = time.perf_counter() - start
    residual = float(np.linalg.norm(rhs - reduced @ x) / np.linalg.norm(rhs))
    return {"solver": solver, "solve_s": round(wall, 2), "relative_residual": residual}


def worker_leadfield(path: Path, n_electrodes: int, n_fresh: int) -> dict[str, object]:
    """The lead field with one hierarchy against fresh solves per electrode."""
    import mne

    from neurotwin_db.modelling.efield._electrodes import Shape, place_montage
    from neurotwin_db.modelling.efield._leadfield import compute_leadfield
    from neurotwin_db.modelling.efield._montage import solve_montage

    mesh, sigma, template = _load(path)
    names = [n for n in mne.channels.make_standard_montage("spherical_1010").ch_names
             if n != "Cz"][:n_electrodes]
    lead = compute_leadfield(mesh, sigma, "standard_1010", "Cz", template=template,
                             names=names)
    fresh = []
    for name in names[:n_fresh]:
        pair = place_montage(mesh, [(name, 1.0), ("Cz", -1.0)], Shape("point"),
                             cap="standard_1010", template=template)
        start = time.perf_counter()
        solve_montage(mesh, sigma, pair, model="neumann")
        fresh.append(time.perf_counter() - start)
    fresh_total = float(np.mean(fresh) * n_electrodes)
    lead_total = lead.timings["Assembly"] + lead.timings["Setup"] + lead.timings["Solve"] \
        + lead.timings["Field"]
    return {"electrodes": n_electrodes,
            "leadfield_s": {k: round(v, 2) for k, v in lead.timings.items()},
            "leadfield_solve_total_s": round(lead_total, 2),
            "mean_iterations": float(np.mean([s.iterations for s in lead.stats])),
            "fresh_solves_measured": len(fresh), "fresh_mean_s": round(float(np.mean(fresh)), 2),
            "fresh_total_s": round(fresh_total, 2),
            "fresh_total_is": "measured" if n_fresh >= n_electrodes
            else f"mean of {len(fresh)} x {n_electrodes}",
            "ratio_leadfield_over_fresh": round(lead_total / fresh_total, 3)}


def run_worker(args: list[str], timeout: float | None = None,
               memory_gb: float | None = None) -> dict[str, object]:
    """Run this script as ``--worker`` in a fresh process; add its peak memory."""
    def limit() -> None:
        if memory_gb:
            size = int(memory_gb * 2 ** 30)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", *args], text=True,
                              capture_output=True, timeout=timeout, preexec_fn=limit,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"failed: {tail}", "wall_s": round(time.perf_counter() - start, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh", choices=["sphere", "template"], default="sphere")
    parser.add_argument("--tets", default="1e6,5e6")
    parser.add_argument("--electrodes", type=int, default=20)
    parser.add_argument("--fresh", type=int, default=20)
    parser.add_argument("--direct-timeout", type=float, default=900.0)
    parser.add_argument("--direct-memory-gb", type=float, default=20.0)
    parser.add_argument("--skip", default="", help="comma list of: jacobi,direct,leadfield")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, path, *rest = args.worker
        workers = {"ntdb": worker_ntdb, "jacobi": worker_jacobi, "direct": worker_direct}
        result = (worker_leadfield(Path(path), int(rest[0]), int(rest[1]))
                  if kind == "leadfield" else workers[kind](Path(path)))
        result["peak_rss_gib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
        print(json.dumps(result, default=float))
        return
    skip = set(filter(None, args.skip.split(",")))
    report: dict[str, object] = {"mesh": args.mesh, "sizes": []}
    for tets in (float(t) for t in args.tets.split(",")):
        path = build_mesh(args.mesh, tets)
        data = np.load(path)
        entry: dict[str, object] = {"tets": int(len(data["tets"])),
                                    "nodes": int(len(data["nodes"])),
                                    "mesh_build_s": round(float(data["seconds"]), 1)}
        print(f"# {args.mesh}: {entry['tets']} tets", file=sys.stderr, flush=True)
        entry["ntdb"] = run_worker(["ntdb", str(path)])
        if "jacobi" not in skip:
            entry["scipy_jacobi_cg"] = run_worker(["jacobi", str(path)])
        if "direct" not in skip:
            entry["direct_superlu"] = run_worker(["direct", str(path)],
                                                 timeout=args.direct_timeout,
                                                 memory_gb=args.direct_memory_gb)
        ours = entry["ntdb"]
        jacobi = entry.get("scipy_jacobi_cg", {})
        if "solve_s" in jacobi and "wall_s" in ours:
            entry["speedup_vs_jacobi_total"] = round(jacobi["solve_s"] / ours["wall_s"], 2)
            # Jacobi-CG needs the same matrix: charge it our assembly time too
            entry["speedup_vs_jacobi_both_assembled"] = round(
                (ours["assembly_s"] + jacobi["solve_s"]) / ours["wall_s"], 2)
            entry["speedup_vs_jacobi_solve_only"] = round(
                jacobi["solve_s"] / (ours["setup_s"] + ours["solve_s"]), 2)
        if "leadfield" not in skip:
            entry["leadfield"] = run_worker(["leadfield", str(path), str(args.electrodes),
                                             str(args.fresh)])
        report["sizes"].append(entry)  # type: ignore[union-attr]
        print(json.dumps(entry, indent=2), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
