"""``ntdb demo``: build a small database from real files and search it."""

from __future__ import annotations

from pathlib import Path

import click

from neurotwin_db.cli._common import emit_json, handle_errors, json_option


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace OUT if it holds an earlier demo.")
@json_option
@handle_errors
def demo(out: Path, overwrite: bool, as_json: bool) -> None:
    """Build a demo database in OUT from real files shipped in dependencies.

    It creates the database, adds six datasets (MRI template and scanner DICOMs, resting
    EEG, TMS-EEG, home tACS, mouse Neuropixels), builds the catalog, runs a few
    searches, anonymizes two datasets into OUT-shareable/ (key in OUT-keys/), deposits
    them to a local Zenodo stand-in (zenodo-mock) and registers them with their DOIs.
    Takes about three minutes on 2 cores.
    """
    import json

    from neurotwin_db import datalad as dl
    from neurotwin_db.demo_datasets.demo import (
        build_demo,
        shareable_path,
        unblinding_key_path,
    )
    from neurotwin_db.errors import InputError, OutputExistsError

    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        config = out / ".ntdb" / "config.json"
        is_demo = config.is_file() and json.loads(config.read_text()).get(
            "name") == "neurotwin-demo"
        if not is_demo:
            raise InputError(f"{out} is not empty and holds no earlier demo; choose a new "
                             f"folder (--overwrite only replaces an earlier demo)")
        if not overwrite:
            raise OutputExistsError(out, flag="--overwrite")
        dl.remove_tree(out)
    keys, shareable = unblinding_key_path(out).parent, shareable_path(out)
    for folder in (keys, shareable):
        if folder.exists():
            dl.remove_tree(folder)  # the earlier demo's keys and copies; new ones are made
    try:
        summary = build_demo(out, log=(lambda _msg: None) if as_json else click.echo)
    except BaseException:
        for folder in (out, keys, shareable):
            if folder.exists():
                dl.remove_tree(folder)  # no half-built demo left behind
        raise
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"\nTry:  ntdb catalog search {out} --modality eeg\n"
                   f"      ntdb catalog show {out} eeg-rest\n"
                   f"      datalad clone {out} my-copy && ntdb get my-copy --sub 01 --dry-run\n"
                   f"      ntdb phi-scan {out}/eeg-rest\n"
                   f"      ntdb phi-scan {shareable}/eeg-rest\n"
                   f"      ntdb validate {shareable}/eeg-rest\n"
                   f"      ntdb cite {shareable}/eeg-rest --format bibtex")
