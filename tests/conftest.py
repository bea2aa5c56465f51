"""Shared fixtures: real DataLad databases, built once per session where read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

# git-annex ships in the venv's bin/ (PyPI wheel); DataLad needs it on PATH.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("DATALAD_LOG_LEVEL", "warning")


@pytest.fixture(autouse=True)
def _isolated_logs(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTDB_LOG_DIR", str(tmp_path_factory.getbasetemp() / "logs"))


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database, built once; tests must not modify it (clone it instead)."""
    from neurotwin_db.demo_datasets.demo import build_demo

    out = tmp_path_factory.mktemp("demo") / "db"
    build_demo(out, log=lambda _msg: None)
    return out


PYBIDS_SDIST = "pybids-0.22.0.tar.gz"


@pytest.fixture(scope="session")
def pybids_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pybids' example datasets from its source archive, extracted once per session.

    ``make test`` downloads the archive into .cache/ first; a bare pytest run does it here.
    """
    archive = Path(__file__).parents[1] / ".cache" / PYBIDS_SDIST
    if not archive.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "pybids==0.22.0", "-d", str(archive.parent)],
                       check=True)
    out = tmp_path_factory.mktemp("pybids")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/tests/data/" in m.name]
        tar.extractall(out, members=members, filter="data")
    return out / PYBIDS_SDIST.removesuffix(".tar.gz") / "tests" / "data"


@pytest.fixture
def db(tmp_path: Path):  # noqa: ANN201
    """A fresh, empty database."""
    from neurotwin_db.catalog import init_database

    return init_database(tmp_path / "db")


def write(root: Path, rel: str, text: str) -> Path:
    """Write a text file under ``root`` (test helper)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def plain_bids(tmp_path: Path) -> Path:
    """A small plain-folder BIDS dataset with sidecars at three levels."""
    root = tmp_path / "plain"
    write(root, "dataset_description.json",
          '{"Name": "plain", "BIDSVersion": "1.10.0", "License": "CC0-1.0"}')
    write(root, "participants.tsv", "participant_id\tspecies\tage\nsub-01\thomo sapiens\t70\n"
                                    "sub-02\thomo sapiens\tn/a\n")
    write(root, "task-rest_eeg.json", '{"TaskName": "rest", "SamplingFrequency": 250, '
                                      '"PowerLineFrequency": 50}')
    write(root, "sub-02/sub-02_task-rest_eeg.json", '{"SamplingFrequency": 500}')
    write(root, "sub-02/eeg/sub-02_task-rest_run-1_eeg.json", '{"PowerLineFrequency": 60}')
    for sub in ("01", "02"):
        write(root, f"sub-{sub}/eeg/sub-{sub}_task-rest_run-1_eeg.edf", "not really EDF")
        write(root, f"sub-{sub}/anat/sub-{sub}_T1w.nii.gz", "x" * 10)
    return root


@pytest.fixture
def clean_copy(tmp_path: Path):  # noqa: ANN201
    """Copy a folder into tmp_path (for tests that mutate fixtures)."""
    def _copy(src: Path, name: str = "copy") -> Path:
        return Path(shutil.copytree(src, tmp_path / name, symlinks=True))
    return _copy


@pytest.fixture
def without_git_annex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH holding git but no git-annex, and no venv bin/ to fall back on."""
    from neurotwin_db import datalad as dl

    only_git = tmp_path / "only-git"
    only_git.mkdir()
    (only_git / "git").symlink_to(subprocess.check_output(["which", "git"], text=True).strip())
    monkeypatch.setenv("PATH", str(only_git))
    monkeypatch.setattr(dl, "_venv_bin", lambda: tmp_path / "no-venv")
