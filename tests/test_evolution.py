"""The evolution model on tiny hand-made shops: it learns dynamics persistence cannot see,
its forecasts are distributions, checkpoints and folded-in users forecast the same, and a
whole run with ``interests = true`` records everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import penchant
from conftest import write_pipeline
from modelkit import NOW, block_features, own_item_recall, registry_with
from penchant import interests as I
from penchant.artifacts import load_model, save_model
from penchant.data import Dataset, Events, Features
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.trained import TrainedRun
from penchant_plugins.models.evolution import Evolution

SMALL: dict[str, Any] = {"hidden": 16, "latent": 4, "state": 16, "dropout": 0.0,
                         "lr": 1e-2, "batch_size": 8, "window": "30d", "n_windows": 6,
                         "anneal_steps": 50, "device": "cpu"}
HORIZONS = ["7d", "30d", "90d"]


class Plugin:
    @penchant.hookimpl
    def penchant_register_models(self) -> list[type]:
        return [Evolution]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def alternating_frame(users: int = 24, windows: int = 6, seed: int = 0,
                      fixed: bool = False) -> pd.DataFrame:
    """Even users shop category a in even windows (0 = oldest) and b in odd ones, odd users
    the other way round: the window after ``NOW`` is a for even users, b for odd ones,
    while each user's history is half a, half b. Each window has three of the category's
    five items: random ones, or (``fixed``) items 0-2 for even users and 2-4 for odd."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        for w in range(windows):
            category = "ab"[(w + u) % 2]
            middle = NOW - pd.Timedelta(days=30 * (windows - w) - 15)
            chosen = (np.arange(3) + 2 * (u % 2) if fixed
                      else rng.choice(5, size=3, replace=False))
            for item in chosen:
                hours = int(rng.integers(-48, 48))
                rows.append((f"u{u}", f"{category}{item}",
                             (middle + pd.Timedelta(hours=hours)).isoformat()))
    return pd.DataFrame(rows, columns=["user", "item", "time"])


ITEMS = pd.DataFrame({"category": [c for c in "ab" for _ in range(5)]},
                     index=pd.Index([f"{c}{i}" for c in "ab" for i in range(5)],
                                    dtype="string"))


def features_of(frame: pd.DataFrame, items: pd.DataFrame | None = ITEMS,
                users: pd.Index | None = None, catalogue: pd.Index | None = None
                ) -> Features:
    features = Features.start(Dataset(Events.from_frame(frame), items=items), NOW, users,
                              catalogue)
    features.matrix = features.history.astype(np.float32)
    return features


@pytest.fixture(scope="module")
def turns() -> Features:
    return features_of(alternating_frame())


def fit(features: Features, epochs: int = 3, seed: int = 0, work_dir: Path | None = None,
        losses: list | None = None, **params: Any) -> Evolution:
    model = Evolution({**SMALL, "epochs": epochs, **params})
    record = (lambda epoch, terms, metrics: losses.append(terms)) if losses is not None \
        else (lambda epoch, terms, metrics: None)
    model.fit(features, None, penchant.Context(
        seed=seed, work_dir=str(work_dir) if work_dir else None, epoch_end=record))
    return model


@pytest.fixture(scope="module")
def trained(turns: Features) -> Evolution:
    return fit(turns, epochs=60)


def everyone(features: Features) -> np.ndarray:
    return np.arange(features.shape[0])


def test_keeps_the_plugin_contract_and_forecasts_interests() -> None:
    registry = registry_with(Evolution)
    assert registry.failures == []
    assert registry.names("model") == ["evolution"]
    assert isinstance(Evolution({}), I.InterestModel)


def test_learns_the_dynamics_persistence_cannot_see(turns, trained) -> None:
    forecast = trained.forecast_interests(turns, everyone(turns), ["30d"])["30d"]
    assert trained.interest_categories() == ["a", "b"]
    even = np.array([int(u[1:]) % 2 == 0 for u in turns.users])
    a_share = forecast[:, 0]
    # persistence says a half; the model knows whose turn it is
    assert a_share[even].mean() > 0.7 and (1 - a_share[~even]).mean() > 0.7
    truth = np.where(even[:, None], [1.0, 0.0], [0.0, 1.0])
    model_js = I.js_divergence(forecast, truth).mean()
    persistence = I.persistence(turns.dataset.events, turns.users, I.Categories.from_items(ITEMS))
    assert model_js < I.js_divergence(persistence, truth).mean() - 0.2


def test_overfits_a_tiny_set() -> None:
    features = features_of(alternating_frame(fixed=True))
    losses: list[dict[str, float]] = []
    model = fit(features, epochs=60, losses=losses)
    scores = model.score(features, everyone(features))
    assert scores.shape == features.shape and np.isfinite(scores).all()
    # the next window's items: a0-a2 for even users, b2-b4 for odd ones
    odd = np.array([int(u[1:]) % 2 for u in features.users])
    expected = [[f"{'ab'[o]}{i}" for i in range(2 * o, 2 * o + 3)] for o in odd]
    top = np.argsort(-scores, axis=1)[:, :3]
    recall = np.mean([len(set(features.items[t]) & set(e)) / 3
                      for t, e in zip(top, expected, strict=True)])
    assert recall >= 0.9
    assert losses[-1]["loss"] < losses[0]["loss"] / 2
    assert {"loss", "recon", "kl", "predict", "category_js", "beta", "seconds"} == \
        set(losses[0])


def test_trains_for_ranking_without_categories() -> None:
    features = block_features()  # 300 days of history, no items side table
    losses: list[dict[str, float]] = []
    model = fit(features, epochs=2, losses=losses, n_windows=10, batch_size=20)
    assert "category_js" not in losses[0]
    scores = model.score(features, everyone(features))
    assert scores.shape == features.shape and np.isfinite(scores).all()
    assert own_item_recall(scores, features.history) > 0.2
    with pytest.raises(penchant.DataError, match="'category'"):
        model.forecast_interests(features, np.array([0]), ["30d"])


def test_forecasts_are_distributions_for_every_horizon(turns, trained) -> None:
    forecasts = trained.forecast_interests(turns, everyone(turns), HORIZONS)
    assert list(forecasts) == HORIZONS
    for f in forecasts.values():
        assert f.shape == (turns.shape[0], 2)
        assert (f >= 0).all() and np.allclose(f.sum(axis=1), 1.0)
    empty = trained.forecast_interests(turns, np.array([], dtype=int), HORIZONS)
    assert empty["90d"].shape == (0, 2)


def test_checkpoint_round_trip_gives_identical_forecasts(turns, trained, tmp_path) -> None:
    path = save_model(trained, turns.items, tmp_path / "model.pt")
    torch.load(path, weights_only=True)  # nothing but tensors, numbers and strings
    loaded, items = load_model(path, registry_with(Evolution))
    assert isinstance(loaded, Evolution) and list(items) == list(turns.items)
    rows = everyone(turns)
    before, after = (m.forecast_interests(turns, rows, HORIZONS) for m in (trained, loaded))
    for h in HORIZONS:
        np.testing.assert_array_equal(after[h], before[h])
    np.testing.assert_array_equal(loaded.score(turns, rows), trained.score(turns, rows))


def test_a_folded_in_user_is_forecast_from_their_events_alone(turns, trained) -> None:
    frame = turns.dataset.events.frame
    mine = frame[frame["user"] == "u3"][["item", "time"]].assign(user="visitor")
    visitor = features_of(mine, items=None, users=pd.Index(["visitor"], dtype="string"),
                          catalogue=turns.items)
    row = np.array([turns.users.get_loc("u3")])
    folded = trained.forecast_interests(visitor, np.array([0]), HORIZONS)
    known = trained.forecast_interests(turns, row, HORIZONS)
    for h in HORIZONS:
        np.testing.assert_allclose(folded[h], known[h], atol=1e-6)


def test_trajectory_is_a_long_table_of_windows_and_forecasts(turns, trained) -> None:
    frame = trained.interest_trajectory(turns, np.array([0, 1]), HORIZONS)
    assert list(frame.columns) == list(I.TRAJECTORY_COLUMNS)
    assert set(frame["user"]) == {"u0", "u1"}
    assert set(frame["kind"]) == {"observed", "latent", "forecast"}
    observed = frame[frame["kind"] == "observed"]
    assert sorted(observed["window"].unique()) == list(range(-6, 0))
    assert np.allclose(observed.groupby(["user", "window"])["value"].sum(), 1.0)
    latent = frame[frame["kind"] == "latent"]
    assert len(latent) == 2 * 6 * 2 and set(latent["name"]) == {"pc1", "pc2"}
    forecast = frame[frame["kind"] == "forecast"]
    assert set(forecast["horizon"]) == set(HORIZONS)
    assert np.allclose(forecast.groupby(["user", "horizon"])["value"].sum(), 1.0, atol=2e-3)
    # the axes are fitted once, so a user's states do not depend on who else is drawn
    alone = trained.interest_trajectory(turns, np.array([1]), HORIZONS)
    np.testing.assert_allclose(alone.loc[alone["kind"] == "latent", "value"].to_numpy(),
                               latent.loc[latent["user"] == "u1", "value"].to_numpy(),
                               rtol=1e-5, atol=1e-6)


def test_resume_continues_exactly(turns, tmp_path) -> None:
    straight: list[dict[str, float]] = []
    whole = fit(turns, epochs=4, work_dir=tmp_path / "a", losses=straight)
    fit(turns, epochs=2, work_dir=tmp_path / "b")
    resumed_losses: list[dict[str, float]] = []
    resumed = fit(turns, epochs=4, work_dir=tmp_path / "b", losses=resumed_losses,
                  resume=True)
    assert len(resumed_losses) == 2
    for key, value in straight[-1].items():
        if key != "seconds":
            assert resumed_losses[-1][key] == pytest.approx(value, abs=1e-5), key
    rows = everyone(turns)
    np.testing.assert_allclose(resumed.forecast_interests(turns, rows, ["90d"])["90d"],
                               whole.forecast_interests(turns, rows, ["90d"])["90d"],
                               atol=1e-5)


@pytest.mark.parametrize(("key", "value"), [("window", "monthly"), ("n_windows", 1),
                                            ("spans", 0), ("target", "next-window")])
def test_bad_parameters_name_the_key(key, value) -> None:
    with pytest.raises(penchant.PipelineError, match=f"key '{key}'"):
        Evolution({key: value})


def test_batches_live_on_the_model_device(turns, trained) -> None:
    batch = trained.batch(turns, np.array([0, 1]))
    assert batch.extra["windows"].shape == (2, 6, turns.shape[1])
    assert batch.extra["windows"].device == trained.device == batch.x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_and_forecasts_on_cuda(turns, tmp_path) -> None:
    losses: list[dict[str, float]] = []
    model = fit(turns, epochs=60, losses=losses, device="cuda", work_dir=tmp_path)
    assert next(model.module.parameters()).device.type == "cuda"
    assert all(np.isfinite(v) for epoch in losses for v in epoch.values())
    forecast = model.forecast_interests(turns, everyone(turns), HORIZONS)
    assert all(np.allclose(f.sum(axis=1), 1.0, atol=1e-4) for f in forecast.values())
    even = np.array([int(u[1:]) % 2 == 0 for u in turns.users])
    assert forecast["30d"][even, 0].mean() > 0.7
    loaded, _ = load_model(save_model(model, turns.items, tmp_path / "m.pt"),
                           registry_with(Evolution))
    np.testing.assert_allclose(loaded.forecast_interests(turns, everyone(turns), ["30d"])["30d"],
                               forecast["30d"], atol=1e-2)


def test_a_run_records_interest_metrics_and_trajectories(shop: Path, tmp_path, store) -> None:
    registry = Registry(plugins=[Plugin()])
    path = write_pipeline(shop, tmp_path, epochs=2, extra="interests = true\n")
    overrides = ["model.plugin=evolution", "model.hidden=16", "model.latent=4",
                 "model.state=8", "model.n_windows=4"]
    result = Runner(load_pipeline(path, registry, overrides), registry, store,
                    tmp_path / "out").run()
    out = tmp_path / "out"
    scored = json.loads((out / "metrics.json").read_text())["interests"]
    assert set(scored) == {"evolution", I.PERSISTENCE, I.RECENCY}
    for by_h in scored.values():
        assert set(by_h) == {"7d", "30d"}
        assert 0 <= by_h["30d"]["js"] <= 1 and 0 <= by_h["30d"]["top3"] <= 1
    assert scored["evolution"]["30d"]["users"] == scored[I.PERSISTENCE]["30d"]["users"] > 0
    stored = store.metrics(result.run.id)
    assert stored["evolution"]["30d"]["js"] == pytest.approx(scored["evolution"]["30d"]["js"])
    assert stored[I.RECENCY]["7d"]["top3"] == pytest.approx(scored[I.RECENCY]["7d"]["top3"])
    assert "ndcg@10" in stored["evolution"]["30d"]
    trajectories = pd.read_csv(out / "trajectories.csv", dtype={"user": str})
    assert set(trajectories["kind"]) == {"observed", "latent", "forecast"}
    assert set(trajectories["model"].dropna()) == {"evolution", I.PERSISTENCE, I.RECENCY}
    assert store.artifacts(result.run.id)["trajectories"] == str(
        (out / "trajectories.csv").resolve())
    # the stored run recommends, to known users and to a newcomer by history
    run = TrainedRun(result.run.id, store, registry)
    user = run.users[0]
    assert len(run.recommend(user, k=5)) == 5
    history = pd.DataFrame({"item": list(run.items[:3])})
    assert len(run.recommend_history(history, k=5)) == 5
