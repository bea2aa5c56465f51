"""Neurotwins: a subject's fitted neural-mass model under simulated tACS."""

from neurotwin_db.modelling.twin._build import build_twin
from neurotwin_db.modelling.twin._optimize import optimize_twin
from neurotwin_db.modelling.twin._predict import predict_effect

__all__ = ["build_twin", "optimize_twin", "predict_effect"]
