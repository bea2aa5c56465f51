"""Where a deposit goes (Zenodo, its sandbox or any compatible API) and its token."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from neurotwin_db.curation.deposit._state import DepositError, slug
from neurotwin_db.errors import InputError

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "neurotwin-db"
TARGETS = {"zenodo": ("https://zenodo.org/api", "ZENODO_TOKEN"),
           "zenodo-sandbox": ("https://sandbox.zenodo.org/api", "ZENODO_SANDBOX_TOKEN")}
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: what an HTTP header takes


@dataclass(frozen=True, slots=True)
class Target:
    """Where a deposit goes: a Zenodo-compatible deposit API."""

    name: str
    api: str
    token_env: str

    @property
    def host(self) -> str:
        """Host (and port) of the API: the keyring user name for its token."""
        return urlsplit(self.api).netloc

    @property
    def key(self) -> str:
        """A file-name-safe id of the target (part of the state file name)."""
        return slug(self.api)


def resolve_target(to: str) -> Target:
    """``zenodo``, ``zenodo-sandbox`` or a base API URL such as http://127.0.0.1:8766/api."""
    if to in TARGETS:
        return Target(to, *TARGETS[to])
    parts = urlsplit(to)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError("--to must be the bare API URL (scheme, host, port and path): no "
                         "user name, password, query or fragment; the token goes in "
                         "$ZENODO_TOKEN or the keyring, never in the URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--to {to!r} is not zenodo, zenodo-sandbox or an http(s) URL of a "
                         f"deposit API (e.g. http://127.0.0.1:8766/api)")
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        raise InputError(f"--to {to!r} uses plain http to a remote host, which would expose "
                         f"the token; use https://")
    return Target(to.rstrip("/"), to.rstrip("/"), "ZENODO_TOKEN")


def find_token(target: Target, token_env: str | None = None) -> tuple[str, str]:
    """The token and where it came from: ``$VAR``, else the keyring (neurotwin-db, host)."""
    variable = token_env or target.token_env
    if not _VARIABLE.fullmatch(variable):  # never repeat it: it may be the token itself
        raise InputError("--token-env takes the NAME of an environment variable (e.g. "
                         "ZENODO_TOKEN), not the token; put the token in that variable")
    value = os.environ.get(variable, "").strip()
    if value:
        return _checked(value, f"${variable}"), f"${variable}"
    stored = _from_keyring(target.host)
    if stored:
        where = f"the keyring ({KEYRING_SERVICE}, {target.host})"
        return _checked(stored.strip(), where), where
    raise DepositError(f"no token for {target.api}: set ${variable} to a personal access "
                       f"token with the deposit:write and deposit:actions scopes, or store "
                       f"one with `keyring set {KEYRING_SERVICE} {target.host}`")


def _checked(token: str, where: str) -> str:
    """Refuse a token that cannot be sent in an HTTP header (without ever showing it)."""
    if not _TOKEN.fullmatch(token):
        raise DepositError(f"the token in {where} holds spaces, line breaks or characters "
                           "outside ASCII, so it cannot be a Zenodo token; copy it again from "
                           "the Applications page of your account")
    return token


def _from_keyring(host: str) -> str | None:
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, host)
    except Exception as exc:  # noqa: BLE001 - no usable keyring is the same as no token
        logger.debug("no keyring: %s", type(exc).__name__)
        return None
