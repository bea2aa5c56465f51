"""Numba kernels: arrays and scalars in, arrays out, no IO; each has a NumPy twin."""
