"""ntdb deposit refuses bad input with one clear line and a non-zero exit."""

from __future__ import annotations

import socket

import pytest
from deposit_fixtures import TOKEN, run, save, set_description
from fault_zenodo import FaultZenodo

from neurotwin_db import datalad as dl

pytest_plugins = ["deposit_fixtures"]
pytestmark = [pytest.mark.datalad, pytest.mark.usefixtures("deposit_env")]


def _one_line_error(result, *needles: str) -> str:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_authors(shareable):
    dl.git(shareable, "rm", "-q", "CITATION.cff")
    set_description(shareable, Authors=None)
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--dry-run"),
                    "has no Authors", "\"Authors\": [\"Given Family\"")


def test_invalid_license(shareable):
    set_description(shareable, License="All rights reserved")
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--dry-run"),
                    "License 'All rights reserved'", "CC-BY-4.0")


def test_datacite_validation_failure_names_the_field(shareable):
    set_description(shareable, Name=42)
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--dry-run"),
                    "not valid at titles[0].title", "42 is not of type 'string'",
                    "dataset_description.json Name")


def test_bad_orcid_in_citation_file(shareable):
    cff = shareable / "CITATION.cff"
    cff.write_text(cff.read_text().replace("0000-0002-1825-0097", "0000-0002-1825-0098"))
    save(shareable)
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--dry-run"),
                    "CITATION.cff author 1", "not a valid ORCID")


def test_uncommitted_changes_are_refused(shareable):
    (shareable / "README.md").write_text("changed but not saved\n")
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--dry-run"),
                    "uncommitted changes (README.md)", "datalad save")


def test_wrong_token_gets_a_sandbox_hint(shareable):
    with FaultZenodo(token=TOKEN) as server:
        result = run("deposit", shareable, "--to", server.api, env={"ZENODO_TOKEN": "wrong"})
        assert not server.depositions
    _one_line_error(result, "refused the token from $ZENODO_TOKEN", "HTTP 401",
                    "sandbox.zenodo.org")


def test_unreachable_server(shareable):
    port = _closed_port()
    result = run("deposit", shareable, "--to", f"http://127.0.0.1:{port}/api",
                 env={"ZENODO_TOKEN": TOKEN, "NTDB_DEPOSIT_TIMEOUT": "0.5"})
    _one_line_error(result, f"cannot reach http://127.0.0.1:{port}/api (Connection refused",
                    "check --to")


def test_missing_token(shareable):
    _one_line_error(run("deposit", shareable, "--to", "zenodo-sandbox"),
                    "no token for https://sandbox.zenodo.org/api", "$ZENODO_SANDBOX_TOKEN",
                    "keyring set neurotwin-db sandbox.zenodo.org")


@pytest.mark.parametrize(("to", "needle"), [
    ("ftp://example.org/api", "is not zenodo, zenodo-sandbox or an http(s) URL"),
    ("http://example.org/api", "plain http to a remote host"),
])
def test_bad_target(shareable, to, needle):
    _one_line_error(run("deposit", shareable, "--to", to, "--dry-run"), needle)


def test_new_version_needs_a_previous_doi(shareable):
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--new-version", "--dry-run"),
                    "--new-version needs the previous version's DOI")


def test_already_deposited_needs_new_version(shareable):
    set_description(shareable, DatasetDOI="doi:10.5281/zenodo.42")
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--dry-run"),
                    "already has DatasetDOI doi:10.5281/zenodo.42", "--new-version")


def test_not_a_datalad_dataset(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "dataset_description.json").write_text('{"Name": "x"}')
    _one_line_error(run("deposit", tmp_path / "plain", "--to", "zenodo", "--dry-run"),
                    "not the root of a DataLad dataset")


def test_new_version_needs_changes(shareable):
    set_description(shareable, DatasetDOI="doi:10.5281/zenodo.42")
    dl.tag(shareable, "v1.0.0", message="deposited")
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--new-version", "--dry-run"),
                    "has not changed since v1.0.0 (doi:10.5281/zenodo.42)")


def test_a_test_doi_cannot_get_a_production_new_version(shareable):
    set_description(shareable, DatasetDOI="doi:10.5072/zenodo.1001")
    dl.tag(shareable, "v1.0.0", message="deposited to a test server")
    (shareable / "CHANGES").write_text("1.1.0\n  - more\n" + (shareable / "CHANGES").read_text())
    save(shareable)
    _one_line_error(run("deposit", shareable, "--to", "zenodo", "--new-version", "--dry-run"),
                    "doi:10.5072/zenodo.1001 is a zenodo-sandbox record", "10.5281/")


@pytest.mark.parametrize("token", ["QZX-A\nQZX-B", "QZX en", "QZXé"])
def test_a_malformed_token_is_refused_and_never_shown(shareable, token):
    result = run("deposit", shareable, "--to", "http://127.0.0.1:9/api",
                 env={"ZENODO_TOKEN": token})
    line = _one_line_error(result, "the token in $ZENODO_TOKEN holds spaces, line breaks")
    assert "QZX" not in line


def test_token_env_takes_a_variable_name_and_never_echoes_it(shareable):
    line = _one_line_error(run("deposit", shareable, "--to", "http://127.0.0.1:9/api",
                               "--token-env", "s3cr3t value"),
                           "--token-env takes the NAME of an environment variable")
    assert "s3cr3t" not in line


@pytest.mark.parametrize("to", ["http://steward:PWSECRET@127.0.0.1:9/api",
                                "http://127.0.0.1:9/api?access_token=PWSECRET"])
def test_credentials_in_the_url_are_refused_and_never_shown(shareable, to):
    line = _one_line_error(run("deposit", shareable, "--to", to, "--dry-run"),
                           "--to must be the bare API URL")
    assert "PWSECRET" not in line


def test_a_second_deposit_of_the_same_version_waits_for_none(shareable):
    """While one deposit holds the lock, another of the same dataset is refused at once."""
    from neurotwin_db.curation.deposit import plan_deposit
    from neurotwin_db.curation.deposit._state import locked

    with FaultZenodo(token=TOKEN) as server:
        plan = plan_deposit(shareable, to=server.api)
        with locked(plan.state.path):
            result = run("deposit", shareable, "--to", server.api, env={"ZENODO_TOKEN": TOKEN})
        assert not server.depositions
    _one_line_error(result, "another `ntdb deposit` of this dataset is running")
