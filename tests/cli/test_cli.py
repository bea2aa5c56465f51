import json
from unittest import mock

import click
import pytest
from click.testing import CliRunner
from conftest import write

from neurotwin_db import __version__
from neurotwin_db.cli.main import cli


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", list(_commands(cli)))
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_not_a_database_is_one_line_and_exit_2(tmp_path):
    result = run("dataset", "add", tmp_path, "x", "--modality", "eeg")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and "is not a Neurotwin database" in lines[0]
    assert "ntdb init" in lines[0]


def test_debug_reraises_with_traceback(tmp_path):
    from neurotwin_db.errors import CatalogError

    with pytest.raises(CatalogError):
        CliRunner().invoke(cli, ["--debug", "catalog", "show", str(tmp_path), "x"],
                           catch_exceptions=False)


def test_bugs_keep_their_traceback(tmp_path):
    with mock.patch("neurotwin_db.catalog.init_database", side_effect=ZeroDivisionError):
        result = CliRunner().invoke(cli, ["init", str(tmp_path / "db")])
    assert isinstance(result.exception, ZeroDivisionError)


def test_catalog_build_forwards_options(tmp_path):
    from neurotwin_db.catalog import BuildResult
    from neurotwin_db.report import Report

    fake = BuildResult(tmp_path, Report(), indexed=["a"], files=3, written=True)
    with mock.patch("neurotwin_db.catalog.build_catalog", return_value=fake) as build:
        result = run("catalog", "build", tmp_path, "--jobs", "3", "--scheduler",
                     "tcp://h:1", "--no-save", "--json")
    assert result.exit_code == 0
    build.assert_called_once()
    kwargs = build.call_args.kwargs
    assert (kwargs["jobs"], kwargs["scheduler"], kwargs["save"]) == (3, "tcp://h:1", False)
    assert json.loads(result.output)["indexed"] == ["a"]


def test_get_forwards_filters(tmp_path):
    from neurotwin_db.catalog import GetResult

    with mock.patch("neurotwin_db.catalog.plan_get", return_value=GetResult(tmp_path)) as plan:
        result = run("get", tmp_path, "--sub", "01", "--sub", "02", "--task", "rest",
                     "--dry-run", "--json")
    filters = plan.call_args.args[1]
    assert filters.sub == ("01", "02") and filters.task == ("rest",)
    assert result.exit_code == 1  # nothing matched


@pytest.mark.datalad
def test_end_to_end_on_a_new_database(tmp_path):
    db = tmp_path / "db"
    assert run("init", db).exit_code == 0
    assert run("dataset", "add", db, "eeg1", "--modality", "eeg").exit_code == 0
    listed = json.loads(run("dataset", "list", db, "--json").output)
    assert [d["id"] for d in listed] == ["eeg1"]
    assert run("catalog", "build", db).exit_code == 0
    out = run("catalog", "search", db, "--dataset", "eeg1", "--json").output
    assert {r["path"] for r in json.loads(out)} >= {"dataset_description.json"}
    shown = json.loads(run("catalog", "show", db, "eeg1", "--json").output)
    assert shown["modality"] == "eeg"


@pytest.mark.datalad
def test_label_with_dotdot_is_refused(tmp_path):
    db = tmp_path / "db"
    run("init", db)
    result = run("dataset", "add", db, "../escape", "--modality", "eeg")
    assert result.exit_code == 2 and "not allowed" in result.output
    assert not (tmp_path / "escape").exists()


def test_sql_that_writes_exits_2(demo_db):
    result = run("catalog", "search", demo_db, "--sql", "DROP TABLE files")
    assert result.exit_code == 2 and "read-only" in result.output


def test_sql_and_filters_do_not_mix(demo_db):
    result = run("catalog", "search", demo_db, "--sub", "01", "--sql", "SELECT 1")
    assert result.exit_code == 2 and "cannot be combined" in result.output


def test_malformed_participants_exits_1_without_output(plain_bids):
    write(plain_bids, "participants.tsv", "participant_id\tage\nsub-01\n")
    result = run("catalog", "build", plain_bids)
    assert result.exit_code == 1
    assert "PARTICIPANTS_MALFORMED" in result.output
    assert not (plain_bids / ".ntdb").exists()


def test_invalid_json_exits_1_without_output(plain_bids):
    write(plain_bids, "task-rest_eeg.json", "{nope")
    result = run("catalog", "build", plain_bids, "--json")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["written"] is False
    assert payload["issues"][0]["code"] == "INVALID_JSON"
    assert not (plain_bids / ".ntdb").exists()


def test_missing_git_annex_exits_2(tmp_path, without_git_annex):
    result = run("init", tmp_path / "db")
    assert result.exit_code == 2 and "git-annex was not found" in result.output
    assert not (tmp_path / "db").exists()


def test_demo_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    result = run("demo", tmp_path, "--overwrite")
    assert result.exit_code == 2 and "holds no earlier demo" in result.output
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_search_with_no_match_exits_1(demo_db):
    result = run("catalog", "search", demo_db, "--sub", "99")
    assert result.exit_code == 1 and "nothing matched" in result.output


def test_bad_scheduler_address_is_one_line(plain_bids):
    result = run("catalog", "build", plain_bids, "--scheduler", "nonsense")
    assert result.exit_code == 2 and "Dask scheduler" in result.output


def test_catalog_out_folder_can_be_searched(plain_bids, tmp_path):
    assert run("catalog", "build", plain_bids, "--out", tmp_path / "cat").exit_code == 0
    result = run("catalog", "search", tmp_path / "cat", "--sub", "01", "--json")
    rows = json.loads(result.output)
    assert rows and all(r["present"] for r in rows)


def test_help_paragraphs_render():
    assert "\\b" not in run("--help").output
