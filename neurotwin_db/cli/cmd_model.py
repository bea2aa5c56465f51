"""``ntdb model``: head models, tES electric fields, lead fields and montage optimisation."""

from __future__ import annotations

from pathlib import Path

import click

from neurotwin_db.cli._common import emit_json, handle_errors, json_option


def _floats(text: str | None, what: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated numbers, got {text!r}"
                                 ) from None


def assignments(values: tuple[str, ...], usage: str) -> dict[str, float]:
    """``NAME=NUMBER`` options as a dict; ``usage`` says the form, e.g. ``--param b=45``."""
    out = {}
    for item in values:
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{usage}, got {item!r}") from None
    return out


@click.group()
def model() -> None:
    """Head models, tES electric fields, lead fields and montage optimisation (derivatives)."""


SUBJECTS = click.option("--subject", "subjects", required=True, multiple=True,
                        help="Subject label (without 'sub-'); repeat it for a cohort.")
JOBS = click.option("--jobs", "-j", type=click.IntRange(min=1),
                    help="Local worker processes for a cohort (default: the CPUs).")
SCHEDULER = click.option("--scheduler", metavar="ADDRESS",
                         help="Run a cohort on a Dask cluster (tcp://host:8786).")


@model.command()
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@SUBJECTS
@click.option("--session", default=None, help="Session label.")
@click.option("--from", "source", required=True,
              type=click.Choice(["template", "labels", "simnibs", "sphere"]),
              help="template: fsaverage five-compartment head; labels: a tissue label NIfTI; "
                   "simnibs: an existing SimNIBS .msh; sphere: concentric shells.")
@click.option("--radii", help="sphere: shell radii in mm, innermost first (e.g. 85,90,95).")
@click.option("--conductivities", "shell_sigma",
              help="sphere: shell conductivities in S/m, innermost first.")
@click.option("--labels", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="labels: the tissue label volume (NIfTI).")
@click.option("--mapping", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="labels: label → tissue mapping (YAML/JSON/TSV); default SimNIBS tags.")
@click.option("--msh", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="simnibs: the head mesh (m2m_SUBJECT/SUBJECT.msh).")
@click.option("--max-volume", type=float, help="template: largest tetrahedron (mm³).")
@click.option("--element-size", type=float, help="sphere: element size (mm).")
@click.option("--conductivity", multiple=True, metavar="TISSUE=S/m",
              help="Override a SimNIBS default conductivity (repeatable), e.g. GM=0.3.")
@click.option("--overwrite", is_flag=True, help="Replace this subject's head model.")
@JOBS
@SCHEDULER
@json_option
@handle_errors
def headmodel(dataset: Path, subjects: tuple[str, ...], session: str | None, source: str,
              radii: str | None, shell_sigma: str | None, labels: Path | None,
              mapping: Path | None, msh: Path | None, max_volume: float | None,
              element_size: float | None, conductivity: tuple[str, ...], overwrite: bool,
              jobs: int | None, scheduler: str | None, as_json: bool) -> None:
    """Build a tetrahedral head model and write it as a derivative of DATASET.

    \b
    Writes derivatives/ntdb-headmodel/sub-X/anat/:
      sub-X_desc-head_mesh.msh   gmsh 2.2 mesh, SimNIBS tissue tags (1 WM … 5 scalp)
      sub-X_desc-head_mesh.json  conductivities, counts, quality, SourceDatasets
      sub-X_desc-head_dseg.nii.gz + .tsv   tissue labels at 1 mm
    and records it with DataLad. Conductivities are SimNIBS's defaults unless overridden.
    With several --subject, the subjects run through local worker processes (--jobs) or a
    Dask cluster (--scheduler), and the derivative is saved once.
    """
    from neurotwin_db.modelling.headmodel._build import (
        build_cohort,
        build_head,
        mesh_sidecar,
        write_headmodel,
    )

    options = {"radii_mm": _floats(radii, "--radii"),
               "sphere_conductivities": _floats(shell_sigma, "--conductivities"),
               "labels": labels, "mapping": mapping, "msh": msh,
               "max_volume_mm3": max_volume, "element_size_mm": element_size,
               "conductivity": assignments(
                   conductivity, "--conductivity wants TISSUE=S/m (e.g. GM=0.275)")}
    if len(subjects) > 1:
        with _status(f"building {len(subjects)} {source} heads", as_json):
            results = build_cohort(dataset, list(subjects), source, session=session,
                                   overwrite=overwrite, jobs=jobs, scheduler=scheduler,
                                   **options)
        if as_json:
            emit_json(results)
        for r in [] if as_json else results:
            click.echo(f"sub-{r['subject']}: {r['tets']} tetrahedra -> {r['mesh']}")
        return
    subject = subjects[0]
    with _status(f"building the {source} head", as_json):
        head = build_head(source, **options)  # type: ignore[arg-type]
    with _status("writing the derivative", as_json):
        paths = write_headmodel(dataset, subject, head, session=session, overwrite=overwrite)
    sidecar = mesh_sidecar(head, [])
    sidecar.pop("Sources")
    result = {"files": {k: str(v) for k, v in paths.items()}, **sidecar}
    if as_json:
        emit_json(result)
        return
    click.echo(f"head model: {head.mesh.n_nodes} nodes, {head.mesh.n_tets} tetrahedra "
               f"({head.seconds:.1f} s); minimum dihedral angle "
               f"{sidecar['Quality']['MinDihedralAngleDeg']}°")  # type: ignore[index]
    click.echo(f"wrote {paths['mesh']}")


@model.command()
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@SUBJECTS
@click.option("--session", default=None, help="Session label.")
@click.option("--montage", required=True,
              help="Electrodes and currents in mA, summing to zero: 'F3:2.0,Fp2:-2.0'.")
@click.option("--freq", type=float, default=40.0, show_default=True,
              help="tACS frequency (Hz), kept as metadata: the field is quasi-static.")
@click.option("--electrode", default="disc:10mm", show_default=True,
              help="Electrode shape: point, disc:RADIUSmm or rect:WIDTHxHEIGHTmm.")
@click.option("--electrode-model", type=click.Choice(["dirichlet", "neumann"]),
              default="dirichlet", show_default=True,
              help="dirichlet: equipotential electrodes rescaled to the current through "
                   "their flux (SimNIBS); neumann: uniform current injection. point "
                   "electrodes always use neumann.")
@click.option("--cap", type=click.Choice(["standard_1020", "standard_1010", "standard_1005"]),
              default="standard_1005", show_default=True, help="Electrode names and positions.")
@click.option("--electrode-positions", type=click.Path(path_type=Path, exists=True),
              help="TSV/CSV with name, x, y, z (mm, head mesh space) instead of the cap.")
@click.option("--head", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Head mesh (default: the subject's ntdb-headmodel derivative).")
@click.option("--roi", help="Target ROI 'x,y,z[:radius]' (mm) for the mean field.")
@click.option("--ramp", type=float, default=30.0, show_default=True,
              help="Ramp-up and ramp-down (s), metadata.")
@click.option("--duration", type=float, default=1200.0, show_default=True,
              help="Stimulation duration (s), metadata.")
@click.option("--desc", help="BIDS desc label of the outputs (default: the electrode names).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs of this montage.")
@JOBS
@SCHEDULER
@json_option
@handle_errors
def efield(dataset: Path, subjects: tuple[str, ...], session: str | None, montage: str,
           freq: float, electrode: str, electrode_model: str, cap: str,
           electrode_positions: Path | None, head: Path | None, roi: str | None, ramp: float,
           duration: float, desc: str | None, overwrite: bool, jobs: int | None,
           scheduler: str | None, as_json: bool) -> None:
    """Solve the electric field of a tACS/tDCS montage on a subject's head model.

    \b
    P1 tetrahedral FEM, conductivity per element, CG preconditioned by pyamg smoothed
    aggregation to a relative residual of 1e-10. Writes derivatives/ntdb-efield/sub-X/anat/:
      …_efield.msh    result mesh with v (V), E and magnE (V/m), as SimNIBS names them
      …_magnE.nii.gz, …_En.nii.gz   |E| and the normal component (into the cortex > 0),
                      in MNI305 space for the fsaverage template
      …_efield.json   99.9th-percentile |E| in grey matter, focality, ROI mean, solver stats
      …_efield.png    |E| on the cortex
    """
    from neurotwin_db.modelling.efield._run import Stimulation, run_cohort, run_efield
    from neurotwin_db.modelling.efield._summary import parse_roi

    stimulation = Stimulation(frequency_hz=freq, ramp_up_s=ramp, ramp_down_s=ramp,
                              duration_s=duration)
    options = {"session": session, "electrode": electrode, "head": head,
               "positions": electrode_positions, "cap": cap, "model": electrode_model,
               "roi": parse_roi(roi) if roi else None, "stimulation": stimulation,
               "desc": desc, "overwrite": overwrite}
    if len(subjects) > 1:
        with _status(f"solving {len(subjects)} subjects", as_json):
            documents = run_cohort(dataset, list(subjects), montage, jobs=jobs,
                                   scheduler=scheduler, **options)
        if as_json:
            emit_json(documents)
        for d in [] if as_json else documents:
            click.echo(f"sub-{d['Subject']}: peak |E| in grey matter "
                       f"{d['Summary'].get('GM_magnE_99.9', 'n/a')} V/m")  # type: ignore[union-attr]
        return
    subject = subjects[0]
    with _status("solving the field", as_json):
        document = run_efield(dataset, subject, montage, **options)  # type: ignore[arg-type]
    if as_json:
        emit_json(document)
        return
    summary, solver = document["Summary"], document["Solver"]
    click.echo(f"peak |E| in grey matter (99.9th percentile): "
               f"{summary.get('GM_magnE_99.9', 'n/a')} V/m; focality "  # type: ignore[union-attr]
               f"{summary.get('GM_Focality_cm3', 'n/a')} cm³")  # type: ignore[union-attr]
    click.echo(f"solver: {solver['Iterations']} CG iterations, residual "  # type: ignore[index]
               f"{solver['MaxRelativeResidual']:.1e}")  # type: ignore[index]
    click.echo(f"figure: {Path(dataset) / document['Files']['figure']}")  # type: ignore[index]


class _status:
    """A spinner on stderr while a long step runs (quiet with --json)."""

    def __init__(self, text: str, quiet: bool) -> None:
        self.text, self.quiet, self._live = text, quiet, None

    def __enter__(self) -> None:
        if not self.quiet:
            from rich.console import Console

            self._live = Console(stderr=True).status(self.text)
            self._live.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)


@model.command()
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--subject", required=True, help="Subject label (without 'sub-').")
@click.option("--session", default=None, help="Session label.")
@click.option("--cap", type=click.Choice(["standard_1020", "standard_1010", "standard_1005"]),
              default="standard_1010", show_default=True, help="Electrodes of the lead field.")
@click.option("--reference", default="Cz", show_default=True, help="Reference electrode.")
@click.option("--electrode", default="point", show_default=True,
              help="Electrode shape: point, disc:RADIUSmm or rect:WIDTHxHEIGHTmm.")
@click.option("--head", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Head mesh (default: the subject's ntdb-headmodel derivative).")
@click.option("--overwrite", is_flag=True, help="Replace an existing lead field.")
@json_option
@handle_errors
def leadfield(dataset: Path, subject: str, session: str | None, cap: str, reference: str,
              electrode: str, head: Path | None, overwrite: bool, as_json: bool) -> None:
    """Compute the field of every cap electrode against a reference (1 mA each).

    \b
    Neumann current injection; one AMG hierarchy serves every electrode. Stores the
    grey-matter fields (V/m per mA) in HDF5:
      derivatives/ntdb-efield/sub-X/anat/sub-X_desc-<cap>Ref<ref>_leadfield.h5 (+ .json)
    `ntdb model optimize` reads it.
    """
    from neurotwin_db.modelling.efield._run_leadfield import run_leadfield

    with _status(f"lead field of {cap} against {reference}", as_json):
        result = run_leadfield(dataset, subject, cap=cap, reference=reference,
                               electrode=electrode, session=session, head=head,
                               overwrite=overwrite)
    if as_json:
        emit_json(result)
        return
    timings = result["Timings"]
    click.echo(f"{result['Electrodes']} electrodes against {reference}: "
               f"{timings.get('Total', 0):.1f} s (AMG setup {timings.get('Setup', 0):.1f} s "  # type: ignore[union-attr]
               f"once, solves {timings.get('Solve', 0):.1f} s)")  # type: ignore[union-attr]
    click.echo(f"wrote {Path(dataset) / str(result['File'])}")


@model.command()
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--subject", required=True, help="Subject label (without 'sub-').")
@click.option("--session", default=None, help="Session label.")
@click.option("--target", required=True, help="Target 'x,y,z[:radius]' in mm (radius 10).")
@click.option("--direction", default="normal", show_default=True,
              help="normal (into the cortex), any (largest mean field), or a vector x,y,z.")
@click.option("--max-total", type=float, default=2.0, show_default=True,
              help="Total injected current (mA).")
@click.option("--max-per-electrode", type=float, default=1.0, show_default=True,
              help="Largest current through one electrode (mA).")
@click.option("--max-electrodes", type=int, help="Most electrodes carrying current.")
@click.option("--cap", default="standard_1010", show_default=True,
              help="Cap of the stored lead field.")
@click.option("--reference", default="Cz", show_default=True,
              help="Reference of the stored lead field.")
@click.option("--leadfield", "leadfield_file",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Lead field file (default: the subject's, for --cap and --reference).")
@click.option("--desc", default="optimized", show_default=True, help="BIDS desc label.")
@click.option("--overwrite", is_flag=True, help="Replace an existing result.")
@json_option
@handle_errors
def optimize(dataset: Path, subject: str, session: str | None, target: str, direction: str,
             max_total: float, max_per_electrode: float, max_electrodes: int | None,
             cap: str, reference: str, leadfield_file: Path | None, desc: str,
             overwrite: bool, as_json: bool) -> None:
    """Find the montage with the most field at a cortical target within safety limits.

    \b
    A linear program on the lead field (after SimNIBS's TDCSoptimize, Saturnino et al.
    2019): maximise the mean field along --direction in the grey matter within the
    target radius, with currents summing to zero, at most --max-total mA injected and
    --max-per-electrode mA per electrode. Writes …_desc-<desc>_montage.json and the
    predicted |E| map; solve the montage exactly with `ntdb model efield --montage`.
    """
    from neurotwin_db.modelling.efield._run_leadfield import run_optimize
    from neurotwin_db.modelling.efield._summary import parse_roi

    result = run_optimize(dataset, subject, parse_roi(target), direction=direction,
                          max_total_ma=max_total, max_per_electrode_ma=max_per_electrode,
                          max_electrodes=max_electrodes, leadfield=leadfield_file, cap=cap,
                          reference=reference, session=session, desc=desc,
                          overwrite=overwrite)
    if as_json:
        emit_json(result)
        return
    click.echo(f"montage: {result['MontageString']}")
    click.echo(f"mean field in the target: {result['RoiMeanField']:.4f} V/m "
               f"({result['RoiElements']} grey-matter elements)")
