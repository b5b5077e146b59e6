"""Backtesting: one pipeline trained and evaluated from several cutoffs, its results pooled.

From one cutoff a short horizon holds few users (38 act within 7 days of Amazon Musical
Instruments' 0.8 quantile), so a ratio to a baseline can move twofold with another draw of
users, and no seed changes that: the seeds vary training, not who acts. Forecasters
backtest instead: move the forecast origin back, train only on what came before it,
evaluate what followed, and pool. Each cutoff here is an ordinary run in the run store
(its folder, metrics and lists as ``penchant run`` writes them); the pooled figures average
every (cutoff, user) evaluation, and the pooled ratio to each baseline resamples users
whole, because one user's evaluations at neighbouring cutoffs rise and fall together.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from penchant.errors import PipelineError
from penchant.metrics import ListHits
from penchant.pipeline import Pipeline, build_pipeline, load_pipeline
from penchant.plugins import Registry
from penchant.report import LIGHT
from penchant.runner import Runner, RunResult
from penchant.significance import versus
from penchant.store import RunStore


@dataclass
class Backtest:
    """The runs, one per cutoff (earliest first), and their pooled metrics: the shape of
    one run's ``metrics`` (``results``, ``versus``, ``horizons``, ``k``, ``model``), with
    ``cutoffs`` giving each run's cutoff, id, evaluated users and the model's NDCG at the
    largest k, per horizon."""

    runs: list[RunResult]
    metrics: dict[str, Any]


def backtest(path: Path, cutoffs: Sequence[float | str], registry: Registry,
             store: RunStore, overrides: Iterable[str] = (), observers: Sequence[Any] = (),
             device: str = "auto") -> Backtest:
    """Run the pipeline at ``path`` (with ``overrides``, as ``--set``) once per cutoff
    (see :func:`cutoff_pipelines`), one run after another."""
    pipelines = cutoff_pipelines(load_pipeline(path, registry, overrides), cutoffs, registry)
    runs = []
    for pipeline in pipelines:
        result = Runner(pipeline, registry, store, None, list(observers), device=device).run()
        assert result is not None, "a backtest runs in one process"
        runs.append(result)
    return pooled_backtest(runs)


def cutoff_pipelines(pipeline: Pipeline, cutoffs: Sequence[float | str],
                     registry: Registry, where: str = "--cutoffs") -> list[Pipeline]:
    """``pipeline`` once per cutoff, each with ``[evaluation] cutoff`` replaced and named
    for it, so the run list tells them apart; every one is checked here, before the first
    run starts, so a bad cutoff fails at once rather than after hours of training.
    ``where`` names the cutoffs' origin in errors (an option, a field)."""
    if len(cutoffs) < 2:
        raise PipelineError(f"{where}: a backtest needs at least two cutoffs, got "
                            f"{len(cutoffs)}")
    twice = sorted({str(c) for c in cutoffs if list(cutoffs).count(c) > 1})
    if twice:
        raise PipelineError(f"{where}: {', '.join(twice)} given more than once; each "
                            "cutoff's users would count twice in the pooled results")
    doc = copy.deepcopy(pipeline.doc)
    pipelines = []
    for cutoff in cutoffs:
        doc.setdefault("evaluation", {})["cutoff"] = cutoff
        doc.setdefault("pipeline", {})["name"] = f"{pipeline.name} (backtest from {cutoff})"
        pipelines.append(build_pipeline(doc, registry, pipeline.path))
    return pipelines


def pooled_backtest(runs: Sequence[RunResult]) -> Backtest:
    """The runs of one pipeline's cutoffs, earliest first, with their :func:`pooled`
    metrics."""
    runs = sorted(runs, key=lambda r: r.metrics["cutoff"])
    return Backtest(runs, pooled(runs))


def pooled(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Every list's metrics over all the runs' evaluations, and the model's paired ratio
    to each baseline with users resampled whole; with ``[evaluation] light_users``, the
    same again for the light users of each cutoff, as horizons named ``"7d light"``."""
    first = runs[0].metrics
    main, ks = first["model"], first["k"]
    hits = {name: {h: ListHits.concat([r.hits[name][h] for r in runs])
                   for h in first["horizons"]} for name in runs[0].hits}
    if all(r.light_users is not None for r in runs):
        for name, by_h in hits.items():
            by_h.update({f"{h}{LIGHT}": ListHits.concat(
                [r.hits[name][h].subset(r.light_users) for r in runs])
                for h in first["horizons"]})
    horizons = list(hits[main])
    results = {name: {h: {**by_h[h].averages(ks), "distinct_users": float(len(set(
        by_h[h].users))), **_coverage(runs, name, h, ks)} for h in horizons}
        for name, by_h in hits.items()}
    metric = f"ndcg@{max(ks)}"
    out: dict[str, Any] = {
        "cutoff": " … ".join(str(r.metrics["cutoff"])[:10] for r in (runs[0], runs[-1]))
        + f" ({len(runs)} cutoffs)",
        "horizons": horizons, "k": ks, "model": main, "results": results,
        "cutoffs": [{"cutoff": r.metrics["cutoff"], "run": r.run.id,
                     "users": {h: len(r.hits[main][h].users) for h in first["horizons"]},
                     metric: {h: r.metrics["results"][main][h].get(metric)
                              for h in first["horizons"]}}
                    for r in runs]}
    ev = runs[0].run.pipeline.evaluation
    if ev.intervals:
        out["versus"] = versus(hits, main, max(ks), ev.intervals, ev.resamples,
                               runs[0].run.pipeline.seed)
    return out


def _coverage(runs: Sequence[RunResult], name: str, horizon: str,
              ks: Sequence[int]) -> dict[str, float]:
    """Each run's catalogue coverage averaged over the runs: the share of the catalogue
    of its day that one cutoff's lists show (lists from different cutoffs draw on
    different catalogues, so their union has no catalogue to be a share of); none for
    the light users' horizons."""
    per_run = [r.metrics["results"][name].get(horizon, {}) for r in runs]
    return {f"coverage@{k}": float(np.mean([m[f"coverage@{k}"] for m in per_run]))
            for k in ks if all(f"coverage@{k}" in m for m in per_run)}
