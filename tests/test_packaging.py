import importlib
import tomllib
from pathlib import Path

import neurotwin_db

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "neurotwin_db").rglob("__init__.py")}
    assert found <= listed
    assert "neurotwin_db.demo_datasets" in listed


def test_public_subpackages_declare_all():
    for name in ("neurotwin_db", "neurotwin_db.catalog", "neurotwin_db.curation",
                 "neurotwin_db.modelling", "neurotwin_db.schemas"):
        module = importlib.import_module(name)
        assert module.__all__, name
        for symbol in module.__all__:
            assert hasattr(module, symbol), (name, symbol)


def test_version_is_exposed():
    assert neurotwin_db.__version__
