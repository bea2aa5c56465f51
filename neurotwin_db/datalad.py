"""The one place that talks to DataLad and git-annex.

Every function here is a thin edge over ``datalad.api`` (in-process) or plain git.
Failures become :class:`~neurotwin_db.errors.DataladError` with the command, the
dataset and what to do next; a missing git-annex is reported before DataLad is touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from neurotwin_db.errors import DataladError, GitAnnexMissingError

logger = logging.getLogger(__name__)

RECORD_MARKER = "ntdb-record:"


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def ensure_tools() -> None:
    """Make sure git, git-annex and a git identity are available, or raise a clear error.

    The git-annex PyPI wheel installs its binary next to the Python interpreter; when
    that folder is not on PATH it is prepended here, so ``.venv/bin/ntdb`` works
    without activating the venv.
    """
    if shutil.which("git-annex") is None and (_venv_bin() / "git-annex").exists():
        os.environ["PATH"] = f"{_venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
    if shutil.which("git") is None:
        raise GitAnnexMissingError(
            "git was not found on PATH; install git (e.g. `apt-get install git`) and retry"
        )
    if shutil.which("git-annex") is None:
        raise GitAnnexMissingError(
            "git-annex was not found on PATH; install it with `pip install git-annex` "
            "(or `apt-get install git-annex`) and put the venv's bin/ on PATH, "
            "e.g. `source .venv/bin/activate`"
        )
    _check_identity()


@cache
def _check_identity() -> None:
    for key, variable in (("user.name", "GIT_AUTHOR_NAME"), ("user.email", "GIT_AUTHOR_EMAIL")):
        out = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
        if not out.stdout.strip() and not os.environ.get(variable):
            raise DataladError(
                f"git has no {key}; DataLad needs an identity to record changes: "
                f"run `git config --global {key} \"...\"` (or set {variable})"
            )


def _api() -> Any:
    ensure_tools()
    import datalad.api as dl

    return dl


def _call(what: str, where: Path | str | None, fn: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Run a datalad.api call in ``where``, turning failures into DataladError.

    Running inside the dataset matters: DataLad resolves relative sibling URLs (as
    ``datalad clone ../db copy`` records them) against the working directory.
    """
    from datalad.support.exceptions import IncompleteResultsError

    kwargs.setdefault("result_renderer", "disabled")
    kwargs.setdefault("on_failure", "continue")
    kwargs.setdefault("return_type", "list")
    kwargs.setdefault("result_xfm", None)
    try:
        with _inside(where):
            return list(fn(**kwargs) or [])
    except IncompleteResultsError as exc:
        failed = [r for r in exc.failed or [] if r.get("status") in ("error", "impossible")]
        detail = "; ".join(
            f"{r.get('path', '')}: {_message(r)}" for r in failed[:3]
        ) or str(exc).splitlines()[0]
        raise DataladError(f"datalad {what} failed in {where}: {detail}") from None


def _inside(where: Path | str | None) -> contextlib.AbstractContextManager[object]:
    """Change into ``where`` (or its nearest existing parent) for the duration."""
    if where is None:
        return contextlib.nullcontext()
    folder = Path(where)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return contextlib.chdir(folder)


def _message(result: Mapping[str, Any]) -> str:
    msg = result.get("message", "")
    if isinstance(msg, tuple | list) and msg:
        try:
            msg = str(msg[0]) % tuple(msg[1:])
        except TypeError:
            msg = " ".join(map(str, msg))
    lines = [line.strip() for line in str(msg).splitlines() if line.strip()]
    return lines[0] if lines else "no details"


def record_message(summary: str, **record: object) -> str:
    """Build a structured commit message: a summary line and a JSON record.

    >>> print(record_message("catalog build", datasets=2))
    [ntdb] catalog build
    <BLANKLINE>
    ntdb-record: {"datasets": 2}
    """
    return f"[ntdb] {summary}\n\n{RECORD_MARKER} {json.dumps(record, sort_keys=True)}"


def create_dataset(path: Path, *, superdataset: Path | None = None,
                   text2git: bool = True) -> Path:
    """Create a DataLad dataset at ``path`` (a subdataset when ``superdataset`` is given).

    With ``text2git`` small text files (JSON, TSV, README) stay in git, so metadata can
    be read from a clone whose annexed content is not present.
    """
    dl = _api()
    _call("create", path, dl.create, path=str(path),
          dataset=None if superdataset is None else str(superdataset),
          cfg_proc=["text2git"] if text2git else None)
    return Path(path)


def save(dataset: Path, summary: str, *, paths: Sequence[Path | str] | None = None,
         recursive: bool = False, record: Mapping[str, object] | None = None) -> None:
    """Save changes in ``dataset`` with a structured message (one commit, batched)."""
    dl = _api()
    _call("save", dataset, dl.save, dataset=str(dataset),
          path=None if paths is None else [str(Path(dataset) / p) for p in paths],
          message=record_message(summary, **(record or {})), recursive=recursive)


def run(dataset: Path, cmd: Sequence[str], *, summary: str,
        inputs: Sequence[str] = (), outputs: Sequence[str] = ()) -> None:
    """Run ``cmd`` in ``dataset`` as a ``datalad run`` record (re-runnable with rerun)."""
    dl = _api()
    # a Dataset instance (not a path string) makes the command run in the dataset root
    _call("run", dataset, dl.run, cmd=list(cmd), dataset=dl.Dataset(str(dataset)),
          inputs=[str(Path(dataset) / p) for p in inputs] or None,
          outputs=[str(Path(dataset) / p) for p in outputs] or None,
          message=f"[ntdb] {summary}", explicit=bool(outputs))


def clone(source: str, path: Path, *, superdataset: Path | None = None) -> Path:
    """Clone ``source`` (URL or path) to ``path``, registered in ``superdataset`` if given."""
    dl = _api()
    if Path(source).exists():  # a local path: record it absolute, not relative to cwd
        source = str(Path(source).resolve())
    _call("clone", path, dl.clone, source=source, path=str(Path(path).resolve()),
          dataset=None if superdataset is None else str(superdataset))
    return Path(path)


def install(dataset: Path, paths: Sequence[str]) -> None:
    """Install subdatasets (no file content), so their trees can be read."""
    if not paths:
        return
    dl = _api()
    _call("get", dataset, dl.get, dataset=str(dataset),
          path=[str(Path(dataset) / p) for p in paths], get_data=False)


def get(dataset: Path, paths: Sequence[str], *, jobs: int | None = None
        ) -> Iterator[dict[str, Any]]:
    """Fetch the content of ``paths`` (relative to ``dataset``); yield one result per item.

    Installs any subdataset on the way. Results are DataLad result records
    (``path``, ``status``, ``type``), yielded as they arrive so callers can show progress.
    """
    dl = _api()
    with _inside(dataset):
        results = dl.get(dataset=str(dataset), path=[str(Path(dataset) / p) for p in paths],
                         jobs=jobs, result_renderer="disabled", on_failure="ignore",
                         return_type="generator")
        for res in results:
            if res.get("status") in ("error", "impossible"):
                raise DataladError(
                    f"datalad get failed for {res.get('path')}: {_message(res)}; check that "
                    f"the dataset's origin is reachable (`datalad siblings -d {dataset}`)"
                )
            yield res


def siblings(dataset: Path) -> list[dict[str, str]]:
    """List the siblings (remotes) of ``dataset`` as name/url dicts."""
    dl = _api()
    out = _call("siblings", dataset, dl.siblings, dataset=str(dataset), action="query")
    return [{"name": r.get("name", ""), "url": r.get("url", "") or ""} for r in out]


def add_sibling(dataset: Path, name: str, url: str) -> None:
    """Add a sibling ``name`` pointing at ``url``."""
    dl = _api()
    _call("siblings", dataset, dl.siblings, dataset=str(dataset), action="add",
          name=name, url=url)


def git(root: Path, *args: str, input: bytes | None = None) -> bytes:
    """Run a git command in ``root`` and return stdout, raising DataladError on failure."""
    ensure_tools()
    proc = subprocess.run(["git", "-C", str(root), *args], input=input,
                          capture_output=True)
    if proc.returncode:
        msg = proc.stderr.decode(errors="replace").strip()
        raise DataladError(f"git {' '.join(args[:2])} failed in {root}: {msg}")
    return proc.stdout


def is_dataset(path: Path) -> bool:
    """Whether ``path`` is the root of a DataLad dataset."""
    return (Path(path) / ".datalad" / "config").is_file() and (Path(path) / ".git").exists()


def head_commit(path: Path) -> str | None:
    """The HEAD commit of the git repository at ``path``, or None if it has none."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--verify", "-q", "HEAD"],
                          capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def version_tag(path: Path, commit: str) -> str | None:
    """The most recent tag reachable from ``commit``, or None."""
    proc = subprocess.run(["git", "-C", str(path), "describe", "--tags", "--abbrev=0", commit],
                          capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def remove_tree(path: Path) -> None:
    """Delete a folder that may hold git-annex's write-protected objects."""
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    os.chmod(path, 0o755)
    shutil.rmtree(path)


def missing_content(dataset: Path) -> list[str]:
    """Annexed files of ``dataset`` (relative paths) whose content is not present here."""
    if not git(dataset, "config", "--default", "", "--get", "annex.uuid").strip():
        return []  # not an annex repository: every tracked file is in git
    out = git(dataset, "annex", "find", "--not", "--in", "here", "--print0")
    return sorted(p for p in out.decode("utf-8", errors="surrogateescape").split("\0") if p)


def tag(dataset: Path, name: str, *, message: str, commit: str = "HEAD") -> None:
    """Tag ``commit`` of ``dataset`` as ``name`` (an annotated tag: a dataset version)."""
    git(dataset, "tag", "-a", name, "-m", message, commit)


def subdataset_paths(dataset: Path) -> list[str]:
    """Paths of the subdatasets recorded at HEAD of ``dataset`` (git's gitlink entries)."""
    if head_commit(dataset) is None:
        return []
    out = git(dataset, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    entries = (e.split("\t", 1) for e in out.decode("utf-8", "surrogateescape").split("\0") if e)
    return sorted(path for meta, path in entries if meta.split()[1] == "commit")
