"""Map work over local processes, or over a dask.distributed cluster.

Batch work over many datasets, subjects or files goes through :func:`map_tasks`.
Locally it uses a process pool (``jobs`` workers); with ``scheduler="tcp://host:port"``
it submits to that Dask cluster. There is no home-made scheduler here.

>>> map_tasks(abs, [-1, -2], jobs=1)
[1, 2]
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from neurotwin_db.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """Number of local workers: the CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def map_tasks(fn: Callable[[T], R], items: Sequence[T], *, jobs: int | None = None,
              scheduler: str | None = None) -> list[R]:
    """Apply ``fn`` to every item and return the results in input order."""
    results: list[R | None] = [None] * len(items)
    for index, result in iter_tasks(fn, items, jobs=jobs, scheduler=scheduler):
        results[index] = result
    return results  # type: ignore[return-value]


def iter_tasks(fn: Callable[[T], R], items: Sequence[T], *, jobs: int | None = None,
               scheduler: str | None = None) -> Iterator[tuple[int, R]]:
    """Yield ``(index, fn(item))`` as results complete (for progress bars)."""
    if scheduler:
        yield from _dask(fn, items, scheduler)
        return
    jobs = min(jobs or default_jobs(), len(items))
    if jobs <= 1:
        for index, item in enumerate(items):
            yield index, fn(item)
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _dask(fn: Callable[[T], R], items: Sequence[T], scheduler: str
          ) -> Iterator[tuple[int, R]]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    try:
        client = Client(scheduler, timeout="10s")
    except Exception as exc:  # any failure to connect comes from the address given
        raise InputError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start "
                         f"one with `dask scheduler` or drop --scheduler to run locally") from None
    with client:
        futures = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in dask_completed(futures):
            yield index[future.key], future.result()
