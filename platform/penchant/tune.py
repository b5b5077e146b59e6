"""Hyper-parameter search over any component's parameters; every trial is a recorded run.

Trials never look at the test period: each one runs the pipeline on the events before the
real cutoff (``evaluation.until``) and is scored on the last part of them
(``evaluation.cutoff`` moved inside), the same temporal validation that early stopping
uses. Only the winning parameters are written back, as a pipeline file that runs as usual.

A search space is a TOML file::

    [parameters]
    "model.lr" = { low = 1e-4, high = 1e-2, log = true }   # a float range
    "model.epochs" = { low = 10, high = 60, step = 10 }    # int bounds: an int range
    "features.0.half_life" = ["7d", "14d", "30d"]           # choices

    [search]
    method = "random"      # random | grid | tpe
    metric = "ndcg@20"
    horizon = "30d"        # default: the pipeline's last horizon
    cutoff = 0.9           # where trials split the pre-cutoff events
    cutoffs = [0.7, 0.8, 0.9]   # or several: each trial a backtest, scored pooled

One inner cutoff scores a trial on whoever acts just after it: on small data a few dozen
users, so the search picks noise. With ``cutoffs`` each trial runs from every one of them
and is scored on all their evaluations pooled (:func:`penchant.backtest.pooled`), still
never past the real cutoff.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import tomli_w

from penchant.backtest import pooled
from penchant.errors import PenchantError, PipelineError
from penchant.params import Param, validate
from penchant.pipeline import (
    apply_overrides,
    build_pipeline,
    load_pipeline,
    read_document,
    save_pipeline,
)
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.store import RunStore

SEARCH_PARAMS = (
    Param("method", "str", "random", choices=("random", "grid", "tpe"),
          help="how trials pick parameters"),
    Param("metric", "str", "ndcg@20", help="the ranking metric to maximise"),
    Param("horizon", "str", None, help="the horizon it is read at (default: the last)"),
    Param("cutoff", "float", 0.9, min=0.5, max=0.99,
          help="quantile of the pre-cutoff events where trials split train and validation"),
    Param("cutoffs", "list", [], items="float", min=0.5, max=0.99,
          help="several such quantiles: each trial runs from every one and is scored on "
               "their evaluations pooled (replaces cutoff; empty: cutoff alone)"),
)


@dataclass(frozen=True)
class Dimension:
    key: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log,
                                   step=self.step)

    def grid(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        if isinstance(self.step, int | float) and not self.log:
            values, v = [], self.low
            while v <= self.high + 1e-12:
                values.append(v)
                v = v + self.step
            return values
        raise PipelineError(f"grid search needs choices or a step for {self.key!r}")


@dataclass(frozen=True)
class Space:
    dimensions: tuple[Dimension, ...]
    search: dict[str, Any]


def load_space(path: str | Path) -> Space:
    path = Path(path)
    doc = read_document(path)
    unknown = sorted(set(doc) - {"parameters", "search"})
    if unknown:
        raise PipelineError(f"{path}: unknown table(s) {', '.join(unknown)}; "
                            "allowed: [parameters], [search]")
    search = validate(SEARCH_PARAMS, doc.get("search", {}), f"{path} [search]")
    dims = []
    for key, spec in doc.get("parameters", {}).items():
        where = f"{path} [parameters] key {key!r}"
        if isinstance(spec, list):
            if not spec:
                raise PipelineError(f"{where}: the list of choices is empty")
            dims.append(Dimension(key, choices=tuple(spec)))
        elif isinstance(spec, Mapping):
            extra = sorted(set(spec) - {"low", "high", "log", "step"})
            if extra or "low" not in spec or "high" not in spec:
                raise PipelineError(f"{where}: write {{ low = …, high = …, log = false, "
                                    "step = … }} or a list of choices")
            if not spec["low"] < spec["high"]:
                raise PipelineError(f"{where}: low must be below high")
            dims.append(Dimension(key, low=spec["low"], high=spec["high"],
                                  log=bool(spec.get("log", False)), step=spec.get("step")))
        else:
            raise PipelineError(f"{where}: expected a list of choices or a range table")
    if not dims:
        raise PipelineError(f"{path}: [parameters] names nothing to search")
    return Space(tuple(dims), dict(search))


@dataclass
class TuneResult:
    best_value: float
    best_params: dict[str, Any]
    best_run: int
    pipeline_path: Path
    runs: list[int]


def _override(key: str, value: Any) -> str:
    """A ``--set`` string for any TOML value (strings quoted, lists bracketed)."""
    return f"{key}={tomli_w.dumps({'v': value}).split('=', 1)[1].strip()}"


def tune(pipeline_path: str | Path, space: Space, trials: int, registry: Registry,
         store: RunStore, out: str | Path, work_dir: str | Path,
         observers: list[Any] | None = None,
         on_trial: Callable[[int, dict[str, Any], float], None] | None = None) -> TuneResult:
    pipeline_path = Path(pipeline_path)
    base = load_pipeline(pipeline_path, registry)  # refuse a broken pipeline up front
    ev = base.evaluation
    horizon = space.search["horizon"] or ev.horizons[-1]
    if horizon not in ev.horizons:
        raise PipelineError(f"[search] horizon {horizon!r} is not one of the pipeline's "
                            f"horizons: {', '.join(ev.horizons)}")
    metric = space.search["metric"]
    protocol = [_override("evaluation.until", ev.cutoff),
                _override("evaluation.intervals", 0),  # trials are scored, not compared
                _override("pipeline.name", f"{base.name} (tuning)")]
    inner = space.search["cutoffs"] or [space.search["cutoff"]]
    sampler = {
        "random": lambda: optuna.samplers.RandomSampler(seed=base.seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=base.seed),
        "grid": lambda: optuna.samplers.GridSampler(
            {d.key: d.grid() for d in space.dimensions}, seed=base.seed),
    }[space.search["method"]]()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    runs: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        chosen = {d.key: d.suggest(trial) for d in space.dimensions}
        results = []
        for i, cutoff in enumerate(inner):
            overrides = protocol + [_override("evaluation.cutoff", cutoff)] + [
                _override(k, v) for k, v in chosen.items()]
            pipeline = load_pipeline(pipeline_path, registry, overrides)
            folder = f"trial-{trial.number:03d}" + (f"-{i}" if len(inner) > 1 else "")
            results.append(Runner(pipeline, registry, store, Path(work_dir) / folder,
                                  observers or []).run())
        runs.extend(r.run.id for r in results)
        trial.set_user_attr("run", results[-1].run.id)
        model = pipeline.one("model").plugin
        value = pooled(results)["results"][model][horizon].get(metric)
        if value is None:
            raise PenchantError(f"trial {trial.number}: metric {metric!r} at {horizon} "
                                "was not computed; check [search] metric")
        if on_trial:
            on_trial(trial.number, chosen, value)
        return value

    study.optimize(objective, n_trials=trials, catch=())
    best = study.best_trial
    doc = apply_overrides(read_document(pipeline_path),
                          [_override(k, v) for k, v in best.params.items()])
    build_pipeline(doc, registry, pipeline_path)  # the winner must be a valid pipeline
    written = save_pipeline(copy.deepcopy(doc), out)
    return TuneResult(best.value, dict(best.params), best.user_attrs["run"], written, runs)
