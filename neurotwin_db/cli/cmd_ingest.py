"""``ntdb ingest``: bring identifiable sources into a BIDS dataset, one record per ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neurotwin_db.cli._common import (
    emit_json,
    handle_errors,
    json_option,
    plural,
    progress_bar,
)

SPECIES_CHOICE = click.Choice(["homo sapiens", "mus musculus", "rattus norvegicus"])
DATASET_ARG = click.argument("dataset", type=click.Path(exists=True, file_okay=False,
                                                        path_type=Path))


def common_options(fn: Any) -> Any:
    """--subject, --session, --overwrite, --dry-run, --json."""
    for option in reversed([
        click.option("--subject", required=True, help="Subject label (no 'sub-')."),
        click.option("--session", help="Session label (no 'ses-')."),
        click.option("--overwrite", is_flag=True,
                     help="Replace files that exist with different content."),
        click.option("--dry-run", is_flag=True, help="List what would be written; write nothing."),
        json_option,
    ]):
        fn = option(fn)
    return fn


@click.group()
def ingest() -> None:
    """Convert source recordings into a BIDS dataset (recorded with DataLad)."""


@ingest.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@DATASET_ARG
@common_options
@click.option("--task", help="Task label for BOLD series (default: from the series name).")
@click.option("--heuristic", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML rules that name series (default: schemas/heuristics/mri.yaml).")
@click.option("--species", type=SPECIES_CHOICE, default="homo sapiens", show_default=True)
@click.option("--keep-source", "private", type=click.Path(file_okay=False, path_type=Path),
              help="Also keep the DICOMs in this separate, private DataLad dataset.")
@handle_errors
def dicom(src: Path, dataset: Path, subject: str, session: str | None, overwrite: bool,
          dry_run: bool, as_json: bool, task: str | None, heuristic: Path | None,
          species: str, private: Path | None) -> None:
    """Convert the DICOM folder SRC with dcm2niix into DATASET for one subject.

    Series are named by a heuristic table (T1w, T2w, FLAIR, dwi, bold, fieldmaps;
    localizers skipped); scans.tsv gets each acquisition time. The DICOMs are only
    read, and never copied into DATASET.
    """
    from neurotwin_db.curation.ingest import ingest_dicom

    with progress_bar("writing", enabled=not as_json) as update:
        plan, result = ingest_dicom(src, dataset, subject=subject, session=session, task=task,
                                    heuristic=heuristic, species=species, private=private,
                                    overwrite=overwrite, dry_run=dry_run, progress=update)
    report_ingest(plan, result, as_json=as_json)


def report_ingest(plan: Any, result: Any, *, as_json: bool) -> None:
    """Print what an ingest planned or did."""
    summary = plan.describe()
    if result is not None:
        summary.update(written=result.written, unchanged=result.unchanged, saved=result.saved)
    if as_json:
        emit_json(summary)
        return
    verb = "would write" if result is None else "wrote"
    files = summary["files"] if result is None else result.written
    click.echo(f"{verb} {plural(len(files), 'file')} into {plan.dataset}:")
    for name in files:
        click.echo(f"  {name}")
    if result is not None and result.unchanged:
        click.echo(f"{plural(len(result.unchanged), 'file')} already there, unchanged")
    for item in summary["skipped"]:
        click.echo(f"skipped {item['item']}: {item['reason']}")


@ingest.command()
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DATASET_ARG
@common_options
@click.option("--task", required=True, help="Task label, e.g. rest.")
@click.option("--run", type=click.IntRange(min=1), help="Run index.")
@click.option("--montage", help="Electrode positions: an MNE montage name (standard_1020, "
              "standard_1005, ...) or a file (.elc, .sfp, .bvef, ...).")
@click.option("--line-freq", type=click.Choice(["50", "60"]),
              help="Power-line frequency in Hz (needed when the file does not say).")
@click.option("--species", type=SPECIES_CHOICE, default="homo sapiens", show_default=True)
@handle_errors
def eeg(recording: Path, dataset: Path, subject: str, session: str | None, overwrite: bool,
        dry_run: bool, as_json: bool, task: str, run: int | None, montage: str | None,
        line_freq: str | None, species: str) -> None:
    """Write the EEG RECORDING (any format MNE reads) into DATASET with mne-bids.

    EDF, BDF, BrainVision and EEGLAB files keep their format; others (FIF, ...) become
    BrainVision. Writes _eeg.json with every REQUIRED field, channels.tsv,
    electrodes.tsv + coordsystem.json (from --montage) and events.tsv (from annotations).
    """
    from neurotwin_db.curation.ingest import ingest_eeg

    with progress_bar("writing", enabled=not as_json) as update:
        plan, result = ingest_eeg(recording, dataset, subject=subject, task=task,
                                  session=session, run=run, montage=montage,
                                  line_freq=float(line_freq) if line_freq else None,
                                  species=species, overwrite=overwrite, dry_run=dry_run,
                                  progress=update)
    report_ingest(plan, result, as_json=as_json)


@ingest.command(name="tms-eeg")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DATASET_ARG
@common_options
@click.option("--task", required=True, help="Task label, e.g. tep.")
@click.option("--stim-log", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV or JSON of pulses: time, intensity (%MSO), coil, target or "
                   "target_x/y/z, pulse_shape.")
@click.option("--run", type=click.IntRange(min=1), help="Run index.")
@click.option("--montage", help="MNE montage name or electrode file.")
@click.option("--line-freq", type=click.Choice(["50", "60"]), help="Power-line frequency (Hz).")
@handle_errors
def tms_eeg(recording: Path, dataset: Path, subject: str, session: str | None, overwrite: bool,
            dry_run: bool, as_json: bool, task: str, stim_log: Path, run: int | None,
            montage: str | None, line_freq: str | None) -> None:
    """Ingest a TMS-EEG RECORDING; each pulse in --stim-log becomes an events.tsv row.

    Coil and stimulator metadata go in a BEP037-style sidecar (nibs/*_nibs.json, checked
    against schemas/nibs_tms.schema.json and listed in .bidsignore while BEP037 is a draft).
    """
    from neurotwin_db.curation.ingest import ingest_tms_eeg

    with progress_bar("writing", enabled=not as_json) as update:
        plan, result = ingest_tms_eeg(recording, dataset, subject=subject, task=task,
                                      stim_log=stim_log, session=session, run=run,
                                      montage=montage,
                                      line_freq=float(line_freq) if line_freq else None,
                                      overwrite=overwrite, dry_run=dry_run, progress=update)
    report_ingest(plan, result, as_json=as_json)


@ingest.command()
@click.argument("session_log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DATASET_ARG
@common_options
@click.option("--unblinding-key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file, outside every dataset, that maps blinding codes to conditions.")
@click.option("--new-key", is_flag=True, help="Create --unblinding-key if it does not exist.")
@click.option("--eeg", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="EEG recorded during stimulation (task 'tacs').")
@click.option("--allow-high-current", is_flag=True, help="Accept peak currents above 4 mA.")
@click.option("--montage", help="MNE montage name or electrode file (with --eeg).")
@click.option("--line-freq", type=click.Choice(["50", "60"]), help="Power-line frequency (Hz).")
@handle_errors
def tacs(session_log: Path, dataset: Path, subject: str, session: str | None, overwrite: bool,
         dry_run: bool, as_json: bool, unblinding_key: Path, new_key: bool, eeg: Path | None,
         allow_high_current: bool, montage: str | None, line_freq: str | None) -> None:
    """Record one tACS session from SESSION_LOG (JSON or YAML) in DATASET.

    The log gives device, electrodes (10-10 position and size), current_mA,
    frequency_Hz, waveform, ramp_up_s, ramp_down_s, duration_s, condition (active or
    sham; stored blinded), and optionally impedance_kOhm, adherence and setting.
    """
    from neurotwin_db.curation.ingest import ingest_tacs

    with progress_bar("writing", enabled=not as_json) as update:
        plan, result = ingest_tacs(session_log, dataset, subject=subject, session=session,
                                   unblinding_key=unblinding_key, new_key=new_key, eeg=eeg,
                                   allow_high_current=allow_high_current, montage=montage,
                                   line_freq=float(line_freq) if line_freq else None,
                                   overwrite=overwrite, dry_run=dry_run, progress=update)
    report_ingest(plan, result, as_json=as_json)


@ingest.command()
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@DATASET_ARG
@common_options
@click.option("--task", default="rec", show_default=True, help="Task label.")
@click.option("--species", type=click.Choice(["mus musculus", "rattus norvegicus"]),
              default="mus musculus", show_default=True)
@click.option("--strain", help="Strain, e.g. C57BL/6J.")
@click.option("--strain-rrid", help="RRID of the strain, e.g. RRID:IMSR_JAX:000664.")
@click.option("--opto-log", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of light trains: onset, duration, wavelength_nm, power_mW, "
                   "pulse_frequency_Hz, pulse_width_ms, site.")
@click.option("--line-freq", type=click.Choice(["50", "60"]), default="50", show_default=True)
@handle_errors
def rodent(src: Path, dataset: Path, subject: str, session: str | None, overwrite: bool,
           dry_run: bool, as_json: bool, task: str, species: str, strain: str | None,
           strain_rrid: str | None, opto_log: Path | None, line_freq: str) -> None:
    """Ingest a Neuropixels SpikeGLX recording (SRC: run folder or .ap.bin) into DATASET.

    Read with spikeinterface, written as NWB (pynwb) in the BEP032 ecephys/ layout with
    _ecephys.json, _channels.tsv, _electrodes.tsv and _probes.tsv; optogenetic trains
    become events plus an _optogenetics.json sidecar. ecephys/ is in .bidsignore while
    BEP032 is a draft.
    """
    from neurotwin_db.curation.ingest import ingest_rodent

    with progress_bar("writing", enabled=not as_json) as update:
        plan, result = ingest_rodent(src, dataset, subject=subject, task=task, species=species,
                                     strain=strain, strain_rrid=strain_rrid, session=session,
                                     opto_log=opto_log, line_freq=float(line_freq),
                                     overwrite=overwrite, dry_run=dry_run, progress=update)
    report_ingest(plan, result, as_json=as_json)
