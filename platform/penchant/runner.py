"""Executes a pipeline: load → preprocess → split → features → train → recommend → evaluate.

The CLI and the desktop app both run pipelines through :class:`Runner`. It records the run
in the store before any work, fires the observer hooks as it goes, writes the run folder
atomically, and on any ending — success, error, Ctrl-C, SIGTERM, a Stop button — leaves the
run recorded with the right status.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import scipy.sparse as sp

from penchant import artifacts, atomic, distributed, feedback, interests
from penchant.components import Component, Context, Model, Recommender, Source, Validation
from penchant.data import Dataset, Features, Recommendations
from penchant.errors import PenchantError, PipelineError, RunInterrupted
from penchant.increments import Increments
from penchant.metrics import ListHits
from penchant.pipeline import ComponentSpec, Pipeline, dump
from penchant.plugins import Registry, default_registry
from penchant.ranking import top_k
from penchant.secrets import scrub
from penchant.significance import versus
from penchant.split import relevant_items, resolve_cutoff, temporal_split, validation_cut
from penchant.store import RunStore, penchant_home


class RunCancelled(RunInterrupted):
    """Stopped on purpose from inside the process (the app's Stop button)."""


@dataclass
class RunInfo:
    """What observers get as ``run``."""

    id: int
    name: str
    out_dir: Path
    pipeline: Pipeline


@dataclass
class RunResult:
    run: RunInfo
    metrics: dict[str, Any]
    recommendations: Recommendations
    summary: dict[str, Any] = field(default_factory=dict)
    #: Per model and horizon, the evaluated users' hits: what pairs one run's users with
    #: another's (``benchmarks/compare.py`` sets models of separate runs against each other).
    hits: dict[str, dict[str, ListHits]] = field(default_factory=dict)
    #: The users with at most ``[evaluation] light_users`` training events (None: not
    #: asked for); their results are ``hits`` restricted to them.
    light_users: set[str] | None = None


class Runner:
    def __init__(self, pipeline: Pipeline, registry: Registry | None = None,
                 store: RunStore | None = None, out_dir: str | Path | None = None,
                 observers: Iterable[Any] = (), device: str = "auto",
                 cancel: threading.Event | None = None, resume: int | None = None) -> None:
        self.pipeline = pipeline
        #: The interrupted run this one continues (``penchant run --resume``), or None.
        self.resume = resume
        self.registry = registry or default_registry()
        self.store = store or RunStore()
        self.out_dir = Path(out_dir) if out_dir else None
        self.observers = list(observers)
        self.device = device
        self.cancel = cancel or threading.Event()
        #: Why the run was asked to stop, when it was not the user's Stop (a signal).
        self.stop_reason: str | None = None
        self.summary: dict[str, Any] = {}
        self.run_info: RunInfo | None = None
        self.hits: dict[str, dict[str, ListHits]] = {}
        self.light_users: set[str] | None = None
        #: Resolved secrets, scrubbed from every message and record as a last defence.
        self.secrets = pipeline.secret_values(self.registry)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def safe_summary(self) -> dict[str, Any]:
        return json.loads(self.scrub(json.dumps(self.summary, default=str)))

    # -- observer plumbing ---------------------------------------------------------

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        """Tell every observer; one that raises is recorded in the run's summary and can
        stop neither the run nor the other observers. Of several training processes only
        the leader speaks, so observers hear each event once."""
        if not distributed.is_leader():
            return
        for label, _, error in self.registry.call_each(hook_name, **kwargs):
            if error is not None:
                self.summary.setdefault("observer_errors", []).append(
                    f"{label}.{hook_name}: {type(error).__name__}: {error}")

    def log(self, message: str) -> None:
        self.emit("penchant_on_log", run=self.run_info, message=self.scrub(message))

    def stop(self, reason: str | None = None) -> None:
        """Ask the run to end at its next safe point (between batches, stages, chunks).

        Without a reason it is the user's Stop (recorded as cancelled); with one, e.g. a
        signal, it is recorded as interrupted. Raising at a safe point, rather than from a
        signal handler, keeps the exception out of half-finished store writes.
        """
        self.stop_reason = reason
        self.cancel.set()

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            if self.stop_reason:
                raise RunInterrupted(self.stop_reason)
            raise RunCancelled("stopped by the user")

    def context(self, stage: str, model: str | None = None) -> Context:
        report = self.summary.setdefault("stages", {}).setdefault(stage, {})

        def progress(name: str, done: int, total: int) -> None:
            self.emit("penchant_on_progress", run=self.run_info, stage=name, done=done,
                      total=total)

        def epoch_end(epoch: int, losses: dict[str, float], metrics: dict[str, float]) -> None:
            assert self.run_info is not None
            name = model or stage
            if distributed.is_leader():
                self.store.add_losses(self.run_info.id, name, epoch,
                                      {**losses, **{f"val_{k}": v for k, v in metrics.items()}})
            self.emit("penchant_on_epoch_end", run=self.run_info, model=name, epoch=epoch,
                      losses=losses, metrics=metrics)

        return Context(seed=self.pipeline.seed, device=self.device,
                       work_dir=str(self.out_dir / "work" / (model or stage)),
                       report=report, log=self.log, progress=progress, epoch_end=epoch_end,
                       check_cancelled=self.check_cancelled)

    def create(self, stage: str, index: int = 0) -> Component:
        return self.pipeline.create(self.pipeline.stages[stage][index], self.registry)

    # -- the run -------------------------------------------------------------------

    def run(self) -> RunResult | None:
        """The run's result; None on a training process that is not the leader (see
        :mod:`penchant.distributed`), which stops after training."""
        pipeline = self.pipeline
        for observer in self.observers:
            self.registry.pm.register(observer)
        try:
            try:
                self.source = self.preflight()
            except PenchantError as exc:
                self._raise_scrubbed(exc)
            if not distributed.is_leader():
                run_id, out_dir = distributed.broadcast(None)
                self.out_dir = Path(out_dir)
                self.run_info = RunInfo(run_id, pipeline.name, self.out_dir, pipeline)
                return self._execute()
            run_id = self._reopen() if self.resume is not None else self._record()
            distributed.broadcast((run_id, str(self.out_dir)))
            self.run_info = RunInfo(run_id, pipeline.name, self.out_dir, pipeline)
            if self.resume is not None:
                self.log(f"resuming run {run_id} in {self.out_dir}")
            return self._guarded(run_id)
        finally:
            for observer in self.observers:
                self.registry.pm.unregister(observer)

    def _record(self) -> int:
        """Record a new run and make its folder."""
        pipeline = self.pipeline
        doc = pipeline.resolved_doc(self.registry, masked=True)
        run_id = self.store.start_run(pipeline.name, pipeline.one("model").plugin,
                                      dump(doc), doc, None)
        self._make_folder(run_id)
        # Where relative paths in the stored pipeline start (replaying its feedback
        # reads the source again).
        self.summary["pipeline_file"] = str(pipeline.path.resolve()) if pipeline.path \
            else None
        return run_id

    def _make_folder(self, run_id: int) -> None:
        if self.out_dir is None:
            self.out_dir = penchant_home() / "runs" / f"{run_id:05d}"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.store.set_out_dir(run_id, str(self.out_dir.resolve()))

    def _reopen(self) -> int:
        """Take up the interrupted run ``self.resume`` again, in its own folder: the data
        stages run again (they are deterministic) and the torch models continue from the
        last checkpoint in that folder."""
        assert self.resume is not None
        record = self.store.reopen_run(self.resume)
        # A run killed before it recorded its folder wrote nothing there yet.
        self.out_dir = Path(record.out_dir) if record.out_dir else None
        self._make_folder(record.id)
        before = record.summary or {}
        self.summary["pipeline_file"] = before.get("pipeline_file")
        self.summary["resumed"] = int(before.get("resumed", 0)) + 1
        return record.id

    def _raise_scrubbed(self, exc: PenchantError) -> NoReturn:
        """Raise ``exc`` again, or, when it tells a secret, the same kind of error without
        it and without the original attached."""
        message = self.scrub(str(exc))
        if message == str(exc):
            raise exc
        raise type(exc)(message) from None

    def _guarded(self, run_id: int) -> RunResult:
        self.emit("penchant_on_run_start", run=self.run_info)
        try:
            try:
                result = self._execute()
            except Exception as exc:
                # A library that wraps what it catches (SQLAlchemy does) must not turn an
                # interrupt into a failure: look for one among the causes.
                interrupt = _interrupt_within(exc)
                if interrupt is None:
                    raise
                raise interrupt from exc
        except (KeyboardInterrupt, RunInterrupted) as exc:
            status = "cancelled" if isinstance(exc, RunCancelled) else "interrupted"
            message = self.scrub(str(exc) or "interrupted (Ctrl-C or SIGTERM)")
            self.store.finish_run(run_id, status, self.safe_summary(), message)
            self.emit("penchant_on_run_failed", run=self.run_info, status=status,
                      error=message)
            raise
        except PenchantError as exc:
            message = self.scrub(str(exc))
            self.store.finish_run(run_id, "failed", self.safe_summary(), message)
            self.emit("penchant_on_run_failed", run=self.run_info, status="failed",
                      error=message)
            self._raise_scrubbed(exc)
        except BaseException as exc:
            text = self.scrub("".join(traceback.format_exception(exc)))
            self.store.finish_run(run_id, "failed", self.safe_summary(), text)
            self.emit("penchant_on_run_failed", run=self.run_info, status="failed",
                      error=self.scrub(f"{type(exc).__name__}: {exc}"))
            raise
        self.store.finish_run(run_id, "finished", self.safe_summary())
        self.emit("penchant_on_run_end", run=self.run_info, metrics=result.metrics)
        return result

    def _stage(self, stage: str, work: Callable[[], Any],
               describe: Callable[[Any], dict[str, Any]] = lambda _: {}) -> Any:
        self.check_cancelled()
        started = time.perf_counter()
        value = work()
        seconds = time.perf_counter() - started
        report = self.summary.setdefault("stages", {}).setdefault(stage, {})
        report.update(describe(value))
        report["seconds"] = round(seconds, 3)
        self.emit("penchant_on_stage_end", run=self.run_info, stage=stage, seconds=seconds,
                  summary=dict(report))
        return value

    def _execute(self) -> RunResult | None:
        p = self.pipeline
        ev = p.evaluation
        load_ctx = self.context("load")
        load_ctx.increments = Increments(self.store, penchant_home() / "sources",
                                         self.run_info.id)
        dataset = self._stage("load", lambda: self.source.load(load_ctx), _dataset_summary)
        if p.feedback.merge:
            dataset = self._stage("feedback", lambda: self._merge_feedback(dataset),
                                  lambda d: {"merged": int(feedback.is_feedback(d.events)
                                                           .sum()),
                                             "kinds": feedback.kind_counts(d.events)})
        for i, spec in enumerate(p.stages["preprocess"]):
            step = self.create("preprocess", i)
            label = f"preprocess[{i}] {spec.plugin}"
            dataset = self._stage(label, lambda step=step, ds=dataset, label=label: step.apply(
                ds, self.context(label)), _dataset_summary)
        dataset.events.check(f"{p.origin}: events after loading and preprocessing")
        if ev.until is not None:
            dataset = self._stage("until", lambda: _until(dataset, ev.until,
                                                          self._own(dataset.events)),
                                  _dataset_summary)
        split = self._stage("split", lambda: temporal_split(
            dataset.events, ev.cutoff, self._own(dataset.events)),
            lambda s: self._describe_split(s, dataset))
        train_ds = dataset.with_events(split.train, f"before {split.cutoff}")
        categories = interests.Categories.from_dataset(
            train_ds, ev.category, f"{p.origin} [evaluation] key 'category'") \
            if ev.interests else None
        features = self._stage("features", lambda: self.features(train_ds, split.cutoff),
                               lambda f: {"users": f.shape[0], "items": f.shape[1],
                                          "nnz": int(f.matrix.nnz)})
        validation = self._validation(train_ds, features) if ev.validation > 0 else None
        model_spec = p.one("model")
        model, early = self._stage("train", lambda: self._train(features, validation),
                                   lambda pair: {"best_epoch": getattr(pair[1], "best_epoch",
                                                                       None)})
        if not distributed.is_leader():
            return None
        baselines = self._stage("baselines", lambda: {
            name: self._fit(self.registry.get("model", name)({}, where=name), features, None)
            for name in ev.baselines if name != model_spec.plugin})
        recommender = self.create("recommender")
        self._stage("fit recommender", lambda: recommender.fit(
            early, features, validation, self.context("fit recommender")))
        all_rows = np.arange(features.shape[0])
        depth = max(max(ev.k), ev.recommend_k)
        recs = self._stage("recommend", lambda: recommender.recommend(
            model, features, all_rows, depth, self.context("recommend")),
            lambda r: {"users": int(r.frame["user"].nunique()), "rows": len(r.frame)})
        metrics = self._stage("evaluate", lambda: self._evaluate(
            split, features, recommender, {model_spec.plugin: (model, recs)}, baselines))
        trajectories = None
        if categories is not None:
            metrics["interests"], trajectories = self._stage("interests", lambda: self._interests(
                split, features, model, categories), lambda r: {"trajectory_rows": len(r[1])})
        shown = Recommendations(recs.frame[recs.frame["rank"] <= ev.recommend_k]
                                .reset_index(drop=True))
        self._stage("write", lambda: self._write(model, recommender, features, shown, metrics,
                                                 trajectories))
        return RunResult(self.run_info, metrics, shown, self.summary, self.hits,
                         self.light_users)

    def _merge_feedback(self, dataset: Dataset) -> Dataset:
        """The loaded events with the stored feedback of ``[feedback] runs`` (or of every
        run) as events of their own kinds (see :mod:`penchant.feedback`)."""
        settings = self.pipeline.feedback
        stored = feedback.read(self.store, settings.runs or None)
        merged = feedback.merge(dataset, stored, settings.weights)
        self.summary.setdefault("stages", {}).setdefault("feedback", {})["runs"] = sorted(
            int(r) for r in stored["run_id"].unique())
        self.log(f"feedback: merged {int(feedback.is_feedback(merged.events).sum())} "
                 f"event(s) of {stored['run_id'].nunique()} run(s)")
        return merged

    def _own(self, events: Any) -> np.ndarray | None:
        """Which events are the source's own, when feedback was merged (None otherwise):
        only they set a quantile cutoff and make up what a model is scored against."""
        return ~feedback.is_feedback(events) if self.pipeline.feedback.merge else None

    def _describe_split(self, split: Any, dataset: Dataset) -> dict[str, Any]:
        out = {"cutoff": str(split.cutoff), "train_events": len(split.train),
               "test_events": len(split.test)}
        if self.pipeline.feedback.merge:
            in_train = int(feedback.is_feedback(split.train).sum())
            kept = int(feedback.is_feedback(dataset.events).sum())
            out.update(feedback_train=in_train, feedback_after_cutoff=kept - in_train)
        return out

    def preflight(self) -> Source:
        """Checks that need the outside world (the source's columns) before a run is
        recorded, so a typo costs nothing and leaves no failed run behind."""
        source = self.create("source")
        if distributed.active() and source.params.get("incremental", False):
            raise PipelineError(f"{self.pipeline.origin} [source] key 'incremental': an "
                                "incremental read cannot be shared by several training "
                                "processes; train on one, or read the source in full")
        where = f"{self.pipeline.origin} [source] key 'columns'"
        available = source.available_columns()
        missing = {k: v for k, v in source.params.columns.items() if v not in available}
        if missing:
            wrong = ", ".join(f"{k} = {v!r}" for k, v in missing.items())
            raise PipelineError(f"{where}: {wrong} not found in {source.describe_origin()}; "
                                f"its columns are: {', '.join(map(str, available))}")
        return source

    def features(self, train_ds: Dataset, now: pd.Timestamp, users: pd.Index | None = None,
                 items: pd.Index | None = None) -> Features:
        return extract_features(self.pipeline, self.registry, train_ds, now,
                                self.context("features"), users, items)

    def _validation(self, train_ds: Dataset, features: Features) -> Validation | None:
        cut = validation_cut(train_ds.events, self.pipeline.evaluation.validation)
        frame = train_ds.events.frame
        own = self._own(train_ds.events)
        before = train_ds.with_events(train_ds.events.select(frame["time"] < cut))
        after = (frame["time"] >= cut).to_numpy() & (own if own is not None else True)
        window = train_ds.with_events(train_ds.events.select(after))
        if len(before.events) == 0 or len(window.events) == 0:
            self.log("validation: the training period is too short to hold out its end; "
                     "training without early stopping")
            return None
        val_features = self.features(before, cut, features.users, features.items)
        touched = Features.start(window, cut, features.users, features.items).history
        targets = (touched - touched.multiply(val_features.history)).tocsr()
        targets.eliminate_zeros()
        users = int((np.diff(targets.indptr) > 0).sum())
        self.summary.setdefault("stages", {})["validation"] = {"cut": str(cut),
                                                               "users": users}
        return Validation(val_features, sp.csr_matrix(targets), k=20,
                          max_users=self.pipeline.evaluation.validation_users)

    def _train(self, features: Features, validation: Validation | None
               ) -> tuple[Model, Model]:
        """The final model, and one that never saw the validation window.

        With ``refit`` (the default) the model first trains on the events before the
        validation cut, early-stopping on the window after it; then a fresh one trains on
        the whole training period for as many epochs as the first one needed. Without it,
        one model trains on everything and early-stops on a window it has seen (faster,
        optimistic), and serves as both.
        """
        spec = self.pipeline.one("model")
        model = self._model(spec.params)
        if validation is None or not self.pipeline.evaluation.refit:
            fitted = self._fit(model, features, validation)
            return fitted, fitted
        early = self._fit(model, validation.features, validation,
                          label=f"{model.name} (validation)")
        params = dict(spec.params)
        names = {p.name for p in model.schema()}
        if {"epochs", "patience"} <= names and getattr(early, "best_epoch", 0):
            params.update(epochs=early.best_epoch, patience=0)
        return self._fit(self._model(params), features, None), early

    def _model(self, params: dict[str, Any]) -> Model:
        """The pipeline's model with ``params``; when resuming, one that continues from its
        checkpoint if it has a ``resume`` switch (torch models do)."""
        spec = self.pipeline.one("model")
        names = {p.name for p in self.registry.get("model", spec.plugin).schema()}
        if self.resume is not None and "resume" in names:
            params = {**params, "resume": True}
        return self.pipeline.create(ComponentSpec(spec.kind, spec.plugin, params, spec.table),
                                    self.registry)

    def _fit(self, model: Model, features: Features, validation: Validation | None,
             label: str | None = None) -> Model:
        label = label or model.name
        ctx = self.context(f"train {label}", label)
        events = features.dataset.events

        def features_at(cut: pd.Timestamp) -> Features:
            before = features.dataset.with_events(
                events.select((events.frame["time"] < cut).to_numpy()))
            return extract_features(self.pipeline, self.registry, before, cut, ctx,
                                    features.users, features.items)

        ctx.features_at = features_at
        model.fit(features, validation, ctx)
        return model

    def _evaluate(self, split: Any, features: Features, recommender: Recommender,
                  lists: dict[str, tuple[Model, Recommendations]],
                  baselines: dict[str, Model]) -> dict[str, Any]:
        ev = self.pipeline.evaluation
        relevant = relevant_items(split.train, split.test, split.cutoff, ev.horizons)
        evaluated = sorted(set().union(*[set(r) for r in relevant.values()]))
        rows = features.users.get_indexer(pd.Index(evaluated, dtype="string"))
        ctx = self.context("evaluate")
        exclude = recommender.params.get("exclude_seen", True)
        for name, model in baselines.items():
            lists[name] = (model, top_k(model.score, features, rows, max(ev.k), ctx, exclude))
        light = self.light_users = _light_users(split.train, ev.light_users)
        hits = self.hits
        results: dict[str, dict[str, dict[str, float]]] = {}
        segments: dict[str, dict[str, dict[str, float]]] = {}
        for name, (_, recs) in lists.items():
            ranked = recs.lists()
            hits[name] = {h: ListHits.of(ranked, relevant[h], max(ev.k)) for h in ev.horizons}
            results[name] = {h: hits[name][h].metrics(ev.k, features.shape[1])
                             for h in ev.horizons}
            if light is not None:
                segments[name] = {h: hits[name][h].subset(light).metrics(
                    ev.k, features.shape[1]) for h in ev.horizons}
        main = self.pipeline.one("model").plugin
        out = {"cutoff": str(split.cutoff), "horizons": list(ev.horizons), "k": list(ev.k),
               "model": main, "results": _clean(results)}
        if ev.intervals and main in hits:
            out["versus"] = _clean(versus(hits, main, max(ev.k), ev.intervals, ev.resamples,
                                          self.pipeline.seed))
        if light is not None:
            out["light_users"] = {"max_events": ev.light_users, "results": _clean(segments)}
        return out

    def _interests(self, split: Any, features: Features, model: Model,
                   categories: interests.Categories) -> tuple[dict[str, Any], pd.DataFrame]:
        """Category-distribution forecasts against the persistence baselines, and the
        trajectories of every user with training history."""
        ev = self.pipeline.evaluation
        name = self.pipeline.one("model").plugin
        if not isinstance(model, interests.InterestModel):
            self.log(f"interests: {name} does not forecast interests; scoring the "
                     "baselines only")
        report = interests.evaluate_interests(split.train, split.test, split.cutoff,
                                              features.users, categories, ev.horizons,
                                              ev.interest_half_life, {name: model}, features)
        trajectories = interests.interest_trajectories(
            split.train, split.cutoff, features.users, categories, ev.horizons,
            ev.interest_half_life, name, model, features)
        return _clean(report.metrics), trajectories

    def _write(self, model: Model, recommender: Recommender, features: Features,
               recs: Recommendations, metrics: dict[str, Any],
               trajectories: pd.DataFrame | None = None) -> dict[str, Path]:
        out = self.out_dir
        assert out is not None and self.run_info is not None
        losses = self.store.losses(self.run_info.id)
        paths = {
            "metrics": artifacts.write_json(out / "metrics.json", metrics),
            "recommendations": artifacts.write_recommendations(out / "recommendations.csv",
                                                               recs),
            "model": artifacts.save_model(model, features.items, out / "model.pt",
                                          recommender),
            "features": artifacts.save_features(features, out / "features.npz",
                                                self.pipeline.evaluation.category),
            "losses": artifacts.write_losses(out / "losses.csv", losses),
            "pipeline": atomic.write_text(
                out / "pipeline.toml",
                dump(self.pipeline.resolved_doc(self.registry, masked=True))),
        }
        if trajectories is not None:
            paths["trajectories"] = atomic.write_text(
                out / "trajectories.csv", trajectories.to_csv(index=False, float_format="%.5g"))
        main = self.pipeline.one("model").plugin
        if main in self.hits:
            paths["user_metrics"] = atomic.write_text(
                out / "user_metrics.csv",
                _user_metrics(self.hits[main], self.pipeline.evaluation.k)
                .to_csv(index=False, float_format="%.5g"))
        self.store.add_metrics(self.run_info.id, _stored_metrics(metrics))
        self.store.add_artifacts(self.run_info.id, {k: str(v.resolve()) for k, v in
                                                    paths.items()})
        return paths


def extract_features(pipeline: Pipeline, registry: Registry, dataset: Dataset,
                     now: pd.Timestamp, ctx: Context, users: pd.Index | None = None,
                     items: pd.Index | None = None) -> Features:
    """Run the pipeline's extractors in order over ``dataset``: for training, for the
    validation cut, and for folding in a user the model never saw."""
    features = Features.start(dataset, now, users, items)
    for spec in pipeline.stages["features"]:
        features = pipeline.create(spec, registry).extract(features, ctx)
    if features.matrix is None:
        raise PipelineError(f"{pipeline.origin} [[features]]: no extractor built an "
                            "interaction matrix; add plugin = \"interactions\"")
    return features


def _interrupt_within(exc: BaseException) -> BaseException | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt | RunInterrupted):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _light_users(train: Any, max_events: int) -> set[str] | None:
    """Users with at most ``max_events`` training events: where side information and
    priors matter most, so they are scored apart as well (None when switched off)."""
    if max_events <= 0:
        return None
    counts = train.frame["user"].astype("string").value_counts()
    return set(counts[counts <= max_events].index)


def _until(dataset: Dataset, until: str | float, own: np.ndarray | None = None) -> Dataset:
    at = resolve_cutoff(dataset.events if own is None else dataset.events.select(own), until)
    kept = dataset.events.select((dataset.events.frame["time"] < at).to_numpy())
    return dataset.with_events(kept, f"events before {at}")


def _dataset_summary(ds: Dataset) -> dict[str, Any]:
    f = ds.events.frame
    return {"events": len(f), "users": int(f["user"].nunique()),
            "items": int(f["item"].nunique())}


def _user_metrics(hits: dict[str, ListHits], ks: list[int]) -> pd.DataFrame:
    """Each evaluated user's NDCG per horizon and k: what pairs this run with another over
    the same users (``penchant runs compare``)."""
    frames = [pd.DataFrame({"user": by_h.users, "horizon": horizon,
                            **{f"ndcg@{k}": by_h.ndcg(k) for k in ks}})
              for horizon, by_h in hits.items()]
    return pd.concat(frames, ignore_index=True)


def _stored_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Ranking results and interest metrics as one ``model → horizon → metric`` table
    (the store replaces a run's metrics in one call); an interest metric's user count is
    ``interest_users``, beside the ranking ``users``."""
    merged = {name: {h: dict(values) for h, values in by_h.items()}
              for name, by_h in metrics["results"].items()}
    for name, by_h in metrics.get("light_users", {}).get("results", {}).items():
        for h, values in by_h.items():
            merged[name][f"{h} light"] = dict(values)
    for name, by_h in metrics.get("interests", {}).items():
        for h, values in by_h.items():
            row = merged.setdefault(name, {}).setdefault(h, {})
            row.update({"js": values["js"], "top3": values["top3"],
                        "interest_users": values["users"]})
    return merged


def _clean(value: Any) -> Any:
    """NaN → None, so metrics.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

