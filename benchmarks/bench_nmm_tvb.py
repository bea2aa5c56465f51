"""Jansen-Rit on TVB's 76-region connectome: neurotwin-db against tvb-library, side by side.

One process builds both simulators on the same connectome and parameters, runs the same
simulated time with the same step (0.1 ms), and compares the wall time and the dominant
(alpha) frequency of the EEG proxy ``y1 - y2``. Needs the ``bench`` extra (tvb-library).

    python benchmarks/bench_nmm_tvb.py                      # G = 0.5, 10 s, table
    python benchmarks/bench_nmm_tvb.py --coupling 0 --json  # one JSON document

Connectome
    Ours: ``load_connectome("tvb76")`` (TVB's ``connectivity_76.zip``, diagonal zeroed).
    TVB: ``Connectivity.from_file("connectivity_76.zip")`` with its 66 non-zero
    self-connections zeroed too (``weights[diag] = 0``) before ``configure``, so both sides
    use identical weights (row = target in both: TVB's history sums ``weights[i, j] *
    x_j`` over ``j``). Conduction speed 3 mm/ms on both; the script checks that the integer
    delays ``rint(length / speed / dt)`` are identical.

Parameter mapping (ours in s and mV; TVB's JansenRit in ms and mV; t_ms = 1000 t_s)
    A = A = 3.25 mV, B = B = 22 mV, a = 100/s -> a = 0.1/ms, b = 50/s -> b = 0.05/ms,
    C = 135 -> J = 135 with a_1..a_4 = 1, 0.8, 0.25, 0.25 (our C1..C4 = C, .8C, .25C,
    .25C), e0 = 2.5/s -> nu_max = 0.0025/ms, r = 0.56/mV, p = 220/s -> mu = 0.22/ms, and
    v0 = 6 mV -> v0 = 6 mV, which must be set explicitly: TVB's default v0 is 5.52 mV.
    The y4 equation is the same in both (tvb/simulator/models/jansen_rit.py,
    _numba_dfun_jr): ``dx[4] = A a (mu + a_2 J S(a_1 J y0) + c + src) - 2 a y4 - a² y1``,
    so the long-range coupling ``c`` is multiplied by ``A a`` as in our kernel. Writing our
    y1 equation in ms (every rate ÷ 1000, y'' ÷ 10⁶) gives ``A a_ms (p_ms + C2 S_ms + c_s /
    1000)``: TVB's coupling (a rate per ms) is ours (per s) ÷ 1000.
    Coupling: ``SigmoidalJansenRit`` (tvb/simulator/coupling.py) computes
    ``a · Σ_j w_ij [cmin + (cmax - cmin) / (1 + exp(r (midpoint - (y1_j - y2_j))))]`` with
    the delayed y1, y2 of the source; with cmin = 0, cmax = 2 e0 / 1000 = 0.005/ms,
    midpoint = v0 = 6, r = 0.56 it is ``G Σ_j w_ij S(v_j) / 1000`` with our S (max 2 e0 =
    5/s), i.e. TVB's ``a`` *is* our G, no factor.
    Noise: ``HeunStochastic`` + ``Additive(nsig)`` adds ``sqrt(2 nsig) sqrt(dt_ms) z`` (mV/ms)
    to y4 in the predictor and again in the corrector, with the same draw (integrators.py
    ``HeunStochastic.scheme``, noise.py ``Additive.gfun``), exactly like our kernel, which
    adds ``A a σ sqrt(dt_s) z`` (mV/s). Equal kicks: ``1000 sqrt(2 nsig dt_ms) = A a σ
    sqrt(dt_s)`` with dt_s = dt_ms / 1000, so ``nsig = (A a σ)² / (2·10⁹)`` whatever dt:
    σ = 2.0 (our default) -> nsig = 2.1125e-4 on y4 only (zeros on the other five).
    Initial state: both start from the same small random y0..y2 (SD 0.1 mV); TVB's history
    is that state held constant (its default random history spans y1 ∈ ±500 mV), ours is
    zero firing (S = 0) for the first max-delay (46 ms): a transient, inside the discard.
    Monitor: TVB ``TemporalAverage(period=1 ms)`` of y1 and y2 -> y1 - y2, like our 1 ms
    block average of y1 - y2. The first ``--discard`` s are dropped on both sides.

Global coupling
    ``COUPLING = 0.5``: the median node's summed weights (raw TVB weights, 0-3) are 40, so
    the network adds about G · 40 · 3.5/s ≈ 70/s to p = 220/s and keeps the median node
    inside Jansen & Rit's 120-320/s oscillating range; every node still peaks in alpha, and
    the coupling visibly shifts the mean membrane potential (7.6 -> 8.0 mV), which both
    simulators reproduce. Above G ≈ 1.5 nodes with the largest in-strength leave alpha.

Timing
    Ours: the numba kernels are compiled into an empty ``NUMBA_CACHE_DIR`` (a temp dir made
    before numba is imported; ``--warm-cache`` keeps the usual cache). Compile time = first
    call minus second call of a 10 ms simulation; a fresh subprocess then times the first
    call that loads those kernels from the disk cache. Wall = ``Simulation.wall_s`` (the
    integration loop, noise generation included), best of ``--repeats``.
    TVB: import and ``configure()`` are timed separately; wall = ``sim.run()`` only.
    The kernels are single-threaded; ours draws the next noise chunk in a background
    thread (CPU time includes it). The process CPU time of the same calls is reported too,
    because on a shared machine it is less sensitive than wall time to other jobs' load.

Dominant frequency
    Welch (4 s Hann segments, half overlap, zero-padded to a 0.1 Hz grid), argmax between
    1 and 45 Hz: of the node-mean signal, of the node-averaged spectrum, and of each node
    (median |Δf| over nodes). The nodes are nearly uncorrelated (mean pairwise r ≈ 0), so the
    node-mean signal averages out and its peak jitters by up to ±0.5 Hz from seed to seed of
    the *same* simulator; the node-averaged spectrum is the stable estimate.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np

COUPLING = 0.5  # documented above: alpha on every node, coupling shifts the mean potential
SPEED_MM_PER_MS = 3.0
DT_MS = 0.1
SFREQ = 1000.0
BAND_HZ = (1.0, 45.0)
GOAL_DF_HZ = 0.5
GOAL_RATIO = 50.0
_CACHE_CHECK = """
import sys, time
t0 = time.perf_counter()
from neurotwin_db.modelling.nmm._connectome import load_connectome
from neurotwin_db.modelling.nmm._models import JansenRit
from neurotwin_db.modelling.nmm._simulate import Network, simulate
t1 = time.perf_counter()
net = Network.of(load_connectome("tvb76"), coupling=float(sys.argv[1]), speed_mm_per_ms=3.0)
t2 = time.perf_counter()
simulate(JansenRit(), network=net, duration_s=0.01, transient_s=0.0, dt_s=1e-4)
t3 = time.perf_counter()
simulate(JansenRit(), network=net, duration_s=0.01, transient_s=0.0, dt_s=1e-4)
print(t1 - t0, t3 - t2, time.perf_counter() - t3)
"""


def tvb_parameters(m: Any, coupling: float) -> dict[str, Any]:
    """TVB keyword arguments equal to our ``JansenRit`` (s) and ``G`` (see the docstring)."""
    per_ms = 1e-3
    nsig = (m.A * m.a * m.sigma) ** 2 / 2e9
    return {
        "model": {"A": m.A, "B": m.B, "a": m.a * per_ms, "b": m.b * per_ms,
                  "J": m.C, "a_1": 1.0, "a_2": 0.8, "a_3": 0.25, "a_4": 0.25,
                  "nu_max": m.e0 * per_ms, "v0": m.v0, "r": m.r, "mu": m.p * per_ms},
        "coupling": {"a": coupling, "cmin": 0.0, "cmax": 2.0 * m.e0 * per_ms,
                     "midpoint": m.v0, "r": m.r},
        "nsig_y4": nsig,
    }


def initial_state(seed: int, n: int) -> np.ndarray:
    """The ``(6, n)`` starting state: y0..y2 ~ N(0, 0.1 mV), zero derivatives.

    This is the first draw ``simulate`` makes from ``default_rng(seed)``, so both
    simulators start from the same state (for as long as ``simulate`` draws it that way).
    """
    state = np.zeros((6, n))
    state[:3] = np.random.default_rng(seed).normal(0.0, 0.1, (3, n))
    return state


# --- ours ---------------------------------------------------------------------------------


def ours_setup(coupling: float) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Import our code and build the model and network (import time reported)."""
    start = time.perf_counter()
    from neurotwin_db.modelling.nmm._connectome import load_connectome
    from neurotwin_db.modelling.nmm._models import JansenRit
    from neurotwin_db.modelling.nmm._simulate import Network, simulate

    imported = time.perf_counter()
    connectome = load_connectome("tvb76")
    network = Network.of(connectome, coupling=coupling, speed_mm_per_ms=SPEED_MM_PER_MS)
    return JansenRit(), network, simulate, {
        "import_s": imported - start, "build_s": time.perf_counter() - imported}


def ours_compile(model: Any, network: Any, simulate: Any) -> dict[str, float]:
    """First call (compiles) minus second call of a 10 ms run."""
    calls = []
    for _ in range(2):
        start = time.perf_counter()
        simulate(model, network=network, duration_s=0.01, transient_s=0.0,
                 dt_s=DT_MS * 1e-3)
        calls.append(time.perf_counter() - start)
    return {"first_call_s": calls[0], "second_call_s": calls[1],
            "compile_s": calls[0] - calls[1]}


def ours_cache_load(coupling: float) -> dict[str, float] | None:
    """First call in a fresh process that finds the kernels in the disk cache."""
    done = subprocess.run([sys.executable, "-c", _CACHE_CHECK, str(coupling)], text=True,
                          capture_output=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        return None
    imported, first, second = map(float, done.stdout.split())
    return {"import_s": imported, "first_call_s": first, "second_call_s": second,
            "cache_load_s": first - second}


def ours_run(model: Any, network: Any, simulate: Any, duration: float, seed: int,
             repeats: int) -> tuple[np.ndarray, dict[str, Any]]:
    """``repeats`` runs of ``duration`` s (no transient: the same simulated time as TVB)."""
    walls, calls, cpus, eeg = [], [], [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        sim = simulate(model, network=network, duration_s=duration, transient_s=0.0,
                       dt_s=DT_MS * 1e-3, sfreq=SFREQ, seed=seed)
        cpus.append(time.process_time() - cpu)
        calls.append(time.perf_counter() - start)
        walls.append(sim.wall_s)
        eeg = sim.eeg if eeg is None else eeg
    return eeg, {"wall_s": walls, "call_s": calls, "cpu_s": cpus, "best_wall_s": min(walls),
                 "best_cpu_s": min(cpus)}


# --- TVB ----------------------------------------------------------------------------------


def tvb_build(model: Any, coupling: float, duration: float, seed: int,
              our_network: Any) -> tuple[Any, dict[str, Any]]:
    """Import tvb-library and build (and configure) the same network."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tvb.simulator.lab as lab
    logging.getLogger("tvb").setLevel(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("tvb"):
            logging.getLogger(name).setLevel(logging.ERROR)
    imported = time.perf_counter()
    prm = tvb_parameters(model, coupling)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = lab.connectivity.Connectivity.from_file("connectivity_76.zip")
    self_connections = int(np.count_nonzero(np.diag(conn.weights)))
    conn.weights[np.diag_indices(conn.weights.shape[0])] = 0.0
    conn.speed = np.array([SPEED_MM_PER_MS])
    n = conn.weights.shape[0]
    nsig = np.zeros(6)
    nsig[4] = prm["nsig_y4"]
    horizon = int(np.rint(conn.tract_lengths / SPEED_MM_PER_MS / DT_MS).max()) + 1
    history = np.broadcast_to(initial_state(seed, n)[None, :, :, None], (horizon, 6, n, 1))
    sim = lab.simulator.Simulator(
        model=lab.models.JansenRit(**{k: np.array([v]) for k, v in prm["model"].items()}),
        connectivity=conn,
        coupling=lab.coupling.SigmoidalJansenRit(
            **{k: np.array([v]) for k, v in prm["coupling"].items()}),
        integrator=lab.integrators.HeunStochastic(
            dt=DT_MS, noise=lab.noise.Additive(nsig=nsig, noise_seed=seed)),
        monitors=(lab.monitors.TemporalAverage(period=1e3 / SFREQ,
                                               variables_of_interest=np.array([1, 2])),),
        initial_conditions=np.array(history),
        simulation_length=duration * 1e3)
    built = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.configure()
    configured = time.perf_counter()
    ptr, source, _, delay = our_network.csr(DT_MS * 1e-3)
    target = np.repeat(np.arange(n), np.diff(ptr))
    same = {"weights_equal": bool(np.array_equal(conn.weights, our_network.weights)),
            "tract_lengths_equal": bool(np.array_equal(conn.tract_lengths,
                                                       our_network.tract_lengths)),
            "delays_equal": bool(np.array_equal(conn.idelays[target, source], delay)),
            "tvb_self_connections_zeroed": self_connections}
    return sim, {"import_s": imported - start, "build_s": built - imported,
                 "configure_s": configured - built, "checks": same,
                 "nsig_y4": prm["nsig_y4"], "model": prm["model"], "coupling": prm["coupling"]}


def tvb_run(sim: Any) -> tuple[np.ndarray, float, float]:
    """``sim.run()`` only; returns the ``(n, samples)`` y1 - y2, wall and CPU time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu = time.perf_counter(), time.process_time()
        ((_, data),) = sim.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - start
    return np.ascontiguousarray((data[:, 0, :, 0] - data[:, 1, :, 0]).T), wall, cpu


# --- analysis -----------------------------------------------------------------------------


def spectra(eeg: np.ndarray, discard_s: float, sfreq: float = SFREQ) -> dict[str, Any]:
    """Dominant frequencies (Hz) and level statistics of ``eeg`` after ``discard_s``."""
    from scipy.signal import welch

    x = eeg[:, int(round(discard_s * sfreq)):]
    nperseg = min(int(4 * sfreq), x.shape[1])
    nfft = max(nperseg, int(10 * sfreq))
    centred = x - x.mean(axis=1, keepdims=True)
    freqs, node_psd = welch(centred, fs=sfreq, nperseg=nperseg, nfft=nfft)
    _, mean_psd = welch(centred.mean(axis=0), fs=sfreq, nperseg=nperseg, nfft=nfft)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    f = freqs[band]
    corr = np.corrcoef(x)
    return {
        "f_mean_signal_hz": float(f[mean_psd[band].argmax()]),
        "f_mean_spectrum_hz": float(f[node_psd[:, band].mean(axis=0).argmax()]),
        "f_nodes_hz": f[node_psd[:, band].argmax(axis=1)],
        "mean_mv": float(x.mean()),
        "sd_mv": float(x.std(axis=1).mean()),
        "mean_pairwise_r": float(corr[np.triu_indices(len(x), 1)].mean()),
        "seconds_analysed": x.shape[1] / sfreq,
    }


def compare(ours: dict[str, Any], tvb: dict[str, Any]) -> dict[str, Any]:
    """Frequency differences (Hz) between the two spectra summaries."""
    nodes_ours, nodes_tvb = ours["f_nodes_hz"], tvb["f_nodes_hz"]
    return {
        "df_mean_signal_hz": abs(ours["f_mean_signal_hz"] - tvb["f_mean_signal_hz"]),
        "df_mean_spectrum_hz": abs(ours["f_mean_spectrum_hz"]
                                   - tvb["f_mean_spectrum_hz"]),
        "median_abs_df_nodes_hz": float(np.median(np.abs(nodes_ours - nodes_tvb))),
        "df_median_node_hz": float(abs(np.median(nodes_ours) - np.median(nodes_tvb))),
    }


def _public(summary: dict[str, Any]) -> dict[str, Any]:
    nodes = np.asarray(summary["f_nodes_hz"])
    out = {k: v for k, v in summary.items() if k != "f_nodes_hz"}
    out.update({"f_node_median_hz": float(np.median(nodes)), "f_node_min_hz": float(nodes.min()),
                "f_node_max_hz": float(nodes.max()),
                "nodes_in_alpha": int(((nodes >= 8) & (nodes <= 12)).sum())})
    return out


def table(report: dict[str, Any]) -> str:
    """The printed summary."""
    r = report
    ours, tvb, freq = r["ours"], r["tvb"], r["frequency"]
    duration = r["duration_s"]
    lines = [
        f"Jansen-Rit, tvb76 (76 nodes), G = {r['coupling']}, dt = {DT_MS} ms, "
        f"{duration:g} s simulated, seed {r['seed']}",
        f"load average before: {r['load_average'][0]:.2f} {r['load_average'][1]:.2f} "
        f"{r['load_average'][2]:.2f} on {os.cpu_count()} cores",
        "",
        f"{'':34}{'ours (numba)':>16}{'tvb-library':>16}",
        f"{'import s':34}{ours['import_s']:>16.2f}{tvb['import_s']:>16.2f}",
        f"{'JIT compile s (empty cache)':34}{ours['compile_s']:>16.2f}{'-':>16}",
        f"{'first call, warm disk cache s':34}"
        f"{ours.get('cache_load_first_call_s', float('nan')):>16.2f}{'-':>16}",
        f"{'configure s':34}{'-':>16}{tvb['configure_s']:>16.3f}",
        f"{'wall s (best of runs)':34}{ours['best_wall_s']:>16.3f}{tvb['wall_s']:>16.2f}",
        f"{'wall s per simulated s':34}{ours['best_wall_s'] / duration:>16.4f}"
        f"{tvb['wall_s'] / duration:>16.3f}",
        f"{'CPU s (process, best of runs)':34}{ours['best_cpu_s']:>16.3f}"
        f"{tvb['cpu_s']:>16.2f}",
    ]
    for key, label in (("f_mean_signal_hz", "f of node-mean signal Hz"),
                       ("f_mean_spectrum_hz", "f of node-averaged PSD Hz"),
                       ("f_node_median_hz", "per-node f, median Hz")):
        lines.append(f"{label:34}{ours['spectra'][key]:>16.2f}{tvb['spectra'][key]:>16.2f}")
    lines += [
        f"{'per-node f, min-max Hz':34}"
        f"{ours['spectra']['f_node_min_hz']:>8.2f}-{ours['spectra']['f_node_max_hz']:<7.2f}"
        f"{tvb['spectra']['f_node_min_hz']:>8.2f}-{tvb['spectra']['f_node_max_hz']:<7.2f}",
        f"{'nodes in 8-12 Hz':34}{ours['spectra']['nodes_in_alpha']:>16}"
        f"{tvb['spectra']['nodes_in_alpha']:>16}",
        f"{'mean y1-y2 mV':34}{ours['spectra']['mean_mv']:>16.3f}"
        f"{tvb['spectra']['mean_mv']:>16.3f}",
        f"{'SD y1-y2 mV (node average)':34}{ours['spectra']['sd_mv']:>16.3f}"
        f"{tvb['spectra']['sd_mv']:>16.3f}",
        f"{'mean pairwise r':34}{ours['spectra']['mean_pairwise_r']:>16.3f}"
        f"{tvb['spectra']['mean_pairwise_r']:>16.3f}",
        "",
        f"|Δf| node-mean signal    {freq['df_mean_signal_hz']:.2f} Hz",
        f"|Δf| node-averaged PSD   {freq['df_mean_spectrum_hz']:.2f} Hz   "
        f"(goal ≤ {GOAL_DF_HZ} Hz: {'PASS' if r['pass_frequency'] else 'FAIL'})",
        f"median |Δf| per node     {freq['median_abs_df_nodes_hz']:.2f} Hz",
        f"speed ratio TVB / ours   {r['ratio']:.1f}× wall   "
        f"(goal ≥ {GOAL_RATIO:.0f}×: {'PASS' if r['pass_speed'] else 'FAIL'}); "
        f"{r['ratio_cpu']:.1f}× CPU time",
        f"same weights / tract lengths / delays: {tvb['checks']['weights_equal']} / "
        f"{tvb['checks']['tract_lengths_equal']} / {tvb['checks']['delays_equal']}",
    ]
    return "\n".join(lines)


def say(message: str) -> None:
    """Progress, on stderr."""
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    """Run both simulators and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="simulated s")
    parser.add_argument("--coupling", type=float, default=COUPLING, help="global coupling G")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (best kept)")
    parser.add_argument("--discard", type=float, default=1.0, help="s dropped before Welch")
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep numba's usual disk cache (no cold compile)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if not args.warm_cache:  # before numba is first imported; removed at exit
        cache_dir = tempfile.mkdtemp(prefix="bench-nmm-numba-")
        atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
    load = os.getloadavg()

    model, network, simulate, ours = ours_setup(args.coupling)
    say("# ours: compiling")
    ours.update(ours_compile(model, network, simulate))
    cache = ours_cache_load(args.coupling)
    if cache:
        ours["cache_load_first_call_s"] = cache["first_call_s"]
        ours["cache_load_s"] = cache["cache_load_s"]
    say(f"# ours: {args.repeats} x {args.duration:g} s")
    eeg_ours, runs = ours_run(model, network, simulate, args.duration, args.seed, args.repeats)
    ours.update(runs)

    say("# tvb: import, build, configure")
    sim, tvb = tvb_build(model, args.coupling, args.duration, args.seed, network)
    say(f"# tvb: {args.duration:g} s")
    eeg_tvb, tvb["wall_s"], tvb["cpu_s"] = tvb_run(sim)

    s_ours, s_tvb = spectra(eeg_ours, args.discard), spectra(eeg_tvb, args.discard)
    freq = compare(s_ours, s_tvb)
    ours["spectra"], tvb["spectra"] = _public(s_ours), _public(s_tvb)
    ratio = tvb["wall_s"] / ours["best_wall_s"]
    ratio_cpu = tvb["cpu_s"] / ours["best_cpu_s"]
    report = {
        "benchmark": "Jansen-Rit on tvb76: neurotwin-db vs tvb-library",
        "duration_s": args.duration, "dt_ms": DT_MS, "coupling": args.coupling,
        "seed": args.seed, "speed_mm_per_ms": SPEED_MM_PER_MS, "load_average": load,
        "cpu_count": os.cpu_count(), "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "ours": ours, "tvb": tvb, "frequency": freq, "ratio": ratio,
        "ratio_cpu": ratio_cpu,
        "pass_frequency": freq["df_mean_spectrum_hz"] <= GOAL_DF_HZ,
        "pass_speed": ratio >= GOAL_RATIO,
    }
    if args.json:  # the table goes to stderr, the JSON document alone to stdout
        print(table(report), file=sys.stderr)
        print(json.dumps(report, indent=2, default=float))
    else:
        print(table(report))


if __name__ == "__main__":
    main()
