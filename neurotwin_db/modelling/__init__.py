"""Modelling: head models, electric fields and neural-mass twins, written as derivatives.

This first layer writes BIDS derivative datasets that cite the DOIs of their sources.

>>> from neurotwin_db.modelling import SourceDataset
>>> SourceDataset("https://example.org/ds", "1.0.0", doi="10.5281/zenodo.1").as_bids()["DOI"]
'doi:10.5281/zenodo.1'
"""

from neurotwin_db.modelling.derivatives import (
    SourceDataset,
    create_derivative,
    derivative_description,
    open_derivative,
    save_derivative,
)

__all__ = ["SourceDataset", "create_derivative", "derivative_description", "open_derivative",
           "save_derivative"]
