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
from penchant_plugins.recommenders.hybrid import Hybrid

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
    hybrid = Hybrid({})
    scores = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    recent = np.array([1.0, 0.0, -1.0], dtype=np.float32)
    trend = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    w = {"model": 1.0, "recent": 2.0, "trend": 0.5, "fresh": 1.0}
    z = (scores - scores.mean()) / scores.std()
    expected = z + 2 * recent + 0.5 * trend + 0.25 * z
    got = hybrid.blend(scores, np.array([0.25], dtype=np.float32), recent, trend, w)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_weights_learnt_on_validation_favour_what_predicts_the_window() -> None:
    """All-time popularity points at "old"; the validation window is all "new": the blend
    must learn to lean on recent popularity."""
    features = log(HISTORY + [(f"u{i}", "z", 250) for i in range(4)])
    targets = sp.csr_matrix(np.zeros(features.shape, dtype=np.float32))
    targets = targets.tolil()
    new = list(features.items).index("new")
    for r, user in enumerate(features.users):
        if user in ("u3", "u4", "u5"):
            targets[r, new] = 1.0
    validation = penchant.Validation(features, targets.tocsr(), k=2)
    model = Popularity({})
    model.fit(features, None, penchant.Context())
    hybrid = Hybrid({"window": "30d"})
    hybrid.fit(model, features, validation, penchant.Context())
    assert hybrid.weights["recent"] > 0 or hybrid.weights["trend"] > 0
    recs = hybrid.recommend(model, features, np.arange(features.shape[0]), 1,
                            penchant.Context())
    firsts = recs.frame.set_index("user")["item"]
    assert firsts["u4"] == "new"


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
