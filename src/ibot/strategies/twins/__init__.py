"""Compiled twins (numba) of the built-in strategies, for parameter sweeps. Placeholder docstring."""
