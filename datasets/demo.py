"""Build the demo database: real files from dependencies, catalogued and searchable.

Stages (later issues add theirs):
1. ``ntdb init`` a database;
2. ``mri-template``: the MNI152 T1w template (nilearn) as a raw BIDS dataset, with a
   ``derivatives/ntdb-tissue`` subdataset of its real GM/WM probability maps;
3. ``mri-dicom``: nibabel's Philips and Siemens DICOMs through ``ingest dicom``;
4. ``eeg-rest``: three simulated resting EEG recordings (EDF) through ``ingest eeg``;
5. ``tms-eeg`` and ``tacs-home``: stimulation sessions through ``ingest tms-eeg|tacs``;
6. ``mouse-ephys``: a SpikeGLX Neuropixels run with optogenetics through ``ingest rodent``;
7. ``catalog build`` and a few searches;
8. ``phi-scan`` of the raw EEG (the gate fails: names, birth dates, real dates), then
   ``anonymize`` of ``eeg-rest`` and ``mri-template`` into shareable datasets next to
   the database (``OUT-shareable/``), which pass it. The pseudonym key goes to ``OUT-keys/``;
9. ``deposit`` of both shareable datasets to a local ``zenodo-mock`` server (DOIs under
   DataCite's test prefix 10.5072), which writes ``DatasetDOI`` and tags ``v1.0.0``; then
   ``dataset register`` puts them in the database and ``catalog search --doi`` finds them;
10. ``model headmodel --from template`` (the fsaverage five-compartment head) and ``model
    efield`` of a 2 mA F3–Fp2 40 Hz tACS montage, both as derivatives of ``mri-template``
    (subject MNI152, the template subject), then ``catalog search --derivative ntdb-efield``;
11. ``model fit`` of the laminar neural mass model to sub-01's resting EEG (``eeg-rest``)
    and ``twin build`` with the stage-10 field in the left DLPFC: the predicted change of
    40 Hz power, alpha peak and entrainment under 40 Hz tACS against sham.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from neurotwin_db import datalad as dl
from neurotwin_db._io import write_json
from neurotwin_db.catalog import (
    Catalog,
    Filters,
    add_dataset,
    build_catalog,
    init_database,
    open_database,
    register_dataset,
)
from neurotwin_db.modelling import SourceDataset, create_derivative, save_derivative

from . import eeg_rest, mri_dicom, mri_template, rodent_ephys, stimulation

AUTHORS = ["Neurotwin demo"]
DEPOSIT_READY = {  # what a deposit needs beyond BIDS (the demo's values; a real one differs)
    "Funding": ["European Union's Horizon 2020 research and innovation programme, grant "
                "agreement No 101017716 (Neurotwin)"],
    "EthicsApprovals": ["Demo data: simulated recordings and a public template; no ethics "
                        "approval needed"],
}
DEMO_TOKEN_ENV = "NTDB_DEMO_TOKEN"  # zenodo-mock takes any token; the real Zenodo does not
Log = Callable[[str], None]


def unblinding_key_path(db_root: Path) -> Path:
    """The demo's unblinding key lives next to the database, never inside it."""
    return db_root.with_name(db_root.name + "-keys") / "unblinding.json"


def shareable_path(db_root: Path) -> Path:
    """Where the demo writes its anonymized (shareable) datasets: next to the database."""
    return db_root.with_name(db_root.name + "-shareable")


def build_shareable(db_root: Path, log: Log = print) -> dict[str, Any]:
    """Scan the raw EEG, then anonymize two datasets into ``OUT-shareable/``."""
    from neurotwin_db.curation.anonymize import (
        apply_anonymization,
        load_key,
        plan_anonymization,
    )
    from neurotwin_db.curation.phi import scan_phi

    raw = scan_phi(db_root / "eeg-rest")
    errors = len(raw.at_least(30))
    log(f"ntdb phi-scan {db_root.name}/eeg-rest: {errors} identifiers (EDF names, birth "
        "dates, recording dates): not shareable")
    key = load_key(unblinding_key_path(db_root).with_name("pseudonym.key"), new=True)
    out = {"raw_eeg_findings": errors, "shareable": {}}
    for name in ("eeg-rest", "mri-template"):
        target = shareable_path(db_root) / name
        plan = plan_anonymization(db_root / name, key, out=target)
        result = apply_anonymization(plan, key)
        left = len(scan_phi(target).at_least(30))
        out["shareable"][name] = {"path": str(target), "files": len(result.written),
                                  "phi_errors": left}
        log(f"ntdb anonymize {name} --out {target}: {len(result.written)} files, "
            f"{len(plan.subjects)} pseudonymized subject(s); phi-scan: {left} identifiers")
    return out


def build_demo(out: Path, log: Log = print) -> dict[str, Any]:
    """Build the demo database at ``out`` and return a summary of what was done."""
    db = init_database(out, name="neurotwin-demo")
    log(f"created database {db.root}")

    mri = add_dataset(db, "mri-template", modality="mri", title="MNI152 template head",
                      authors=AUTHORS)
    mri_root = db.root / mri.path
    mri_template.build_raw(mri_root)
    _deposit_ready(mri_root)
    dl.save(mri_root, "add MNI152 T1w template", record={"action": "demo", "source":
                                                          "nilearn MNI152 2009a"})
    tissue = create_derivative(
        mri_root, "ntdb-tissue", name="MNI152 tissue probability maps",
        sources=[SourceDataset("bids::", dl.head_commit(mri_root) or "")],
        description="GM/WM probability maps of the MNI152 2009a template (nilearn).")
    mri_template.build_tissue_derivative(tissue)
    save_derivative(mri_root, "ntdb-tissue", "add GM and WM probability maps")
    log("added mri-template: sub-MNI152 T1w + derivatives/ntdb-tissue (GM, WM probseg)")

    dicom = add_dataset(db, "mri-dicom", modality="mri", title="MRI from scanner DICOM",
                        authors=AUTHORS)
    written = mri_dicom.build(db.root / dicom.path)
    log(f"ntdb ingest dicom -> mri-dicom: {', '.join(w for w in written if 'nii' in w)}")

    eeg = add_dataset(db, "eeg-rest", modality="eeg", title="Resting EEG (simulated)",
                      authors=AUTHORS)
    _deposit_ready(db.root / eeg.path)
    eeg_rest.build(db.root / eeg.path)
    log(f"ntdb ingest eeg -> eeg-rest: {len(eeg_rest.SUBJECTS)} EDF recordings, task rest")

    tms = add_dataset(db, "tms-eeg", modality="tms-eeg", title="TMS-EEG (simulated)",
                      authors=AUTHORS)
    stimulation.build_tms(db.root / tms.path)
    log("ntdb ingest tms-eeg -> tms-eeg: 15 pulses as events + nibs sidecar")

    tacs = add_dataset(db, "tacs-home", modality="tacs", title="40 Hz tACS sessions",
                       authors=AUTHORS)
    key = unblinding_key_path(db.root)
    stimulation.build_tacs(db.root / tacs.path, key)
    log(f"ntdb ingest tacs -> tacs-home: 2 blinded sessions; unblinding key in {key}")

    mice = add_dataset(db, "mouse-ephys", modality="rodent", species="mus musculus",
                       title="Neuropixels + optogenetics (simulated SpikeGLX)",
                       authors=AUTHORS)
    rodent_ephys.build(db.root / mice.path)
    log("ntdb ingest rodent -> mouse-ephys: SpikeGLX 384 ch as NWB (BEP032) + opto events")

    dl.save(db.root, "record demo datasets",
            paths=[mri.path, dicom.path, eeg.path, tms.path, tacs.path, mice.path],
            record={"action": "demo"})
    result = build_catalog(db.root)
    log(f"catalog: {result.files} files from {len(result.indexed)} datasets indexed "
        f"into {result.catalog_dir}")

    catalog = Catalog(result.catalog_dir)
    searches = {
        "--modality eeg --sub 01": Filters(modality=("eeg",), sub=("01",)),
        "--suffix T1w": Filters(suffix=("T1w",)),
        "--derivative ntdb-tissue": Filters(derivative=("ntdb-tissue",)),
    }
    found = {}
    for label, filters in searches.items():
        rows = catalog.search(filters)
        found[label] = [f"{r['dataset']}/{r['path']}" for r in rows]
        log(f"ntdb catalog search {db.root.name} {label}: {len(rows)} files")
        for path in found[label][:4]:
            log(f"    {path}")
        if len(rows) > 4:
            log(f"    ... and {len(rows) - 4} more")
    per_dataset = catalog.sql("SELECT dataset, count(*) AS files, sum(size) AS bytes "
                              "FROM files GROUP BY dataset ORDER BY dataset")
    ids = [mri.id, dicom.id, eeg.id, tms.id, tacs.id, mice.id]
    shareable = build_shareable(db.root, log)
    shareable["deposits"] = deposit_shareable(db.root, shareable["shareable"], log)
    shareable["efield"] = model_template_head(db.root, mri_root, log)
    shareable["twin"] = model_twin(db.root, db.root / eeg.path, shareable["efield"], log)
    return {"database": str(db.root), "datasets": ids, "files": result.files,
            "issues": len(result.report), "searches": found, "per_dataset": per_dataset,
            **shareable}


def _deposit_ready(root: Path) -> None:
    """Add Funding and EthicsApprovals to a dataset's description, and save it."""
    path = root / "dataset_description.json"
    description = json.loads(path.read_text(encoding="utf-8"))
    write_json(path, {**description, **DEPOSIT_READY}, overwrite=True)
    dl.save(root, "describe funding and ethics approvals", paths=[path],
            record={"action": "demo"})


def deposit_shareable(db_root: Path, shareable: dict[str, Any], log: Log = print
                      ) -> dict[str, Any]:
    """Deposit each shareable dataset to a local zenodo-mock, then register it with its DOI."""
    try:
        from zenodo_mock.testing import spawn
    except ImportError:
        log("deposit skipped: the local Zenodo stand-in is not installed "
            "(pip install 'neurotwin-db[dev]' brings zenodo-mock)")
        return {}
    from neurotwin_db.curation.deposit import deposit_dataset

    db, out = open_database(db_root), {}
    keys = unblinding_key_path(db_root).parent
    with tempfile.TemporaryDirectory(prefix="ntdb-zenodo-mock-") as storage, \
            spawn(Path(storage)) as base_url, \
            _environment({DEMO_TOKEN_ENV: "demo-token", "NTDB_STATE_DIR": str(keys / "deposits")}):
        for name, info in shareable.items():
            result = deposit_dataset(Path(info["path"]), to=f"{base_url}/api",
                                     token_env=DEMO_TOKEN_ENV)
            entry = register_dataset(db, info["path"], name=f"{name}-shared")
            out[name] = {"doi": result.doi, "tag": result.tag, "record": result.record_url,
                         "registered_as": entry.id}
            log(f"ntdb deposit {name} --to {base_url}/api: doi:{result.doi} ({result.tag}, "
                f"{len(result.files)} archive(s)); registered as {entry.id}")
    dl.save(db_root, "register the deposited datasets", paths=[e["registered_as"]
                                                                for e in out.values()],
            record={"action": "demo"})
    catalog = Catalog(build_catalog(db_root).catalog_dir)
    for deposit in out.values():
        rows = catalog.search(Filters(doi=(deposit["doi"],)))
        log(f"ntdb catalog search {db_root.name} --doi {deposit['doi']}: {len(rows)} files "
            f"of {deposit['registered_as']}")
    return out


DEMO_MONTAGE = "F3:2.0,Fp2:-2.0"
DEMO_TARGET = "-38,44,26:15"  # left DLPFC (MNI), the usual F3 target


def model_template_head(db_root: Path, mri_root: Path, log: Log = print) -> dict[str, Any]:
    """Build the template head model and solve one 40 Hz tACS montage on it."""
    from neurotwin_db.modelling.efield._run import Stimulation, run_efield
    from neurotwin_db.modelling.efield._summary import parse_roi
    from neurotwin_db.modelling.headmodel._build import build_head, write_headmodel

    head = build_head("template")
    write_headmodel(mri_root, "MNI152", head)
    log(f"ntdb model headmodel mri-template --subject MNI152 --from template: "
        f"{head.mesh.n_nodes} nodes, {head.mesh.n_tets} tetrahedra ({head.seconds:.0f} s)")
    document = run_efield(mri_root, "MNI152", DEMO_MONTAGE, roi=parse_roi(DEMO_TARGET),
                          stimulation=Stimulation(frequency_hz=40.0))
    dl.save(db_root, "demo: template head model and a 40 Hz tACS field",
            paths=[mri_root], record={"action": "demo"})
    summary, solver = document["Summary"], document["Solver"]
    figure = mri_root / document["Files"]["figure"]
    log(f"ntdb model efield mri-template --subject MNI152 --montage {DEMO_MONTAGE} --freq 40: "
        f"peak |E| in grey matter {summary['GM_magnE_99.9']:.2f} V/m (99.9th percentile), "
        f"{summary['ROI']['MeanMagnE']:.2f} V/m in the left DLPFC; "
        f"{solver['Iterations']} CG iterations")
    log(f"    figure: {figure}")
    rows = Catalog(build_catalog(db_root).catalog_dir).search(
        Filters(derivative=("ntdb-efield",)))
    log(f"ntdb catalog search {db_root.name} --derivative ntdb-efield: {len(rows)} files")
    return {"figure": str(figure), "summary": summary, "files": len(rows)}


def model_twin(db_root: Path, eeg_root: Path, efield: dict[str, Any], log: Log = print
               ) -> dict[str, Any]:
    """Fit sub-01's LaNMM twin to its EEG and predict 40 Hz tACS with the template field."""
    from neurotwin_db.modelling.nmm import fit_subject
    from neurotwin_db.modelling.twin import build_twin

    fitted = fit_subject(eeg_root, "01", model="lanmm", seeds=(0, 1), max_evaluations=60)
    values = ", ".join(f"{k} {v['Value']:.3g} ± {v['SD']:.2g}"
                       for k, v in fitted["Fitted"].items())
    log(f"ntdb model fit eeg-rest --subject 01 --model lanmm: {values}; loss "
        f"{fitted['Loss']:.2f} over {len(fitted['Features'])} spectral features")
    field = abs(float(efield["summary"]["ROI"]["MeanEn"]))
    twin = build_twin(eeg_root, "01", field_v_per_m=field, seeds=(0, 1, 2),
                      field_source=f"mri-template MNI152 {DEMO_MONTAGE}, mean normal field "
                                   f"in the left DLPFC ({DEMO_TARGET})")
    dl.save(db_root, "demo: sub-01 neural-mass fit and twin", paths=[eeg_root],
            record={"action": "demo"})
    headline = twin["Headline"]
    log(f"ntdb twin build eeg-rest --subject 01 --field {field:.3f}: 40 Hz tACS vs sham: "
        f"40 Hz power {headline['Power40HzChangePercent']:+.1f}%, alpha peak "
        f"{headline['AlphaPeakChangeHz']:+.3f} Hz, entrainment PLV "
        f"{headline['EntrainmentPLVActive']:.2f} (sham {headline['EntrainmentPLVSham']:.2f})")
    log(f"    figure: {eeg_root / twin['Files']['figure']}")
    rows = Catalog(build_catalog(db_root).catalog_dir).search(
        Filters(derivative=("ntdb-nmm", "ntdb-twin")))
    log(f"ntdb catalog search {db_root.name} --derivative ntdb-nmm --derivative ntdb-twin: "
        f"{len(rows)} files")
    return {"headline": headline, "fit": fitted["Fitted"], "files": twin["Files"]}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
