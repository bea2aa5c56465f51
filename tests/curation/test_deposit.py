"""ntdb deposit against real local servers: zenodo-mock and a fault-injecting stand-in."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests
from deposit_fixtures import PAPER_DOI, SOURCE_DOI, TOKEN, description, run, save, tags
from fault_zenodo import FaultZenodo
from zenodo_mock.testing import spawn

from neurotwin_db import datalad as dl
from neurotwin_db.curation.deposit import deposit_dataset, plan_deposit, state_dir

pytest_plugins = ["deposit_fixtures"]
pytestmark = [pytest.mark.datalad, pytest.mark.usefixtures("deposit_env")]


def _deposit(ds: Path, api: str, *extra: str, token: str = TOKEN) -> dict:
    result = run("deposit", ds, "--to", api, "--json", *extra, env={"ZENODO_TOKEN": token})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _is_clean(ds: Path) -> bool:
    return not dl.git(ds, "status", "--porcelain").strip()


def test_deposit_to_zenodo_mock_publishes_one_record(shareable, tmp_path):
    storage = tmp_path / "deposits"
    with spawn(storage) as base:
        out = _deposit(shareable, f"{base}/api")
        doi, record = out["doi"], out["record_id"]
        assert doi.startswith("10.5072/zenodo.") and out["status"] == "published"
        assert [p.name for p in storage.iterdir()] == [record]  # exactly one deposition
        published = requests.get(f"{base}/api/records/{record}", timeout=10).json()
        again = _deposit(shareable, f"{base}/api")  # a finished deposit is a no-op
        assert len(list(storage.iterdir())) == 1
    assert again["status"] == "skipped" and again["doi"] == doi
    meta = published["metadata"]
    assert meta["upload_type"] == "dataset" and meta["license"] == "cc-by-4.0"
    assert meta["creators"][0] == {"name": "Lovelace, Ada", "orcid": "0000-0002-1825-0097",
                                   "affiliation": "Analytical Engine Society"}
    assert meta["grants"] == [{"id": "10.13039/501100000780::101017716"}]
    relations = {(r["relation"], r["identifier"]) for r in meta["related_identifiers"]}
    assert relations == {("isDerivedFrom", SOURCE_DOI), ("isSupplementTo", PAPER_DOI)}
    assert {"EEG", "Homo sapiens"} <= set(meta["keywords"]) and meta["version"] == "1.0.0"
    # the local records: DOI saved, version tagged at the saved commit
    assert description(shareable)["DatasetDOI"] == f"doi:{doi}"
    assert tags(shareable) == ["v1.0.0"] and _is_clean(shareable)
    assert dl.git(shareable, "rev-parse", "v1.0.0^{commit}").strip().decode() == \
        dl.head_commit(shareable)
    assert f"https://doi.org/{doi}" in out["citation"]
    # the archives hold the shareable files of the tagged version, nothing else
    names = sorted(p.name for p in (storage / record).iterdir())
    assert names[-1] == "top-level.zip" and all(n.startswith("sub-") for n in names[:-1])
    members = []
    for name in names:
        with zipfile.ZipFile(storage / record / name) as zf:
            members += zf.namelist()
            if name == "top-level.zip":
                packed = zf.read("dataset_description.json")
    assert packed == dl.git(shareable, "show", "v1.0.0:dataset_description.json")
    tracked = dl.git(shareable, "ls-files").decode().split()
    assert sorted(members) == sorted(p for p in tracked if not p.startswith((".datalad/",
                                                                            ".ntdb/", ".git")))


def test_faults_are_retried_and_the_token_never_leaks(shareable, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    monkeypatch.setenv("NTDB_LOG_DIR", str(logs))
    monkeypatch.setenv("NTDB_DEPOSIT_TIMEOUT", "1")
    with FaultZenodo(token=TOKEN, faults=["timeout", "500", "checksum"], stall=2.0) as server:
        result = run("-vv", "deposit", shareable, "--to", server.api,
                     env={"ZENODO_TOKEN": TOKEN})
        assert result.exit_code == 0, result.output
        assert len(server.depositions) == 1
        (dep,) = server.depositions.values()
        assert dep.published and not server.seen_tokens_in_urls
        outcomes = [outcome for _, outcome in server.uploads]
    assert outcomes[:3] == ["timeout", "500", "checksum"] and outcomes.count("ok") == 3
    assert description(shareable)["DatasetDOI"] == f"doi:{dep.doi}"
    assert "v1.0.0" in tags(shareable)
    assert f"published doi:{dep.doi}" in result.stdout
    # the planted token is nowhere: output, logs, dataset (files and git objects), state
    secret = TOKEN.encode()
    assert secret not in result.stdout_bytes + result.stderr_bytes
    assert list(logs.glob("ntdb-*.log")), "the run wrote no log file"
    written = [p for folder in (logs, shareable, state_dir()) for p in folder.rglob("*")
               if p.is_file()]
    assert written and not [p for p in written if secret in p.read_bytes()]
    objects = subprocess.run(["git", "-C", str(shareable), "cat-file", "--batch-all-objects",
                              "--batch"], capture_output=True, check=True).stdout
    assert secret not in objects


def test_interrupted_deposit_resumes_the_same_record(shareable):
    with FaultZenodo(token=TOKEN, fail_after=1) as server:
        first = run("deposit", shareable, "--to", server.api, env={"ZENODO_TOKEN": TOKEN})
        assert first.exit_code == 2
        assert "re-run the same command to resume" in first.stderr
        assert len(server.depositions) == 1
        assert not next(iter(server.depositions.values())).published
        assert "DatasetDOI" not in description(shareable) and tags(shareable) == []
        server.fail_after = None
        second = run("deposit", shareable, "--to", server.api, env={"ZENODO_TOKEN": TOKEN})
        assert second.exit_code == 0, second.output
        assert len(server.depositions) == 1  # the same record, continued
        (dep,) = server.depositions.values()
        uploaded_ok = [name for name, outcome in server.uploads if outcome == "ok"]
    assert dep.published and len(dep.files) == 3
    assert len(uploaded_ok) == len(set(uploaded_ok)) == 3  # nothing uploaded twice
    assert "resuming the unfinished deposit of v1.0.0" in second.stdout
    assert description(shareable)["DatasetDOI"] == f"doi:{dep.doi}"
    assert tags(shareable) == ["v1.0.0"]


def test_crash_after_publishing_is_finished_by_a_rerun(shareable, monkeypatch):
    from neurotwin_db.curation.deposit import _deposit

    monkeypatch.setenv("ZENODO_TOKEN", TOKEN)

    def crash(plan, state):  # noqa: ANN001, ANN202 - the process dies after publishing
        raise KeyboardInterrupt

    with FaultZenodo(token=TOKEN) as server:
        with monkeypatch.context() as patch:
            patch.setattr(_deposit, "finalize", crash)
            with pytest.raises(KeyboardInterrupt):
                deposit_dataset(shareable, to=server.api)
        assert "DatasetDOI" not in description(shareable)
        result = deposit_dataset(shareable, to=server.api)
        assert len(server.depositions) == 1
    assert result.status == "published" and result.doi == "10.9999/fault.501"
    assert description(shareable)["DatasetDOI"] == "doi:10.9999/fault.501"


def test_new_version_links_two_records(shareable, tmp_path):
    storage = tmp_path / "deposits"
    with spawn(storage) as base:
        first = _deposit(shareable, f"{base}/api")
        (shareable / "CHANGES").write_text("1.1.0\n  - README clarified.\n\n" +
                                         (shareable / "CHANGES").read_text())
        save(shareable, "describe v1.1.0")
        plan = plan_deposit(shareable, to=f"{base}/api", new_version=True)
        assert plan.version == "1.1.0" and plan.previous_doi == first["doi"]
        second = _deposit(shareable, f"{base}/api", "--new-version")
        records = [requests.get(f"{base}/api/records/{r}", timeout=10).json()
                   for r in (first["record_id"], second["record_id"])]
    assert len(list(storage.iterdir())) == 2 and first["doi"] != second["doi"]
    assert all(r["doi"] for r in records)  # both published
    related = records[1]["metadata"]["related_identifiers"]
    assert {"identifier": first["doi"], "relation": "isNewVersionOf", "scheme": "doi",
            "resource_type": "dataset"} in related
    assert records[1]["metadata"]["version"] == "1.1.0"
    assert description(shareable)["DatasetDOI"] == f"doi:{second['doi']}"
    assert tags(shareable) == ["v1.0.0", "v1.1.0"] and second["tag"] == "v1.1.0"
    with zipfile.ZipFile(io.BytesIO((storage / second["record_id"] / "top-level.zip")
                                    .read_bytes())) as zf:
        assert json.loads(zf.read("dataset_description.json"))["DatasetDOI"] == \
            f"doi:{second['doi']}"


def test_deposit_records_the_doi_in_the_database(shareable, db, tmp_path):
    from neurotwin_db.catalog import register_dataset

    entry = register_dataset(db, str(shareable), name="eeg-rest")
    clone = db.root / entry.path
    with spawn(tmp_path / "deposits") as base:
        missing = run("deposit", clone, "--to", f"{base}/api", env={"ZENODO_TOKEN": TOKEN})
        assert missing.exit_code == 2
        assert "annexed file(s)" in missing.stderr and "datalad get -d" in missing.stderr
        assert not list((tmp_path / "deposits").iterdir())
        list(dl.get(clone, ["."]))
        out = _deposit(clone, f"{base}/api")
    registry = json.loads(db.registry_path.read_text())["datasets"]
    assert registry[0]["doi"] == out["doi"] and registry[0]["version"] == "v1.0.0"
    assert any("registry and catalog" in note for note in out["notes"])
    found = run("catalog", "search", db.root, "--doi", f"doi:{out['doi']}", "--json")
    assert found.exit_code == 0, found.output
    rows = json.loads(found.stdout)
    assert rows and {r["dataset"] for r in rows} == {"eeg-rest"}
    assert _is_clean(db.root)


def test_dry_run_prints_the_plan_and_touches_nothing(shareable):
    head = dl.head_commit(shareable)
    result = run("deposit", shareable, "--to", "zenodo", "--dry-run")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "https://zenodo.org/api: a new record" in text and "v1.0.0" in text
    assert "top-level.zip" in text and "sub-" in text and "KiB" in text
    assert "grant:    10.13039/501100000780::101017716" in text and "gate:     passed" in text
    as_json = run("deposit", shareable, "--to", "zenodo-sandbox", "--dry-run", "--json")
    plan = json.loads(as_json.stdout)
    assert plan["target"] == "https://sandbox.zenodo.org/api" and plan["refused"] == ""
    assert [a["name"] for a in plan["archives"]][0] == "top-level.zip"
    assert plan["datacite"]["types"]["resourceTypeGeneral"] == "Dataset"
    assert not state_dir().exists() and dl.head_commit(shareable) == head
    assert _is_clean(shareable)


def test_the_gate_refuses_phi_before_any_network_call(shareable, tmp_path):
    sidecar = next(shareable.glob("sub-*/eeg/*_eeg.json"))
    content = json.loads(sidecar.read_text()) | {"PatientName": "Johanna Testperson"}
    sidecar.write_text(json.dumps(content))
    save(shareable)
    with spawn(tmp_path / "deposits") as base:
        result = run("deposit", shareable, "--to", f"{base}/api", env={"ZENODO_TOKEN": TOKEN})
        assert not list((tmp_path / "deposits").iterdir())
    assert result.exit_code == 1  # findings in the data, as with --dry-run and validate
    assert "PHI_JSON_KEY" in result.stderr and "deposit refused" in result.stderr
    assert "Testperson" not in result.output  # the finding is masked


# --- the pure pieces -------------------------------------------------------------------


def test_archives_stay_within_the_record_limits():
    from neurotwin_db.curation.deposit import TrackedFile, plan_archives

    files = [TrackedFile("README.md", "a", 10), TrackedFile("phenotype/x.tsv", "b", 10)]
    files += [TrackedFile(f"sub-{n:03d}/eeg/sub-{n:03d}_eeg.edf", str(n), 1000)
              for n in range(250)]
    archives = plan_archives(files)
    assert len(archives) <= 100 and archives[0].name == "top-level.zip"
    assert archives[1].name == "sub-000--sub-002.zip"
    assert sorted(f.path for a in archives for f in a.files) == sorted(f.path for f in files)
    assert [a.name for a in plan_archives(files[:5])][1:] == [f"sub-{n:03d}.zip"
                                                             for n in range(3)]
    with pytest.raises(Exception, match="over the 50 GB a Zenodo record takes"):
        plan_archives([TrackedFile("sub-1/anat/big.nii.gz", "c", 51 * 10**9)])


def test_archives_are_deterministic(shareable, tmp_path):
    from neurotwin_db.curation.deposit import plan_archives
    from neurotwin_db.curation.deposit._pack import list_shareable, write_archive

    archive = plan_archives(list_shareable(shareable))[0]
    first = write_archive(shareable, archive, tmp_path / "a.zip", {"README.md": b"x"})
    second = write_archive(shareable, archive, tmp_path / "b.zip", {"README.md": b"x"})
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.read("README.md") == b"x"
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_private_subdatasets_and_sourcedata_are_never_packed(shareable):
    from neurotwin_db.curation.deposit._pack import list_shareable

    dl.create_dataset(shareable / "derivatives" / "private", superdataset=shareable)
    (shareable / "derivatives" / "private" / "secret.txt").write_text("private")
    (shareable / "sourcedata").mkdir()
    (shareable / "sourcedata" / "raw.txt").write_text("raw")
    dl.save(shareable, "add private parts", recursive=True)
    paths = [f.path for f in list_shareable(shareable)]
    assert "dataset_description.json" in paths and any(p.startswith("sub-") for p in paths)
    assert not [p for p in paths if p.startswith(("derivatives", "sourcedata", ".ntdb",
                                                  ".datalad", ".git"))]
    assert not [p for p in paths if p.endswith(".gitattributes")]
    notes = plan_deposit(shareable, to="zenodo").notes  # and the plan says so
    assert "subdataset derivatives/private/ is not deposited (deposit it on its own)" in notes


def test_datacite_from_bids_authors_and_free_text_funding(tmp_path):
    import datetime

    from datacite import schema45

    from neurotwin_db.curation.deposit import DatasetSources, build_datacite, to_zenodo

    sources = DatasetSources(tmp_path, {
        "Name": "T", "License": "CC0", "Authors": ["Ada Lovelace", "Turing, Alan",
                                                    "Neurotwin consortium"],
        "Funding": ["NIH award R01-MH123456", "A private foundation"],
        "ReferencesAndLinks": ["doi:10.1234/ABC", "https://example.org/protocol", "a note"]},
        readme="# T\n\nText.", species=("mus musculus",), datatypes=("ecephys",))
    data = build_datacite(sources, version="2.0.0", issued=datetime.date(2025, 2, 3),
                          doi="doi:10.5281/zenodo.9", previous_doi="10.5281/zenodo.8")
    assert schema45.validate(data), list(schema45.validator.iter_errors(data))
    assert [c["name"] for c in data["creators"]] == ["Lovelace, Ada", "Turing, Alan",
                                                     "Neurotwin consortium"]
    assert data["creators"][2]["nameType"] == "Organizational" and data["doi"] == \
        "10.5281/zenodo.9"
    assert data["rightsList"][0]["rightsIdentifier"] == "cc0-1.0"
    assert {"subject": "extracellular electrophysiology"} in data["subjects"]
    assert data["subjects"][-1]["classificationCode"] == "10090"
    relations = {(r["relationType"], r["relatedIdentifier"]) for r in data["relatedIdentifiers"]}
    assert relations == {("IsNewVersionOf", "10.5281/zenodo.8"), ("IsSupplementTo", "10.1234/abc"),
                         ("References", "https://example.org/protocol")}
    meta = to_zenodo(data)
    assert "grants" not in meta  # Zenodo takes EU grants only; the rest goes to notes
    assert meta["notes"] == ("Funding: National Institutes of Health award R01-MH123456; "
                             "A private foundation")
    assert meta["description"] == "<h3>T</h3>\n<p>Text.</p>"


def test_orcids_and_particles_in_bids_author_strings(tmp_path):
    """BIDS Authors are plain strings: an ORCID written in one becomes its identifier."""
    import datetime

    from neurotwin_db.curation.deposit import DatasetSources, build_datacite

    sources = DatasetSources(tmp_path, {
        "Name": "T", "License": "CC0", "Authors": [
            "Ada Lovelace (https://orcid.org/0000-0002-1825-0097)",
            "Jane van der Berg, ORCID 0000-0002-1694-233X", "Turing, Alan"]},
        readme="# T", species=("homo sapiens",), datatypes=("eeg",))
    data = build_datacite(sources, version="1.0.0", issued=datetime.date(2025, 2, 3))
    people = [(c["familyName"], c["givenName"],
               [i["nameIdentifier"] for i in c.get("nameIdentifiers", [])])
              for c in data["creators"]]
    assert people == [("Lovelace", "Ada", ["https://orcid.org/0000-0002-1825-0097"]),
                      ("van der Berg", "Jane", ["https://orcid.org/0000-0002-1694-233X"]),
                      ("Turing", "Alan", [])]


def test_the_token_is_masked_in_logs_and_messages(caplog):
    import logging

    from neurotwin_db.curation.deposit import ZenodoClient, resolve_target
    from neurotwin_db.curation.deposit._zenodo import redacted_logs

    client = ZenodoClient(resolve_target("zenodo-sandbox"), TOKEN)
    assert client.redact(f"echo: Bearer {TOKEN}") == "echo: Bearer ***"
    assert TOKEN not in repr(client.session.auth)
    client.close()
    with caplog.at_level(logging.DEBUG), redacted_logs(TOKEN):
        logging.getLogger("urllib3.connectionpool").debug("header %s", f"Bearer {TOKEN}")
    assert "Bearer ***" in caplog.text and TOKEN not in caplog.text
