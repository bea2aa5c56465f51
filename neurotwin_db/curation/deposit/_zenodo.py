"""A small client for Zenodo's deposit API: bounded retries, checksums, a guarded token.

The token travels only in the ``Authorization: Bearer`` header of requests to the API's
own origin, never in a URL, a log record, a file or an error message.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from neurotwin_db.curation.deposit._state import DepositError
from neurotwin_db.curation.deposit._target import Target

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
NOT_PROCESSED = frozenset({429, 502, 503, 504})  # the server did not act on the request


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), None
        return True


@contextlib.contextmanager
def redacted_logs(secret: str) -> Iterator[None]:
    """Mask ``secret`` in every record that reaches the root logger's handlers."""
    guard = _Redact(secret)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(guard)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(guard)


def _bearer(token: str) -> Any:
    import requests

    class Bearer(requests.auth.AuthBase):
        """The token as a bearer header (an auth object, so .netrc never replaces it)."""

        def __call__(self, request: Any) -> Any:
            request.headers["Authorization"] = f"Bearer {token}"
            return request

        def __repr__(self) -> str:
            return "Bearer(***)"

    return Bearer()


class ZenodoClient:
    """The deposit API calls a deposit needs, each retried with bounded back-off."""

    def __init__(self, target: Target, token: str, *, token_source: str = "the token",
                 retries: int = 5, backoff: float = 2.0, timeout: float = 60.0,
                 resume_hint: str = "", sleep: Callable[[float], None] = time.sleep) -> None:
        import requests

        self.target, self._token, self.token_source = target, token, token_source
        self.retries, self.backoff, self.timeout, self.sleep = retries, backoff, timeout, sleep
        self.resume_hint = resume_hint
        self.session = requests.Session()
        self.session.auth = _bearer(token)
        self.session.headers["Accept"] = "application/json"
        self.origin = urlsplit(target.api)[:2]

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    # --- the API ---------------------------------------------------------------------
    def create(self) -> dict[str, Any]:
        """Create an empty deposition (never repeated once the request may have arrived)."""
        return _json(self._request("POST", "/deposit/depositions", what="creating the "
                                   "deposition", body={}, repeat=False))

    def get(self, dep_id: str, *, missing_ok: bool = False) -> dict[str, Any]:
        """The deposition ``dep_id`` (``{}`` if it does not exist and ``missing_ok``)."""
        reply = self._request("GET", f"/deposit/depositions/{dep_id}", accept=(
            (404,) if missing_ok else ()), what=f"reading deposition {dep_id}")
        return {} if reply.status_code == 404 else _json(reply)

    def new_version(self, record_id: str) -> dict[str, Any]:
        """Open a new-version draft of the published ``record_id``; return the draft."""
        reply = _json(self._request("POST", f"/deposit/depositions/{record_id}/actions/"
                                    "newversion", what=f"opening a new version of record "
                                    f"{record_id}", repeat=False))
        draft = reply.get("links", {}).get("latest_draft")
        if not draft:
            raise DepositError(f"{self.target.api} gave no links.latest_draft for a new version "
                               f"of record {record_id}; check the record on the server")
        return _json(self._request("GET", draft, what="reading the new-version draft"))

    def delete_file(self, dep_id: str, file_id: str) -> None:
        """Remove a file from a draft (a file already gone is fine)."""
        self._request("DELETE", f"/deposit/depositions/{dep_id}/files/{quote(file_id)}",
                      what=f"removing {file_id} from the draft", accept=(404,))

    def upload(self, bucket: str, name: str, path: Path, md5: str, size: int) -> dict[str, Any]:
        """Stream ``path`` into the bucket as ``name`` and check the server's checksum."""

        def verify(reply: Any) -> str | None:
            body = _json(reply)
            checksum = str(body.get("checksum") or "")
            if checksum and checksum.removeprefix("md5:") != md5:
                return f"checksum mismatch: the server has {checksum}, the file md5:{md5}"
            stored = body.get("size", body.get("filesize"))
            if not checksum and stored is not None and int(stored) != size:
                return f"size mismatch: the server has {stored} bytes, the file {size}"
            return None

        return _json(self._request("PUT", f"{bucket}/{quote(name)}", what=f"uploading {name}",
                                   upload=path, check=verify))

    def set_metadata(self, dep_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Replace the deposition's metadata."""
        return _json(self._request("PUT", f"/deposit/depositions/{dep_id}",
                                   what="setting the metadata", body={"metadata": metadata}))

    def publish(self, dep_id: str) -> dict[str, Any]:
        """Publish the deposition (checking first whether an unanswered try went through)."""
        try:
            return _json(self._request("POST", f"/deposit/depositions/{dep_id}/actions/publish",
                                       what="publishing", repeat=False))
        except DepositError:
            current = self.get(dep_id)
            if is_published(current):
                return current
            raise

    # --- transport --------------------------------------------------------------------
    def _url(self, path: str) -> str:
        url = path if "://" in path else self.target.api + path
        if urlsplit(url)[:2] != self.origin:
            raise DepositError(f"the server sent a link to {urlsplit(url).netloc}, outside "
                               f"{self.target.api}; the token is only sent to the API's own "
                               f"host: check --to")
        return url

    def _request(self, method: str, path: str, *, what: str, body: Any = None,
                 upload: Path | None = None, repeat: bool = True, accept: tuple[int, ...] = (),
                 check: Callable[[Any], str | None] | None = None) -> Any:
        import requests

        url, problem, reached = self._url(path), "", False
        for attempt in range(1, self.retries + 2):
            try:
                with contextlib.ExitStack() as stack:
                    data = stack.enter_context(open(upload, "rb")) if upload else None
                    reply = self.session.request(
                        method, url, json=body, data=data, timeout=self.timeout,
                        headers={"Content-Type": "application/octet-stream"} if upload else {})
            except requests.RequestException as exc:
                problem = self._describe(exc)
                reached = reached or not _not_sent(exc)
                if not repeat and not _not_sent(exc):
                    raise DepositError(f"{what} at {self.target.api} got no answer ({problem}); "
                                       f"it may have happened: check the server before retrying"
                                       f"{self.resume_hint}") from None
            else:
                reached = True
                if reply.status_code in (200, 201, 202, 204, *accept):
                    problem = check(reply) if check else None
                    if not problem:
                        return reply
                elif reply.status_code in (401, 403):
                    raise DepositError(self._auth_message(reply))
                else:
                    problem = f"HTTP {reply.status_code}: {self._server_message(reply)}"
                    retry = NOT_PROCESSED if not repeat else RETRY_STATUS
                    if reply.status_code not in retry:
                        hint = " (is --to the API base URL, ending in /api?)" if (
                            reply.status_code in (404, 405)) else ""
                        raise DepositError(f"{what} at {self.target.api} failed ({problem})"
                                           f"{hint}{self.resume_hint}")
            logger.info("%s: attempt %d of %d failed (%s)", what, attempt, self.retries + 1,
                        problem)
            if attempt <= self.retries:
                self.sleep(min(self.backoff * 2 ** (attempt - 1), 60.0))
        if not reached:
            raise DepositError(f"cannot reach {self.target.api} ({problem}, {self.retries + 1} "
                               f"attempts while {what}); check --to and that the server is "
                               f"up{self.resume_hint}")
        raise DepositError(f"{what} at {self.target.api} failed after {self.retries + 1} "
                           f"attempts ({problem}){self.resume_hint}")

    def _auth_message(self, reply: Any) -> str:
        sandbox = ("; zenodo.org and sandbox.zenodo.org need different tokens (--to "
                   "zenodo-sandbox reads $ZENODO_SANDBOX_TOKEN)")
        return (f"{self.target.api} refused the token from {self.token_source} (HTTP "
                f"{reply.status_code}: {self._server_message(reply)}); check that it is valid "
                f"and has the deposit:write and deposit:actions scopes{sandbox}")

    def _server_message(self, reply: Any) -> str:
        body = _json(reply)
        text = str(body.get("message") or "") if body else re.sub(r"<[^>]+>", " ", reply.text)
        for error in body.get("errors") or [] if body else []:
            if isinstance(error, dict):
                messages = error.get("messages") or [error.get("message", "")]
                text += f" [{error.get('field', '?')}: {'; '.join(map(str, messages))}]"
        return self.redact(" ".join(text.split())[:300] or reply.reason or "no details")

    def _describe(self, exc: Exception) -> str:
        import requests

        if isinstance(exc, requests.Timeout):
            return f"no answer within {self.timeout:g} s"
        found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        text = found.group(1).strip() if found else f"{type(exc).__name__}: {exc}"
        return self.redact(text[:300])

    def redact(self, text: str) -> str:
        """``text`` with the token masked."""
        return text.replace(self._token, "***") if self._token else text


def _not_sent(exc: Exception) -> bool:
    """Whether the request surely never reached the server (safe to repeat anything)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _json(reply: Any) -> dict[str, Any]:
    try:
        data = reply.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def is_published(deposition: dict[str, Any]) -> bool:
    """Whether a deposition is published (Zenodo: submitted, state ``done``)."""
    return bool(deposition.get("submitted")) or deposition.get("state") == "done"
