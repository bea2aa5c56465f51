"""Neurotwins: a subject's fitted neural-mass model under simulated tACS."""
