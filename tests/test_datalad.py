import subprocess
from pathlib import Path

import pytest

from neurotwin_db import datalad as dl
from neurotwin_db.errors import GitAnnexMissingError

pytestmark = pytest.mark.datalad


def test_missing_git_annex_is_an_actionable_error(tmp_path, without_git_annex):
    with pytest.raises(GitAnnexMissingError, match="pip install git-annex"):
        dl.create_dataset(tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_save_writes_a_structured_record(tmp_path):
    ds = dl.create_dataset(tmp_path / "ds")
    (ds / "a.txt").write_text("hello\n")
    dl.save(ds, "add a", record={"action": "test", "n": 1})
    message = subprocess.check_output(["git", "-C", str(ds), "log", "-1", "--format=%B"],
                                      text=True)
    assert message.startswith("[ntdb] add a")
    assert 'ntdb-record: {"action": "test", "n": 1}' in message


def test_run_is_a_rerunnable_datalad_record(tmp_path):
    ds = dl.create_dataset(tmp_path / "ds")
    dl.run(ds, ["bash", "-c", "echo 42 > out.txt"], summary="make out", outputs=["out.txt"])
    assert (ds / "out.txt").read_text() == "42\n"
    message = subprocess.check_output(["git", "-C", str(ds), "log", "-1", "--format=%B"],
                                      text=True)
    assert "DATALAD RUNCMD" in message


def test_clone_siblings_and_get(tmp_path):
    origin = dl.create_dataset(tmp_path / "origin", text2git=False)
    (origin / "big.bin").write_bytes(b"\0" * 1000)
    dl.save(origin, "add big")
    copy = dl.clone(str(origin), tmp_path / "copy")
    assert (copy / "big.bin").is_symlink() and not (copy / "big.bin").exists()
    names = {s["name"] for s in dl.siblings(copy)}
    assert "origin" in names
    results = list(dl.get(copy, ["big.bin"]))
    assert any(r["status"] == "ok" for r in results)
    assert (copy / "big.bin").read_bytes() == b"\0" * 1000
    dl.add_sibling(copy, "mirror", str(origin))
    assert "mirror" in {s["name"] for s in dl.siblings(copy)}


def test_is_dataset_and_head(tmp_path):
    assert not dl.is_dataset(tmp_path)
    ds = dl.create_dataset(tmp_path / "ds")
    assert dl.is_dataset(ds)
    assert len(dl.head_commit(ds) or "") == 40
    assert dl.head_commit(Path(tmp_path)) is None
