"""A whole headless run, and how every way a run can end is recorded."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import penchant
from penchant.errors import DataError
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.report import metrics_table
from penchant.runner import RunCancelled, Runner


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


def run(pipeline_file: Path, store, registry, out: Path, **kwargs):
    pipeline = load_pipeline(pipeline_file, registry, kwargs.pop("overrides", ()))
    return Runner(pipeline, registry, store, out, **kwargs).run()


def test_run_writes_every_artifact_and_records_the_run(pipeline_file, store, registry,
                                                       tmp_path) -> None:
    result = run(pipeline_file, store, registry, tmp_path / "out")
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["results"]) == {"vae", "popularity", "recent-popularity"}
    for model in metrics["results"].values():
        assert set(model) == {"7d", "30d"}
        assert {"ndcg@5", "ndcg@10", "recall@10", "precision@5", "hr@10", "mrr@10",
                "coverage@10", "users"} <= set(model["30d"])
    recs = pd.read_csv(out / "recommendations.csv", dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    assert recs.groupby("user")["rank"].apply(lambda r: list(r) == list(range(1, 11))).all()
    # every user with training history gets a list, and none of it is already theirs
    events = pd.read_csv(_shop_events(pipeline_file), dtype=str)
    cutoff = pd.Timestamp(metrics["cutoff"])
    times = pd.to_datetime(events["timestamp"].astype(int), unit="s", utc=True)
    train = events[times < cutoff]
    assert set(recs["user"]) == set(train["user_id"])
    seen = set(zip(train["user_id"], train["item_id"], strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"], strict=True))
    for name in ("model.pt", "features.npz", "losses.csv", "pipeline.toml"):
        assert (out / name).exists()
    record = store.run(result.run.id)
    assert record.status == "finished" and record.out_dir == str(out.resolve())
    assert store.metrics(result.run.id)["vae"]["30d"]["ndcg@10"] == pytest.approx(
        metrics["results"]["vae"]["30d"]["ndcg@10"])
    terms = {row["term"] for row in store.losses(result.run.id)}
    assert {"loss", "nll", "kl", "beta", "val_ndcg@20"} <= terms
    assert set(store.artifacts(result.run.id)) >= {"metrics", "model", "recommendations"}


def _shop_events(pipeline_file: Path) -> str:
    doc = tomllib.loads(pipeline_file.read_text())
    return doc["source"]["path"]


def test_resolved_pipeline_reruns_to_the_same_metrics(pipeline_file, store, registry,
                                                      tmp_path) -> None:
    first = run(pipeline_file, store, registry, tmp_path / "a")
    again = run(tmp_path / "a" / "pipeline.toml", store, registry, tmp_path / "b")
    assert again.metrics["results"] == first.metrics["results"]


class Explode(penchant.Preprocessor):
    name = "explode"
    description = "Fails on purpose."

    def apply(self, dataset, ctx):
        raise DataError("the shop's log is corrupt at row 7")


class Plugin:
    @penchant.hookimpl
    def penchant_register_preprocessors(self):
        return [Explode]


def test_a_failing_stage_is_recorded_as_failed(pipeline_file, store, tmp_path) -> None:
    registry = Registry(plugins=[Plugin()])
    pipeline_file.write_text(pipeline_file.read_text().replace('plugin = "dedup"',
                                                               'plugin = "explode"'))
    with pytest.raises(DataError):
        run(pipeline_file, store, registry, tmp_path / "out")
    record = store.runs()[0]
    assert record.status == "failed" and "row 7" in record.error


class StopAtEpoch:
    """An observer standing in for the app's Stop button."""

    def __init__(self, runner_cancel, epoch: int) -> None:
        self.cancel, self.epoch, self.seen = runner_cancel, epoch, []

    @penchant.hookimpl
    def penchant_on_epoch_end(self, epoch: int, losses: dict) -> None:
        self.seen.append(epoch)
        if epoch >= self.epoch:
            self.cancel.set()


class Broken:
    @penchant.hookimpl
    def penchant_on_stage_end(self, stage: str) -> None:
        raise RuntimeError("observer bug")


def test_stop_cancels_cleanly_and_broken_observers_do_not_matter(pipeline_file, store,
                                                                  registry, tmp_path) -> None:
    import threading

    cancel = threading.Event()
    stopper = StopAtEpoch(cancel, 2)
    pipeline = load_pipeline(pipeline_file, registry, ["model.epochs=50"])
    runner = Runner(pipeline, registry, store, tmp_path / "out", [stopper, Broken()],
                    cancel=cancel)
    with pytest.raises(RunCancelled):
        runner.run()
    assert stopper.seen == [1, 2]
    record = store.runs()[0]
    assert record.status == "cancelled"
    assert any("observer bug" in e for e in record.summary["observer_errors"])
    assert not registry.pm.is_registered(stopper), "observers are removed after the run"


def test_missing_column_is_refused_before_any_run_is_recorded(pipeline_file, store,
                                                              registry, tmp_path) -> None:
    with pytest.raises(penchant.PipelineError) as info:
        run(pipeline_file, store, registry, tmp_path / "out",
            overrides=["source.columns.time=ts"])
    message = str(info.value)
    assert "[source] key 'columns'" in message and "time = 'ts'" in message
    assert "events.csv.gz" in message and "timestamp" in message
    assert store.runs() == []


def test_recommendations_are_finite_and_ranked(pipeline_file, store, registry,
                                               tmp_path) -> None:
    result = run(pipeline_file, store, registry, tmp_path / "out")
    frame = result.recommendations.frame
    assert np.isfinite(frame["score"]).all()
    for _, group in frame.groupby("user"):
        assert (np.diff(group.sort_values("rank")["score"].to_numpy()) <= 1e-6).all()


def test_light_users_are_scored_apart(pipeline_file, store, registry, tmp_path) -> None:
    result = run(pipeline_file, store, registry, tmp_path / "out",
                 overrides=["evaluation.light_users=20"])
    light = result.metrics["light_users"]
    assert light["max_events"] == 20
    for h in ("7d", "30d"):
        everyone = result.metrics["results"]["vae"][h]["users"]
        assert 0 < light["results"]["vae"][h]["users"] < everyone
    stored = store.metrics(result.run.id)["vae"]
    assert stored["30d light"]["users"] == light["results"]["vae"]["30d"]["users"]


def test_the_model_is_set_against_each_baseline_with_an_interval(pipeline_file, store,
                                                                  registry, tmp_path) -> None:
    result = run(pipeline_file, store, registry, tmp_path / "out")
    versus = result.metrics["versus"]
    assert versus["metric"] == "ndcg@10" and versus["level"] == 0.95
    assert set(versus["ratios"]) == {"popularity", "recent-popularity"}
    results = result.metrics["results"]
    for name, by_h in versus["ratios"].items():
        assert set(by_h) == {"7d", "30d"}
        for h, cell in by_h.items():
            assert cell["ratio"] == pytest.approx(results["vae"][h]["ndcg@10"]
                                                  / results[name][h]["ndcg@10"])
            assert cell["users"] == results["vae"][h]["users"]
            assert cell["low"] <= cell["ratio"] <= cell["high"]
    # The hits behind them come with the result, for pairing runs with each other.
    assert set(result.hits) == set(results)
    for h in ("7d", "30d"):
        assert result.hits["vae"][h].ndcg(10).mean() == pytest.approx(
            results["vae"][h]["ndcg@10"])
    table = metrics_table(result.metrics)
    assert "ndcg@10 of vae ÷ each baseline, with its 95 % interval" in table
    cell = versus["ratios"]["popularity"]["30d"]
    assert f"{cell['ratio']:.2f}× ({cell['low']:.2f}–{cell['high']:.2f})" in table
    # The same users and seed draw the same resamples: a rerun repeats the interval.
    again = run(pipeline_file, store, registry, tmp_path / "again")
    assert again.metrics["versus"] == versus


def test_no_intervals_when_asked_for_none(pipeline_file, store, registry, tmp_path) -> None:
    result = run(pipeline_file, store, registry, tmp_path / "out",
                 overrides=["evaluation.intervals=0"])
    assert "versus" not in result.metrics
    assert "interval" not in metrics_table(result.metrics)


class WrongShape(penchant.Model):
    name = "wrong-shape"
    description = "Returns one column too few."

    def fit(self, features, validation, ctx):
        self.n = features.shape[1]

    def score(self, features, rows):
        return np.zeros((len(rows), self.n - 1), dtype=np.float32)


class NaNScores(WrongShape):
    name = "nan-scores"
    description = "Returns NaN for everyone."

    def score(self, features, rows):
        return np.full((len(rows), self.n), np.nan, dtype=np.float32)


class BadModels:
    @penchant.hookimpl
    def penchant_register_models(self):
        return [WrongShape, NaNScores]


@pytest.mark.parametrize("plugin, fragment", [
    ("wrong-shape", "model 'wrong-shape' returned scores of shape"),
    ("nan-scores", "model 'nan-scores' returned NaN scores"),
])
def test_a_model_returning_bad_scores_is_named(pipeline_file, store, tmp_path, plugin,
                                                fragment) -> None:
    registry = Registry(plugins=[BadModels()])
    text = pipeline_file.read_text()
    model_table = text[text.index("[model]"):text.index("[recommender]")]
    pipeline_file.write_text(text.replace(model_table, f'[model]\nplugin = "{plugin}"\n\n'))
    with pytest.raises(penchant.PluginError, match=fragment):
        run(pipeline_file, store, registry, tmp_path / "out")
    assert store.runs()[0].status == "failed"


def test_an_interrupt_wrapped_by_a_library_is_still_an_interrupt(pipeline_file, store,
                                                                  registry, tmp_path,
                                                                  monkeypatch) -> None:
    """SQLAlchemy wraps exceptions raised while it executes; a signal that lands there
    must still be recorded as an interruption, not a failure."""
    from sqlalchemy.exc import StatementError

    from penchant.errors import RunInterrupted

    def wrapped_interrupt(*args, **kwargs):
        try:
            raise RunInterrupted("terminated by signal SIGTERM")
        except RunInterrupted as exc:
            raise StatementError("while storing losses", None, None, exc) from exc

    monkeypatch.setattr(store, "add_losses", wrapped_interrupt)
    with pytest.raises(RunInterrupted):
        run(pipeline_file, store, registry, tmp_path / "out")
    record = store.runs()[0]
    assert record.status == "interrupted" and "SIGTERM" in record.error


def test_stop_with_a_reason_is_an_interruption(pipeline_file, store, registry,
                                               tmp_path) -> None:
    from penchant.errors import RunInterrupted

    pipeline = load_pipeline(pipeline_file, registry)
    runner = Runner(pipeline, registry, store, tmp_path / "out")
    runner.stop("terminated by signal SIGTERM")
    with pytest.raises(RunInterrupted) as info:
        runner.run()
    assert not isinstance(info.value, RunCancelled)
    assert store.runs()[0].status == "interrupted"
