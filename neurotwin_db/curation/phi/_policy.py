"""The privacy policy as data: ``schemas/policy/phi.yaml`` plus a dataset's stricter one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from neurotwin_db.errors import InputError
from neurotwin_db.schemas import load_yaml

DATASET_POLICY = Path(".ntdb") / "phi-policy.yaml"
_LISTS = ("deny_keys", "allow_keys", "deny_columns", "date_columns", "dicom_deny_keywords",
          "text_extensions", "text_names", "name_column_tables")


@dataclass(frozen=True)
class Policy:
    """Deny and allow lists; see ``schemas/policy/phi.yaml`` for what each one means."""

    deny_keys: frozenset[str]
    allow_keys: frozenset[str]
    deny_columns: tuple[str, ...]
    date_columns: frozenset[str]
    dicom_deny_keywords: frozenset[str]
    text_extensions: frozenset[str]
    text_names: frozenset[str]
    name_column_tables: frozenset[str]
    covered_by_companion: dict[str, str] = field(default_factory=dict)
    version: str = "1"

    @cached_property
    def _deny_column(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in self.deny_columns), re.IGNORECASE)

    def denies_column(self, name: str) -> bool:
        """Whether a TSV column with this name holds direct identifiers or free text.

        >>> policy = load_policy()
        >>> [policy.denies_column(c) for c in ("participant_name", "birth_year", "filename")]
        [True, True, False]
        """
        name = name.strip()
        if name != "name" and name in _bids_columns():
            return False
        return bool(self._deny_column.search(name))

    def is_date_column(self, name: str) -> bool:
        """Whether a TSV column holds absolute dates (which must be shifted)."""
        return name.strip().lower() in self.date_columns


def _from_data(data: dict[str, Any], source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{source} is not a policy mapping; see schemas/policy/phi.yaml")
    unknown = set(data) - set(_LISTS) - {"version", "covered_by_companion"}
    if unknown:
        raise InputError(f"{source} has unknown policy entries {sorted(unknown)}; "
                         f"allowed: {', '.join(_LISTS)}")
    return data


@cache
def _bids_columns() -> frozenset[str]:
    from neurotwin_db.bidspath import bids_schema

    return frozenset(c["name"] for c in bids_schema().objects.columns.values())


@cache
def _base() -> dict[str, Any]:
    return _from_data(load_yaml("policy/phi.yaml"), "schemas/policy/phi.yaml")


def load_policy(dataset: Path | None = None) -> Policy:
    """The package policy, made stricter by ``DATASET/.ntdb/phi-policy.yaml`` if present.

    A dataset policy can only add to the deny lists (and to ``allow_keys``, which still
    never lets a denied key through).
    """
    data = {k: list(v) if isinstance(v, list) else v for k, v in _base().items()}
    extra_file = None if dataset is None else Path(dataset) / DATASET_POLICY
    if extra_file is not None and extra_file.is_file():
        import yaml

        try:
            extra = _from_data(yaml.safe_load(extra_file.read_text(encoding="utf-8")) or {},
                               str(extra_file))
        except yaml.YAMLError as exc:
            raise InputError(f"{extra_file} is not valid YAML: {exc}") from None
        for key in _LISTS:
            data[key] = list(data.get(key, [])) + list(extra.get(key, []))
        data["version"] = f"{data.get('version')}+{dataset.name if dataset else 'dataset'}"
    return Policy(
        deny_keys=frozenset(data["deny_keys"]),
        allow_keys=frozenset(data["allow_keys"]),
        deny_columns=tuple(data["deny_columns"]),
        date_columns=frozenset(c.lower() for c in data["date_columns"]),
        dicom_deny_keywords=frozenset(data["dicom_deny_keywords"]),
        text_extensions=frozenset(data["text_extensions"]),
        text_names=frozenset(data["text_names"]),
        name_column_tables=frozenset(data["name_column_tables"]),
        covered_by_companion=dict(data.get("covered_by_companion") or {}),
        version=str(data.get("version", "1")),
    )
