"""Head models: tetrahedral meshes with SimNIBS tissue tags, written as BIDS derivatives."""

from neurotwin_db.modelling.headmodel._mesh import (
    HeadMesh,
    MeshError,
    boundary_triangles,
    oriented,
    outer_triangles,
    quality,
    read_msh,
    with_boundaries,
    write_msh,
)
from neurotwin_db.modelling.headmodel._surfaces import Surface, check_surfaces
from neurotwin_db.modelling.headmodel._tissues import (
    DEFAULT_CONDUCTIVITY,
    TISSUE_NAMES,
    conductivities,
    tissue_tag,
)

__all__ = ["DEFAULT_CONDUCTIVITY", "TISSUE_NAMES", "HeadMesh", "MeshError", "Surface",
           "boundary_triangles", "check_surfaces", "conductivities", "oriented",
           "outer_triangles", "quality", "read_msh", "tissue_tag", "with_boundaries",
           "write_msh"]
