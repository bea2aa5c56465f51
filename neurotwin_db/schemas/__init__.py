"""JSON Schemas and rule files shipped as package data, and their loader.

>>> schema = load_schema("registry")
>>> schema["title"]
'Neurotwin database registry'
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from neurotwin_db.errors import InputError

__all__ = ["load_schema", "load_yaml", "validate_instance"]


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` from this package."""
    resource = files(__name__) / f"{name}.schema.json"
    if not resource.is_file():
        raise InputError(f"no schema named {name!r} ships with neurotwin_db")
    return json.loads(resource.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def validate_instance(instance: object, name: str, *, source: str) -> None:
    """Validate ``instance`` against schema ``name``; raise InputError naming ``source``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(name))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(map(str, err.path)) or "(top level)"
        raise InputError(f"{source} does not match the {name} schema at {where}: "
                         f"{err.message}; fix the file or recreate it with ntdb")


def load_yaml(relpath: str) -> Any:
    """Load a YAML file shipped in this package, e.g. ``heuristics/mri.yaml``."""
    import yaml

    resource = files(__name__).joinpath(*relpath.split("/"))
    if not resource.is_file():
        raise InputError(f"no file {relpath!r} ships with neurotwin_db.schemas")
    return yaml.safe_load(resource.read_text(encoding="utf-8"))
