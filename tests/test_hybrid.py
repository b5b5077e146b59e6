"""The hybrid recommender: its blend by hand, weights learnt on held-out time, and state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import penchant
from conftest import write_pipeline
from penchant.data import Dataset, Events, Features
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.trained import TrainedRun
from penchant_plugins.models.popularity import Popularity
from penchant_plugins.recommenders.hybrid import Hybrid, Signals, grid_ndcg

NOW = pd.Timestamp("2024-06-01", tz="UTC")


def log(rows: list[tuple[str, str, int]]) -> Features:
    """Events given as (user, item, days before NOW)."""
    frame = pd.DataFrame(rows, columns=["user", "item", "days"])
    frame["time"] = [NOW - pd.Timedelta(days=d) for d in frame["days"]]
    features = Features.start(Dataset(Events.from_frame(frame)), NOW)
    features.matrix = features.history.astype(np.float32)
    return features


# "old" was popular long ago; "new" is what everyone takes now.
HISTORY = ([(f"u{i}", "old", 300) for i in range(6)] + [(f"u{i}", "new", 5) for i in range(3)]
           + [("u0", "x", 200), ("u1", "x", 200), ("u5", "y", 100)])


def test_item_signals_and_freshness_by_hand() -> None:
    features = log(HISTORY)
    hybrid = Hybrid({"window": "30d", "trend_window": "360d", "user_half_life": "10d"})
    recent, trend = hybrid.item_signals(features)
    items = list(features.items)
    assert recent[items.index("new")] == recent.max()
    assert trend[items.index("new")] > trend[items.index("old")]
    fresh = hybrid.freshness(features, np.arange(features.shape[0]))
    users = list(features.users)
    assert fresh[users.index("u0")] == pytest.approx(0.5 ** (5 / 10))  # last seen 5 days ago
    assert fresh[users.index("u5")] == pytest.approx(0.5 ** (100 / 10))


def test_blend_formula() -> None:
    scores = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    near = np.array([[0.0, 0.0, 5.0]], dtype=np.float32)
    recent = np.array([1.0, 0.0, -1.0], dtype=np.float32)
    trend = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    w = {"model": 1.0, "similar": 3.0, "recent": 2.0, "trend": 0.5, "fresh": 1.0}
    z = (scores - scores.mean()) / scores.std()
    zn = (near - near.mean()) / near.std()
    expected = z + 3 * zn + 2 * recent + 0.5 * trend + 0.25 * z
    signals = Signals(z, zn, np.array([0.25], dtype=np.float32), recent, trend)
    np.testing.assert_allclose(signals.combine(w), expected, rtol=1e-6)
    signals.similar = None  # left out (a catalogue too large for EASE): its weight is moot
    np.testing.assert_allclose(signals.combine(w), expected - 3 * zn, rtol=1e-6)


def test_candidates_score_the_grid_as_the_whole_catalogue_does() -> None:
    """The grid ranked among each user's candidates (the best 100 of any one signal, at
    most 400 of 2,000 items) scores each grid point within 0.002 of ranking the whole
    catalogue, and the same point best, even with signals that share nothing (two of them
    pure noise: the hardest case for a union of per-signal tops)."""
    rng = np.random.default_rng(1)
    users, items = 300, 2000
    taste = rng.normal(size=(users, 8)) @ rng.normal(size=(8, items))
    noisy = taste + rng.normal(size=taste.shape)
    seen = sp.csr_matrix(rng.random((users, items)) < 0.01)
    goal = sp.csr_matrix((taste + 2 * rng.normal(size=taste.shape) > 9) & ~seen.toarray())
    z = np.float32
    signals = Signals(noisy.astype(z), (taste + 3 * rng.normal(size=taste.shape)).astype(z),
                      rng.random(users).astype(z), rng.normal(size=items).astype(z),
                      rng.normal(size=items).astype(z))
    ctx = penchant.Context()
    grid, whole, width = grid_ndcg(signals, seen, goal, 20, 1000, ctx)
    assert width == items  # 4 signals × 1000 is most of the catalogue: no restriction
    same_grid, near, width = grid_ndcg(signals, seen, goal, 20, 100, ctx)
    assert same_grid == grid and width <= 400
    assert np.array_equal(np.isnan(near), np.isnan(whole))  # users with nothing to find
    whole, near = np.nanmean(whole, axis=1), np.nanmean(near, axis=1)
    assert np.abs(near - whole).max() < 0.002
    assert np.argmax(near) == np.argmax(whole)


def test_candidates_leave_out_seen_items() -> None:
    signals = Signals(np.array([[3.0, 2.0, 1.0, 0.0, -1.0, -2.0] * 3], dtype=np.float32),
                      None, np.ones(1, dtype=np.float32), np.zeros(18, dtype=np.float32),
                      np.zeros(18, dtype=np.float32))
    seen = sp.csr_matrix(np.eye(1, 18, 0, dtype=bool))
    columns = signals.candidates(seen, 2)
    assert 0 not in columns and set(columns[0][columns[0] >= 0]) >= {6, 12}


CUT = NOW - pd.Timedelta(days=20)


def held_out(before: list[tuple[str, str, int]], after: list[tuple[str, str, int]]
             ) -> tuple[Features, penchant.Validation]:
    """The whole training period's features (``before`` the validation cut and ``after``
    it, each event given as (user, item, days from CUT)) and the validation the runner
    would hold out: features as of CUT, targets the items new to each user after it."""
    rows = [(u, i, 20 + d) for u, i, d in before] + [(u, i, 20 - d) for u, i, d in after]
    features = log(rows)
    frame = pd.DataFrame(before, columns=["user", "item", "days"])
    frame["time"] = [CUT - pd.Timedelta(days=d) for d in frame["days"]]
    early = Features.start(Dataset(Events.from_frame(frame)), CUT, features.users,
                           features.items)
    early.matrix = early.history.astype(np.float32)
    targets = sp.lil_matrix(features.shape, dtype=np.float32)
    for user, item, _ in after:
        r, c = features.users.get_loc(user), features.items.get_loc(item)
        if not early.history[r, c]:
            targets[r, c] = 1.0
    return features, penchant.Validation(early, targets.tocsr(), k=2)


def fitted(features: Features, validation: penchant.Validation, **params: object) -> Hybrid:
    model = Popularity({})
    model.fit(validation.features, None, penchant.Context())
    hybrid = Hybrid({"window": "30d", **params})
    hybrid.fit(model, features, validation, penchant.Context())
    return hybrid


def firsts(hybrid: Hybrid, features: Features) -> pd.Series:
    model = Popularity({})
    model.fit(features, None, penchant.Context())
    recs = hybrid.recommend(model, features, np.arange(features.shape[0]), 1,
                            penchant.Context())
    return recs.frame.set_index("user")["item"]


def test_weights_learnt_on_validation_favour_what_predicts_the_window() -> None:
    """All-time popularity points at "z"; the validation window is all "new", which only
    recently started selling: the blend must learn to lean on recent popularity."""
    before = ([(f"u{i}", "old", 300) for i in range(8)] + [(f"u{i}", "z", 250) for i in range(4)]
              + [(f"u{i}", "new", 5) for i in range(3)] + [("u5", "y", 100)])
    features, validation = held_out(before, [(u, "new", 10) for u in ("u3", "u4", "u5")])
    hybrid = fitted(features, validation)
    assert hybrid.weights["recent"] > 0 or hybrid.weights["trend"] > 0
    assert firsts(hybrid, features)["u6"] == "new"


def test_similar_items_learnt_when_the_window_follows_the_history() -> None:
    """Everyone who took "a" also took "b", until four users took only "a"; "pop" sells
    most, now and before. What those four take next is "b": only the similar-items signal
    sees it, so the blend must weigh it and rank "b" first for them."""
    before = ([(f"u{i}", it, 100) for i in range(8) for it in ("a", "b")]
              + [(f"v{i}", "a", 20) for i in range(4)] + [("x0", "a", 20)]
              + [(f"w{i}", "pop", 10) for i in range(16)])
    after = [(f"v{i}", "b", 10) for i in range(4)] + [(f"w{i}", "c", 10) for i in range(2)]
    features, validation = held_out(before, after)
    hybrid = fitted(features, validation, similar_l2=1.0)
    assert hybrid.weights["similar"] > 0
    assert hybrid.similar is not None
    assert fitted(features, validation, similar_l2=0.0).weights["similar"] == 0
    # At the cutoff, alone: popularity says "pop", similar items say "b".
    alone = {"model": {"model": 1.0}, "similar": {"similar": 1.0}}
    picks = {name: firsts(fitted(features, validation, similar_l2=1.0, weights=w),
                          features)["x0"] for name, w in alone.items()}
    assert picks == {"model": "pop", "similar": "b"}


def test_only_the_horizon_after_the_cut_is_tuned_for() -> None:
    before = [(f"u{i}", "a", 50) for i in range(3)]
    after = [("u0", "soon", 3), ("u1", "late", 15)]
    features, validation = held_out(before, after)
    targets = Hybrid({"horizon": "7d"}).horizon_targets(features, validation)
    rows, cols = targets.nonzero()
    touched = set(zip(features.users[rows], features.items[cols], strict=True))
    assert touched == {("u0", "soon")}


def test_resampled_weights_average_the_best_of_each_resample() -> None:
    grid = [{"model": 1.0, "similar": 0.0, "recent": 0.0, "trend": 0.0, "fresh": 0.0},
            {"model": 0.0, "similar": 0.0, "recent": 1.0, "trend": 0.0, "fresh": 0.0}]
    ndcg = np.array([[1.0] * 7 + [0.0] * 3, [0.0] * 7 + [1.0] * 3])
    rng = np.random.default_rng(0)
    assert Hybrid({"resamples": 0}).choose(grid, ndcg, rng) == grid[0]
    averaged = Hybrid({"resamples": 40}).choose(grid, ndcg, rng)
    assert sum(averaged.values()) == pytest.approx(1.0)
    assert 0.5 < averaged["model"] < 1.0  # mostly the better point, not only it
    assert averaged["recent"] == pytest.approx(1.0 - averaged["model"])


def test_a_stored_run_recommends_with_the_learnt_blend(shop, tmp_path, store) -> None:
    registry = Registry()
    path = write_pipeline(shop, tmp_path)
    path.write_text(path.read_text().replace('[recommender]\nplugin = "top-k"',
                                             '[recommender]\nplugin = "hybrid"'))
    result = Runner(load_pipeline(path, registry), registry, store, tmp_path / "out").run()
    assert "weights" in result.summary["stages"]["fit recommender"]
    trained = TrainedRun(result.run.id, store, registry)
    assert trained.recommender.weights == result.summary["stages"]["fit recommender"]["weights"]
    user = result.recommendations.frame["user"].iloc[0]
    again = trained.recommend(user, k=10)
    assert again["item"].tolist() == result.recommendations.for_user(user)["item"].tolist()
