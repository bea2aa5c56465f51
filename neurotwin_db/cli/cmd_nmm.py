"""``ntdb model fit`` and ``ntdb model simulate``: neural-mass models of EEG."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from neurotwin_db.cli._common import emit_json, handle_errors, json_option, progress_bar
from neurotwin_db.cli.cmd_model import JOBS, SCHEDULER, SUBJECTS, assignments, model
from neurotwin_db.errors import InputError
from neurotwin_db.progress import Progress

MODEL_CHOICE = click.Choice(["jansen-rit", "lanmm"])


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None


@model.command()
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@SUBJECTS
@click.option("--session", default=None, help="Session label.")
@click.option("--task", default="rest", show_default=True, help="Task of the EEG to fit.")
@click.option("--model", "model_name", type=MODEL_CHOICE, default="jansen-rit",
              show_default=True, help="Neural-mass model.")
@click.option("--features", help="Comma-separated features to fit (default per model): "
                                 "alpha_peak_hz, rel_delta … rel_gamma, power_40hz, "
                                 "aperiodic_exponent, aperiodic_offset.")
@click.option("--parameters", "fit_parameters",
              help="Comma-separated parameters to fit (default: jansen-rit b,C; "
                   "lanmm a_GABAs,A_GABAf).")
@click.option("--optimizer", type=click.Choice(["cmaes", "de"]), default="cmaes",
              show_default=True, help="CMA-ES (cma package) or differential evolution.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Optimiser restarts, each from its own seed.")
@click.option("--evaluations", type=click.IntRange(min=10), default=120, show_default=True,
              help="Most model evaluations per restart.")
@click.option("--sim-duration", default="20s", show_default=True,
              help="Simulated EEG per evaluation.")
@click.option("--no-background", is_flag=True,
              help="Fit the model's spectrum alone, without a 1/f background share.")
@click.option("--overwrite", is_flag=True, help="Replace an existing fit.")
@JOBS
@SCHEDULER
@json_option
@handle_errors
def fit(dataset: Path, subjects: tuple[str, ...], session: str | None, task: str,
        model_name: str, features: str | None, fit_parameters: str | None, optimizer: str,
        seeds: int, evaluations: int, sim_duration: str, no_background: bool, overwrite: bool,
        jobs: int | None,
        scheduler: str | None, as_json: bool) -> None:
    """Fit a neural-mass model to each subject's EEG spectrum; write ntdb-nmm derivatives.

    \b
    The EEG (any format MNE reads, found as sub-X/eeg/*_task-TASK_*eeg.*) gives the
    target features; the model's simulated EEG is fitted to them by CMA-ES or
    differential evolution, restarted from several seeds. Outputs, in
    DATASET/derivatives/ntdb-nmm/sub-X/eeg/: *_desc-<model>_params.json (parameters with
    their uncertainty, features, loss), *_fit.tsv and *_fit.png. A fit that does not
    converge is reported and not written.

    \b
    Example:
      ntdb model fit eeg-rest --subject 01 --model jansen-rit --seeds 3
    """
    from neurotwin_db.modelling.nmm._outputs import parse_seconds
    from neurotwin_db.modelling.nmm._run import fit_cohort, fit_subject

    options = {"task": task, "model": model_name, "features": _names(features),
               "fit_parameters": _names(fit_parameters), "optimizer": optimizer,
               "seeds": tuple(range(seeds)), "max_evaluations": evaluations,
               "duration_s": parse_seconds(sim_duration, "--sim-duration"),
               "background": not no_background, "session": session, "overwrite": overwrite}
    if len(subjects) == 1:
        with progress_bar(f"fitting sub-{subjects[0]}", enabled=not as_json) as update:
            def restart_done(done: int, total: int) -> None:
                update(Progress(f"restart {done} of {total}", done, total, "ok"))

            results = [{"Subject": subjects[0],
                        **fit_subject(dataset, subjects[0], progress=restart_done, **options)}]
    else:
        results = fit_cohort(dataset, list(subjects), jobs=jobs, scheduler=scheduler,
                             **options)
    failed = [r for r in results if r.get("Error")]
    if as_json:
        emit_json(results if len(results) > 1 else results[0])
    else:
        for r in results:
            _print_fit(r)
    if failed:
        raise SystemExit(1)


def _print_fit(result: dict) -> None:
    if result.get("Error"):
        click.echo(f"sub-{result['Subject']}: NOT FITTED: {result['Error']}", err=True)
        return
    fitted = ", ".join(f"{n} = {v['Value']:.4g} ± {v['SD']:.2g}"
                       for n, v in result["Fitted"].items())
    click.echo(f"sub-{result['Subject']}: {result['Model']} fitted ({fitted}); loss "
               f"{result['Loss']:.3g} over {len(result['Features'])} features")
    for name, value in result["Features"].items():
        click.echo(f"    {name:20s} EEG {value['Target']:.4g}   model {value['Fitted']:.4g}")
    for path in result.get("Files", {}).values():
        click.echo(f"    wrote {path}")


@model.command()
@click.option("--model", "model_name", type=MODEL_CHOICE, default="jansen-rit",
              show_default=True, help="Neural-mass model.")
@click.option("--params", "params_file", type=click.Path(path_type=Path, exists=True,
                                                          dir_okay=False),
              help="Start from a fitted *_params.json (its model and parameters).")
@click.option("--param", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Set one parameter (repeatable), e.g. --param b=45.")
@click.option("--connectome", default="none", show_default=True,
              help="tvb76, neurolib80, a .npz/.zip connectome file, or none (one node).")
@click.option("--coupling", type=float, default=0.0, show_default=True,
              help="Global coupling constant G.")
@click.option("--speed", type=float, default=3.0, show_default=True,
              help="Conduction speed (mm/ms) for the delays.")
@click.option("--duration", default="10s", show_default=True, help="Simulated time.")
@click.option("--dt", default="0.1ms", show_default=True, help="Integration step.")
@click.option("--sfreq", type=float, default=1000.0, show_default=True,
              help="Output sampling rate (Hz); each sample averages the steps in it.")
@click.option("--transient", default="1s", show_default=True,
              help="Simulated first and discarded.")
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed.")
@click.option("--stim-freq", type=float, help="Apply tACS at this frequency (Hz).")
@click.option("--stim-field", type=float, default=0.3, show_default=True,
              help="Peak normal field at every node (V/m).")
@click.option("--stim-map", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Per-node field: mean of an efield *_En.nii.gz around each node centre "
                   "(instead of --stim-field; needs a connectome with centres).")
@click.option("--stim-ramp", type=float, default=1.0, show_default=True,
              help="Ramp up/down (s).")
@click.option("--sham", is_flag=True, help="Sham: the ramps only.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the time series (.npz or .h5).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--backend", type=click.Choice(["numba", "numpy"]), default="numba",
              show_default=True, help="Kernel (the NumPy twin is for checking; slow).")
@json_option
@handle_errors
def simulate(model_name: str, params_file: Path | None, overrides: tuple[str, ...],
             connectome: str, coupling: float, speed: float, duration: str, dt: str,
             sfreq: float, transient: str, seed: int, stim_freq: float | None,
             stim_field: float, stim_map: Path | None, stim_ramp: float,
             sham: bool, out: Path | None,
             overwrite: bool, backend: str, as_json: bool) -> None:
    """Simulate a neural-mass model (one node or a connectome network).

    \b
    Prints the wall time and, per node, the peak frequency and relative band powers;
    --out keeps the EEG proxy time series (mV) with its metadata.

    \b
    Examples:
      ntdb model simulate --model jansen-rit --connectome tvb76 --coupling 0.01 --json
      ntdb model simulate --model lanmm --stim-freq 40 --stim-field 0.3 --out sim.h5
    """
    from neurotwin_db.modelling import nmm
    from neurotwin_db.modelling.nmm._outputs import parse_seconds

    base, values = _start(model_name, params_file)
    chosen = nmm.with_parameters(base, {**values, **assignments(
        overrides, "--param wants NAME=NUMBER (e.g. b=45)")})
    network, centres = None, None
    if connectome.lower() != "none":
        graph = nmm.load_connectome(connectome)
        network, centres = nmm.Network.of(graph, coupling, speed), graph.centres
    field: float | tuple[float, ...] = stim_field
    if stim_map is not None:
        from neurotwin_db.modelling.nmm._stimulation import fields_from_map

        field = tuple(fields_from_map(stim_map, centres if centres is not None
                                      else np.empty((0,))))
    stimulation = (nmm.Stimulation(freq_hz=stim_freq, field_v_per_m=field,
                                   ramp_s=stim_ramp, sham=sham) if stim_freq else None)
    if sham and not stim_freq:
        raise InputError("--sham needs --stim-freq (the frequency of the ramps)")
    if out and out.suffix not in (".npz", ".h5", ".hdf5"):
        raise InputError(f"cannot write {out}: the output must end in .npz or .h5")
    if out and out.exists() and not overwrite:
        raise InputError(f"{out} already exists; remove it or pass --overwrite")
    sim = nmm.simulate(chosen, network=network, duration_s=parse_seconds(duration, "--duration"),
                       dt_s=parse_seconds(dt, "--dt"), sfreq=sfreq, seed=seed,
                       transient_s=parse_seconds(transient, "--transient"),
                       stimulation=stimulation, backend=backend)
    nodes = nmm.node_summary(sim)
    summary = {"Model": sim.model, "Nodes": len(sim.labels),
               "Connectome": connectome, "Coupling": coupling,
               "DurationSeconds": sim.eeg.shape[1] / sim.sfreq, "StepSeconds": sim.dt_s,
               "WallSeconds": round(sim.wall_s, 4), "Seed": seed, "Backend": backend,
               "Parameters": sim.params, "Stimulation": sim.stimulation, "PerNode": nodes}
    if out:
        summary["Output"] = str(nmm.write_simulation(sim, out, overwrite=overwrite))
    if as_json:
        emit_json(summary)
        return
    click.echo(f"{sim.model}: {len(sim.labels)} node(s), {summary['DurationSeconds']:g} s "
               f"simulated in {sim.wall_s:.3f} s wall (dt {sim.dt_s * 1e3:g} ms)")
    for row in nodes[:10]:
        click.echo(f"    {row['node']:>16s}  peak {row['peak_hz']:5.1f} Hz  alpha "
                   f"{row['rel_alpha']:.2f}  theta {row['rel_theta']:.2f}  gamma "
                   f"{row['rel_gamma']:.2f}")
    if len(nodes) > 10:
        click.echo(f"    ... and {len(nodes) - 10} more nodes (--json lists all)")
    if out:
        click.echo(f"wrote {summary['Output']}")


def _start(model_name: str, params_file: Path | None):  # noqa: ANN202
    from neurotwin_db.modelling import nmm

    if params_file is None:
        return nmm.model_class(model_name)(), {}
    try:
        document = json.loads(params_file.read_text(encoding="utf-8"))
        return nmm.model_class(document["Model"])(), dict(document["Parameters"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read model parameters from {params_file} ({exc}); give a "
                         f"*_params.json written by `ntdb model fit`") from None
