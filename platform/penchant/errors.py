"""Errors raised to users.

Every error a user can cause is a :class:`PenchantError` whose message says where the
problem is (file, table, key, row) and what to do about it. The CLI prints these without
a traceback; anything else is a bug and is shown with one.
"""

from __future__ import annotations


class PenchantError(Exception):
    """Base of every error that is the user's to fix."""


class PipelineError(PenchantError):
    """A pipeline file, or an override of it, is invalid."""


class DataError(PenchantError):
    """Input data cannot be used as it is (missing columns, bad rows, empty results)."""


class PluginError(PenchantError):
    """A plugin or component is missing or breaks the contract."""


class StoreError(PenchantError):
    """The run store cannot be opened or does not hold what was asked for."""


class RunInterrupted(PenchantError):
    """The run was stopped from outside (Ctrl-C, SIGTERM, a Stop button)."""
