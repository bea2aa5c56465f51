"""A minimal Zenodo-like deposit API on 127.0.0.1 that injects faults, for deposit tests.

It speaks the subset ``ntdb deposit`` drives (create, bucket upload with an md5
checksum, delete file, metadata, publish, new version) and checks the bearer token.
Uploads consume scripted faults in order:

- ``"timeout"``: read half the body, then stall past the client's timeout;
- ``"500"``: read half the body, then answer HTTP 500 and close;
- ``"checksum"``: store the file but answer with a wrong md5.

``fail_after=N`` answers 500 to every upload after the first N (a hard failure beyond
any retry budget). The server runs in a daemon thread and stops by itself after
``lifetime`` seconds at the latest.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

REQUIRED_METADATA = ("upload_type", "title", "creators", "description", "access_right",
                     "license")


@dataclass
class Deposition:
    id: int
    bucket: str
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    published: bool = False
    doi: str = ""


class FaultZenodo:
    """The server; use it as a context manager and read ``api`` for ``--to``."""

    def __init__(self, *, token: str | None = None, faults: list[str] | None = None,
                 fail_after: int | None = None, stall: float = 2.5,
                 lifetime: float = 120.0) -> None:
        self.token, self.faults, self.fail_after = token, list(faults or []), fail_after
        self.stall, self.lifetime = stall, lifetime
        self.depositions: dict[int, Deposition] = {}
        self.uploads: list[tuple[str, str]] = []  # (filename, outcome)
        self.seen_tokens_in_urls = False
        self.lock = threading.Lock()
        self._next = 500
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> FaultZenodo:
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self._server.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api(self) -> str:
        return f"{self.base}/api"

    # --- state -------------------------------------------------------------------------
    def create(self) -> Deposition:
        with self.lock:
            self._next += 1
            dep = Deposition(self._next, f"{self.base}/api/files/bucket-{self._next}")
            self.depositions[dep.id] = dep
            return dep

    def doi_for(self, dep_id: int) -> str:
        return f"10.9999/fault.{dep_id}"

    def as_json(self, dep: Deposition) -> dict[str, Any]:
        return {
            "id": dep.id, "submitted": dep.published,
            "state": "done" if dep.published else "unsubmitted",
            "metadata": dep.metadata | {"prereserve_doi": {"doi": self.doi_for(dep.id),
                                                           "recid": dep.id}},
            "files": [{"id": f"file-{name}", "filename": name, "filesize": len(data),
                       "checksum": hashlib.md5(data).hexdigest()}
                      for name, data in dep.files.items()],
            "links": {"self": f"{self.api}/deposit/depositions/{dep.id}",
                      "bucket": dep.bucket, "html": f"{self.base}/deposit/{dep.id}"}
            | ({"record_html": f"{self.base}/records/{dep.id}"} if dep.published else {}),
            **({"doi": dep.doi, "record_id": dep.id} if dep.published else {}),
        }

    def next_fault(self, name: str) -> str:
        with self.lock:
            ok = sum(1 for _, outcome in self.uploads if outcome == "ok")
            if self.fail_after is not None and ok >= self.fail_after:
                return "500"
            return self.faults.pop(0) if self.faults else "ok"


class _Handler(BaseHTTPRequestHandler):
    app: FaultZenodo
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _send(self, status: int, payload: object | None = None, *, close: bool = False) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _body(self, limit: int | None = None) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _authorised(self) -> bool:
        app = self.app
        if app.token and app.token in unquote(self.path):
            app.seen_tokens_in_urls = True
        if app.token is None or self.headers.get("Authorization") == f"Bearer {app.token}":
            return True
        self._body()
        self._send(401, {"status": 401, "message": "The server could not verify that you are "
                                                  "authorized to access the URL requested."})
        return False

    def _deposition(self, parts: list[str]) -> Deposition | None:
        dep = self.app.depositions.get(int(parts[3])) if parts[3].isdigit() else None
        if dep is None:
            self._body()
            self._send(404, {"status": 404, "message": "PID does not exist."})
        return dep

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        parts = urlsplit(self.path).path.strip("/").split("/")
        if parts == ["api", "deposit", "depositions"]:
            self._body()
            self._send(201, self.app.as_json(self.app.create()))
            return
        if len(parts) != 6 or parts[4] != "actions":
            self._body()
            self._send(404, {"status": 404, "message": "not found"})
            return
        if dep := self._deposition(parts):
            self._body()
            if parts[5] == "publish":
                self._publish(dep)
            elif parts[5] == "newversion":
                draft = self.app.create()
                self._send(201, self.app.as_json(dep) | {"links": {
                    "latest_draft": f"{self.app.api}/deposit/depositions/{draft.id}"}})
            else:
                self._send(404, {"status": 404, "message": "no such action"})

    def _publish(self, dep: Deposition) -> None:
        missing = [k for k in REQUIRED_METADATA if not dep.metadata.get(k)]
        if missing or not dep.files:
            errors = [{"field": f"metadata.{k}", "messages": ["Field is required."]}
                      for k in missing] or [{"field": "files", "messages": ["Missing files."]}]
            self._send(400, {"status": 400, "message": "Validation error.", "errors": errors})
            return
        dep.published, dep.doi = True, self.app.doi_for(dep.id)
        self._send(202, self.app.as_json(dep))

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[:3] == ["api", "deposit", "depositions"]:
            if dep := self._deposition(parts):
                self._send(200, self.app.as_json(dep))
            return
        self._send(404, {"status": 404, "message": "not found"})

    def do_DELETE(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) != 6 or parts[4] != "files":
            self._send(404, {"status": 404, "message": "not found"})
            return
        if dep := self._deposition(parts):
            dep.files.pop(unquote(parts[5]).removeprefix("file-"), None)
            self._send(204)

    def do_PUT(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[:3] == ["api", "deposit", "depositions"]:
            if dep := self._deposition(parts):
                metadata = json.loads(self._body() or b"{}").get("metadata", {})
                dep.metadata = {k: v for k, v in metadata.items() if k != "prereserve_doi"}
                self._send(200, self.app.as_json(dep))
            return
        if len(parts) == 4 and parts[:2] == ["api", "files"]:
            self._upload(parts[2], unquote(parts[3]))
            return
        self._body()
        self._send(404, {"status": 404, "message": "not found"})

    def _upload(self, bucket: str, name: str) -> None:
        app = self.app
        dep = next((d for d in app.depositions.values() if d.bucket.endswith("/" + bucket)),
                   None)
        if dep is None or dep.published:
            self._body()
            self._send(404 if dep is None else 403, {"message": "bucket not writable"})
            return
        fault = app.next_fault(name)
        length = int(self.headers.get("Content-Length") or 0)
        if fault in ("timeout", "500"):
            self._body(limit=length // 2)  # the upload breaks off in the middle
            with app.lock:
                app.uploads.append((name, fault))
            if fault == "timeout":
                time.sleep(app.stall)
                self.close_connection = True
                return
            self._send(500, {"status": 500, "message": "Internal server error."}, close=True)
            return
        data = self._body()
        dep.files[name] = data
        md5 = hashlib.md5(data).hexdigest()
        with app.lock:
            app.uploads.append((name, "checksum" if fault == "checksum" else "ok"))
        if fault == "checksum":
            md5 = hashlib.md5(data + b"corrupted").hexdigest()
        self._send(201, {"key": name, "size": len(data), "checksum": f"md5:{md5}",
                         "links": {"self": f"{dep.bucket}/{name}"}})
