"""``ntdb twin``: build a subject's neurotwin and predict (or optimise) 40 Hz tACS."""

from __future__ import annotations

from pathlib import Path

import click

from neurotwin_db.cli._common import emit_json, handle_errors, json_option

MODEL_CHOICE = click.Choice(["lanmm", "jansen-rit"])


def _target(text: str | None):  # noqa: ANN202
    if not text:
        return None
    from neurotwin_db.modelling.efield._summary import parse_roi

    return parse_roi(text)


def _log(as_json: bool):  # noqa: ANN202
    return (lambda _m: None) if as_json else (lambda m: click.echo(m, err=True))


@click.group()
def twin() -> None:
    """Neurotwins: a subject's fitted neural-mass model under simulated tACS."""


COMMON = [
    click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False)),
    click.option("--subject", required=True, help="Subject label (without 'sub-')."),
    click.option("--session", default=None, help="Session label."),
    click.option("--task", default="rest", show_default=True, help="Task of the EEG to fit."),
    click.option("--model", "model_name", type=MODEL_CHOICE, default="lanmm",
                 show_default=True, help="Neural-mass model of the twin."),
    click.option("--target", help="Target region 'x,y,z[:radius]' in head-mesh mm "
                                  "(default: left DLPFC of the template, -38,44,26:15)."),
    click.option("--freq", type=float, default=40.0, show_default=True,
                 help="Stimulation frequency (Hz)."),
    click.option("--seeds", type=click.IntRange(min=2), default=3, show_default=True,
                 help="Paired active/sham simulations."),
    click.option("--overwrite", is_flag=True, help="Replace an existing result."),
]


def common(fn):  # noqa: ANN001, ANN201
    """Add the options that ``build`` and ``optimize`` share."""
    for option in reversed(COMMON):
        fn = option(fn)
    return fn


@twin.command()
@common
@click.option("--montage", default="F3:2.0,Fp2:-2.0", show_default=True,
              help="Electrodes and currents (mA), e.g. 'F3:2.0,Fp2:-2.0'.")
@click.option("--field", "field_v_per_m", type=float,
              help="Use this normal field (V/m) instead of solving the montage's field.")
@json_option
@handle_errors
def build(dataset: Path, subject: str, session: str | None, task: str, model_name: str,
          target: str | None, freq: float, seeds: int, overwrite: bool, montage: str,
          field_v_per_m: float | None, as_json: bool) -> None:
    """Chain head model → field → fit → simulation and predict the effect of tACS.

    \b
    Reuses the subject's head model, field and fit derivatives where they exist, and
    makes them otherwise (the template head when there is no head model). The field's
    mean normal component in --target drives the fitted model; active and sham runs
    with the same seeds give the predicted change in 40 Hz power, alpha peak frequency
    and entrainment, written to derivatives/ntdb-twin/sub-X/eeg/*_twin.json (+ PNG).

    \b
    Example:
      ntdb twin build eeg-rest --subject 01 --montage "F3:2.0,Fp2:-2.0"
    """
    from neurotwin_db.modelling.twin import build_twin

    document = build_twin(dataset, subject, montage=montage, model=model_name, task=task,
                          session=session, target=_target(target),
                          field_v_per_m=field_v_per_m, freq_hz=freq,
                          seeds=tuple(range(seeds)), overwrite=overwrite, log=_log(as_json))
    if as_json:
        emit_json(document)
        return
    headline = document["Headline"]
    click.echo(f"sub-{subject} {document['Model']} twin, {freq:g} Hz tACS {montage} "
               f"({document['NodeField']['MeanNormalField']:.3f} V/m normal in the target):")
    click.echo(f"    40 Hz power {headline['Power40HzChangePercent']:+.1f}% vs sham; alpha "
               f"peak {headline['AlphaPeakChangeHz']:+.3f} Hz; entrainment PLV "
               f"{headline['EntrainmentPLVActive']:.2f} "
               f"(sham {headline['EntrainmentPLVSham']:.2f})")
    for path in document["Files"].values():
        click.echo(f"    wrote {path}")


@twin.command()
@common
@click.option("--cap", type=click.Choice(["standard_1020", "standard_1010"]),
              default="standard_1020", show_default=True, help="Electrode positions.")
@click.option("--reference", default="Cz", show_default=True, help="Lead-field reference.")
@click.option("--max-total", type=float, default=2.0, show_default=True,
              help="Total current (mA), at most 2.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="Strongest candidates simulated on the twin.")
@json_option
@handle_errors
def optimize(dataset: Path, subject: str, session: str | None, task: str, model_name: str,
             target: str | None, freq: float, seeds: int, overwrite: bool, cap: str,
             reference: str, max_total: float, top: int, as_json: bool) -> None:
    """Rank montages by the twin's predicted gamma entrainment in the target.

    \b
    Uses (or computes) the subject's lead field: every electrode pair at the full
    current and a linear-program montage are screened by their field in the target;
    the strongest are simulated on the fitted twin and ranked by entrainment.
    """
    from neurotwin_db.modelling.twin import optimize_twin

    document = optimize_twin(dataset, subject, target=_target(target), cap=cap,
                             reference=reference, model=model_name, task=task,
                             session=session, max_total_ma=max_total, top=top, freq_hz=freq,
                             seeds=tuple(range(seeds)), overwrite=overwrite,
                             log=_log(as_json))
    if as_json:
        emit_json(document)
        return
    click.echo(f"sub-{subject}: best montage {document['Best']} "
               f"({document['Candidates']} candidates screened)")
    for row in document["Ranked"]:
        click.echo(f"    {row['Montage']:28s} {row['MeanNormalField']:.3f} V/m  PLV "
                   f"{row['PredictedPLV']:.2f} ({row['PLVChange']:+.2f} vs sham)")
    click.echo(f"    wrote {document['File']}")
