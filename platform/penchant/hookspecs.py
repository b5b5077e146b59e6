"""The whole plugin contract.

A plugin is any module or object with functions named like the hooks below, marked with
``@penchant.hookimpl``, and listed in the ``penchant`` entry-point group of its package::

    [project.entry-points.penchant]
    my_plugin = "my_package.plugin"

Two families of hooks:

* **Registration hooks** return component *classes* (subclasses of the bases in
  :mod:`penchant.components`). The host checks each class against the contract (kind,
  name, description, parameter schema) and skips, with a reported reason, any that break it.
* **Observer hooks** are called during a run with keyword arguments. Implementations must
  accept them by name and may leave out arguments they do not use: pluggy passes only the
  ones a function asks for, so a later release can add arguments without breaking anyone.
  Observers must not raise; an exception in one is reported and the run goes on.

``run`` in observer hooks is a :class:`penchant.runner.RunInfo` (``id``, ``name``,
``out_dir``, ``pipeline``).

History: 1.1 added :func:`penchant_on_feedback`.

Versioning: :data:`API_VERSION` is the version of this contract. Adding a hook or a hook
argument raises the minor number and breaks nobody, because arguments are passed by name
and a plugin only receives those it asks for; removing or changing one raises the major
number. A plugin may declare the range it supports as a module attribute,
``PENCHANT_API = ">=1.0,<2"``; the host skips a plugin whose range excludes it, with a
message saying which versions it needs.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "penchant"
#: The plugin contract's version (see "Versioning" above).
API_VERSION = "1.1"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -----------------------------------------------------------------------

@hookspec
def penchant_register_sources() -> list[type]:
    """Return :class:`~penchant.components.Source` subclasses (CSV, SQL, …).

    Example::

        @penchant.hookimpl
        def penchant_register_sources():
            return [ParquetSource]
    """


@hookspec
def penchant_register_preprocessors() -> list[type]:
    """Return :class:`~penchant.components.Preprocessor` subclasses (dedup, k-core, …)."""


@hookspec
def penchant_register_features() -> list[type]:
    """Return :class:`~penchant.components.FeatureExtractor` subclasses."""


@hookspec
def penchant_register_models() -> list[type]:
    """Return :class:`~penchant.components.Model` subclasses (models and baselines alike)."""


@hookspec
def penchant_register_recommenders() -> list[type]:
    """Return :class:`~penchant.components.Recommender` subclasses."""


# --- observers --------------------------------------------------------------------------

@hookspec
def penchant_on_run_start(run: Any) -> None:
    """A run has been recorded in the store and is about to load data."""


@hookspec
def penchant_on_progress(run: Any, stage: str, done: int, total: int) -> None:
    """Work inside ``stage`` advanced to ``done`` of ``total`` steps (epochs, chunks…)."""


@hookspec
def penchant_on_log(run: Any, message: str) -> None:
    """A line worth showing the user (what a stage did, what it dropped)."""


@hookspec
def penchant_on_stage_end(run: Any, stage: str, seconds: float, summary: dict) -> None:
    """``stage`` (load, preprocess, features, split, train, recommend, evaluate) finished.

    ``summary`` holds the stage's figures, e.g. ``{"events": 120000, "dropped": 12}``.
    """


@hookspec
def penchant_on_epoch_end(run: Any, model: str, epoch: int, losses: dict,
                          metrics: dict) -> None:
    """A training epoch of ``model`` ended.

    ``losses`` maps every loss term to its epoch mean (e.g. ``{"loss": …, "nll": …,
    "kl": …, "beta": …}``); ``metrics`` holds validation metrics (e.g. ``{"ndcg@20": …}``),
    empty when the model has no validation.
    """


@hookspec
def penchant_on_run_end(run: Any, metrics: dict) -> None:
    """The run finished; ``metrics`` is what was written to ``metrics.json``."""


@hookspec
def penchant_on_run_failed(run: Any, status: str, error: str) -> None:
    """The run ended early: ``status`` is ``"failed"`` or ``"interrupted"``."""


@hookspec
def penchant_on_feedback(feedback: Any, origin: str) -> None:
    """Feedback on recommendations was stored (see :mod:`penchant.feedback`).

    Called once per stored batch (one transaction: an import's batch, a replay's batch, a
    call to ``penchant.feedback.record``), after it is committed, and only with the events
    that were new: duplicates skipped by an idempotent re-import are not repeated, and a
    batch that adds nothing calls no one. Not tied to a run in progress, so there is no
    ``run`` argument.

    ``feedback`` is a pandas DataFrame with columns ``run_id, user, item, rank, time,
    kind, note`` (``time`` in UTC; ``rank`` the position shown, may be missing; ``kind`` one
    of ``penchant.feedback.KINDS``); ``origin`` says where it came from, e.g. ``"import
    clicks.csv"`` or ``"replay of run 3"``.

    Example::

        @penchant.hookimpl
        def penchant_on_feedback(feedback):
            purchases = int((feedback["kind"] == "purchase").sum())
    """
