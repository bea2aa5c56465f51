"""Checks on stimulation sessions: each has a BEP037-style sidecar that passes its schema."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from neurotwin_db.curation.validate._registry import Finding, Target, check, read_json

SCHEMAS = {"tes": "nibs_tes", "tms": "nibs_tms"}
KIND_NAMES = {"tes": "tES (tACS/tDCS)", "tms": "TMS-EEG", None: "stimulation"}


@cache
def _validator(name: str) -> Any:
    import jsonschema

    from neurotwin_db.schemas import load_schema

    return jsonschema.Draft202012Validator(load_schema(name))


def _fields(target: Target) -> dict[str, object]:
    kind = target.info.get("kind")
    return {"kind": KIND_NAMES.get(kind, str(kind)), "marker": target.info["marker"],
            "sidecar": target.info["sidecar"], "schema": SCHEMAS.get(kind, "nibs_tes|nibs_tms")}


@check("NTDB_STIM_SIDECAR_MISSING")
def stim_sidecar_missing(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """A tACS or TMS-EEG recording has its stimulation sidecar."""
    if not (target.root / target.info["sidecar"]).is_file():
        yield Finding(target.info["marker"], fields=_fields(target))


@check("NTDB_STIM_SIDECAR_INVALID")
def stim_sidecar_invalid(target: Target, params: Mapping[str, Any]) -> Iterator[Finding]:
    """The stimulation sidecar is JSON that passes the schema of its kind of stimulation."""
    import jsonschema

    rel = target.info["sidecar"]
    path = target.root / rel
    if not path.is_file():
        return
    fields = _fields(target)
    data = read_json(path)
    kind = target.info.get("kind")
    if data is None:
        yield Finding(rel, fields={**fields, "where": "(file)", "error": "it is not valid JSON"})
    elif kind not in SCHEMAS:
        system = data.get("StimulationSystemName") if isinstance(data, dict) else None
        yield Finding(rel, location="StimulationSystemName", value=str(system),
                      fields={**fields, "where": "StimulationSystemName",
                              "error": f"{system!r} is not 'tes' or 'tms'"})
    else:
        error = jsonschema.exceptions.best_match(_validator(SCHEMAS[kind]).iter_errors(data))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(top level)"
            yield Finding(rel, location=where, fields={**fields, "where": where,
                                                       "error": error.message})
