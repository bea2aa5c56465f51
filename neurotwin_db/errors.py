"""Errors raised by neurotwin_db.

Every message says three things: what is wrong, the value that was received, and
what to do next. Each error also subclasses a built-in so that existing ``except``
clauses keep working.
"""

from __future__ import annotations

from pathlib import Path


class NeurotwinError(Exception):
    """Base class. The CLI prints these as one clean line and exits 2."""


class NeurotwinWarning(UserWarning):
    """Warnings issued by neurotwin_db."""


class EntityError(NeurotwinError, ValueError):
    """A BIDS entity, label or path is not acceptable."""


class NotADatabaseError(NeurotwinError, FileNotFoundError):
    """A path that should be a Neurotwin database is not one."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is not a Neurotwin database (no .ntdb/config.json); "
            f"create one with `ntdb init {path}` or point to an existing database"
        )


class DatasetNotFoundError(NeurotwinError, KeyError):
    """A dataset id is not in the database registry."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class OutputExistsError(NeurotwinError, FileExistsError):
    """Refuse to replace something that already exists."""

    def __init__(self, path: Path, flag: str = "--overwrite") -> None:
        super().__init__(f"{path} already exists; remove it or pass {flag} to replace it")


class GitAnnexMissingError(NeurotwinError, RuntimeError):
    """git-annex (or git itself) is not installed or not on PATH."""


class DataladError(NeurotwinError, RuntimeError):
    """A DataLad operation failed."""


class QueryError(NeurotwinError, ValueError):
    """A catalog query is not allowed or not valid."""


class CatalogError(NeurotwinError, RuntimeError):
    """The catalog is missing or cannot be used."""


class InputError(NeurotwinError, ValueError):
    """A user-supplied file or value cannot be used."""


class ModelDivergenceError(NeurotwinError, ArithmeticError):
    """A simulation produced NaN or ran away: the parameters are unstable."""


class FitError(NeurotwinError, RuntimeError):
    """A model fit did not converge; nothing is written as a result."""
