"""How much memory a head mesh of a given size needs, and whether this machine has it.

The meshers call :func:`check_fits` with their predicted tetrahedron count *before*
meshing, so a too-fine element or voxel size fails in a second with a clear message
instead of after minutes of swapping or an out-of-memory kill.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurotwin_db.modelling.headmodel._mesh import MeshError

# Calibration (see estimate_memory_bytes): peak RSS above the interpreter's baseline,
# in bytes per tetrahedron, for meshing + P1 assembly + pyamg setup + CG, and the
# fixed cost of the interpreter with numpy, scipy, gmsh and pyamg loaded.
BYTES_PER_TET = 1500
BASELINE_BYTES = 400 * 2 ** 20
NODES_PER_TET = 1 / 5.6
_GIB = 2 ** 30
_NO_LIMIT = 2 ** 60


def estimate_memory_bytes(n_tets: int) -> int:
    """A conservative estimate of peak memory (bytes) to mesh and solve ``n_tets`` tetrahedra.

    Covers meshing (gmsh, or the voxel mesher), P1 FEM assembly of the stiffness matrix
    (n_nodes ≈ n_tets / 5.6–6, ≈ 15 non-zeros per node) with scipy.sparse, pyamg
    smoothed-aggregation setup and a CG solve to 1e-10. Calibrated on 80/86/92 mm
    sphere heads (:func:`sphere_head`, gmsh 4.15 HXT, 1 thread; Python 3.11, numpy 2.4,
    scipy 1.17, pyamg 5.4, Linux x86-64) with peak RSS from ``resource.getrusage`` in a
    fresh process per size (interpreter + imports: 0.094 GiB). Assembly builds the
    (m, 4, 4) element matrices with one einsum and one COO → CSR conversion; its
    temporaries are the peak, pyamg setup and CG stay below it:

    ========  =======  ==========  ==========  ===========  ============  =============
    tets      nodes    after mesh  +assembly   +pyamg + CG  peak / tet    estimate
    ========  =======  ==========  ==========  ===========  ============  =============
    204 k     37 k     0.23 GiB    0.36 GiB    0.36 GiB     1.39 kB       0.67 GiB
    986 k     170 k    0.65 GiB    1.23 GiB    1.23 GiB     1.24 kB       1.77 GiB
    4.79 M    803 k    2.55 GiB    5.41 GiB    5.41 GiB     1.19 kB       7.08 GiB
    ========  =======  ==========  ==========  ===========  ============  =============

    The estimate is ``400 MiB + 1500 B × n_tets``: 1.3× the largest measured peak and
    1.9× the smallest, room for other assembly code and allocator fragmentation.
    (The voxel mesher peaks lower: 0.83 GiB for 1.9 M tets.)

    >>> round(estimate_memory_bytes(1_000_000) / 2 ** 30, 2)
    1.79
    """
    if n_tets < 0:
        raise MeshError(f"a tetrahedron count cannot be negative, got {n_tets}")
    return int(BASELINE_BYTES + BYTES_PER_TET * int(n_tets))


def available_memory_bytes() -> int:
    """Memory this process can still use (bytes).

    The smaller of ``MemAvailable`` in ``/proc/meminfo`` and the room left under a
    cgroup limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``); where neither
    exists (macOS, Windows), free physical pages from ``os.sysconf``.
    """
    candidates = [value for value in (_meminfo_available(), _cgroup_room()) if value]
    if candidates:
        return min(candidates)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return _NO_LIMIT


def check_fits(n_tets: int, what: str) -> None:
    """Refuse a mesh of ``n_tets`` tetrahedra that would not fit in available memory.

    ``what`` says which mesh it is (e.g. ``"sphere head with 0.5 mm elements"``) and
    starts the message.

    >>> check_fits(10 ** 13, "a test mesh")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neurotwin_db...MeshError: a test mesh: a mesh of ~10,000,000,000,000 tets needs ...
    """
    needed = estimate_memory_bytes(n_tets)
    available = available_memory_bytes()
    if needed > available:
        raise MeshError(
            f"{what}: a mesh of ~{int(n_tets):,} tets needs ~{needed / _GIB:.1f} GiB but only "
            f"{available / _GIB:.1f} GiB is available; raise --max-volume / voxel size / "
            f"element size to make it coarser (tets scale with 1/size³)")


def _meminfo_available() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` in bytes, or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit, or None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if not text.isdigit() or int(text) >= _NO_LIMIT:
            return None
        try:
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            usage = 0
        return max(int(text) - usage, 0)
    return None
