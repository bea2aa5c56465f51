"""Builders of the demo datasets, each from real files that ship inside dependencies."""
