"""Penchant's built-in components.

Each sub-package is one plugin, listed in the ``penchant`` entry-point group of
pyproject.toml exactly as a third-party plugin would be, and uses only ``penchant``'s
public API.
"""
