"""User, behaviour and item features, and the conditional VAE that reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import penchant
from modelkit import NOW, block_frame, own_item_recall, registry_with
from penchant.artifacts import load_model, save_model
from penchant.data import Dataset, Events, Features
from penchant_plugins.features import BehaviourFeatures, ItemFeatures, UserFeatures
from penchant_plugins.models.cvae import ConditionalVAE

USERS = pd.DataFrame({"age": [20.0, 40.0, np.nan], "region": ["north", "south", "north"]},
                     index=pd.Index(["a", "b", "c"], dtype="string", name="user"))
ITEMS = pd.DataFrame({"category": ["toys", "garden"], "price": [1.0, 1000.0]},
                     index=pd.Index(["x", "y"], dtype="string", name="item"))


def tiny_features(frame: pd.DataFrame, users=USERS, items=ITEMS) -> Features:
    return Features.start(Dataset(Events.from_frame(frame), items=items, users=users), NOW)


LOG = pd.DataFrame({
    "user": ["a", "a", "a", "b", "d"],
    "item": ["x", "y", "x", "y", "x"],
    "time": ["2024-05-01", "2024-05-01", "2024-05-25", "2024-04-01", "2024-05-30"],
    "event": ["view", "purchase", "view", "view", "view"],
    "value": [30.0, None, 10.0, 5.0, None],
})


def test_user_features_zscore_numbers_onehot_text_and_zero_unknown_users() -> None:
    feats = UserFeatures({}).extract(tiny_features(LOG), penchant.Context())
    block, names = feats.user_side["user"], feats.extra["user_feature_names"]
    assert names == ["age", "region=north", "region=south"]
    order = list(feats.users)  # a, b, d
    ages = block[:, 0]
    assert ages[order.index("a")] == pytest.approx((20 - 30) / np.std([20, 40], ddof=1))
    assert block[order.index("b")].tolist()[1:] == [0.0, 1.0]
    assert not block[order.index("d")].any(), "a user missing from the table gets zeros"


def test_item_features_log_skewed_prices() -> None:
    feats = ItemFeatures({"columns": ["price", "category"]}).extract(tiny_features(LOG),
                                                                     penchant.Context())
    block = feats.item_side["item"]
    logs = np.log1p([1.0, 1000.0])
    z = (logs - logs.mean()) / np.std(logs, ddof=1)
    price = dict(zip(feats.items, block[:, 0], strict=True))
    assert price["x"] == pytest.approx(z[0], rel=1e-5)
    assert feats.extra["item_feature_names"] == ["price", "category=toys", "category=garden"]


def test_behaviour_features_by_hand() -> None:
    feats = BehaviourFeatures({}).extract(tiny_features(LOG), penchant.Context())
    row = dict(zip(feats.users, feats.user_side["behaviour"] * 5, strict=True))["a"]
    tenure = (NOW - pd.Timestamp("2024-05-01", tz="UTC")).days  # 31 days
    expected = [2 / (tenure / 7), 1 / (tenure / 7), 20.0, 7.0, tenure, 3]
    assert row == pytest.approx(np.log1p(expected), rel=1e-5)


def test_missing_side_table_or_column_is_explained() -> None:
    with pytest.raises(penchant.DataError, match="no side table"):
        UserFeatures({}).extract(tiny_features(LOG, users=None), penchant.Context())
    with pytest.raises(penchant.DataError, match=r"colour.*it has: category, price"):
        ItemFeatures({"columns": ["colour"]}).extract(tiny_features(LOG), penchant.Context())


def cvae_features() -> Features:
    frame = block_frame(users=60, items=40)
    users = pd.DataFrame({"group": [f"g{int(u[1:]) % 4}" for u in frame["user"].unique()]},
                         index=pd.Index(frame["user"].unique(), dtype="string"))
    items = pd.DataFrame({"block": [f"b{int(i[1:]) // 10}" for i in frame["item"].unique()]},
                         index=pd.Index(frame["item"].unique(), dtype="string"))
    feats = Features.start(Dataset(Events.from_frame(frame), items=items, users=users), NOW)
    feats.matrix = feats.history.astype(np.float32)
    ctx = penchant.Context()
    feats = UserFeatures({}).extract(feats, ctx)
    return ItemFeatures({}).extract(feats, ctx)


def test_cvae_overfits_and_round_trips(tmp_path) -> None:
    feats = cvae_features()
    model = ConditionalVAE({"epochs": 120, "batch_size": 16, "hidden": 64, "latent": 16,
                            "embedding": 16, "dropout": 0.0, "beta_cap": 0.0, "lr": 0.01})
    model.fit(feats, None, penchant.Context(seed=0))
    rows = np.arange(feats.shape[0])
    scores = model.score(feats, rows)
    assert own_item_recall(scores, feats.history) >= 0.9
    save_model(model, feats.items, tmp_path / "m.pt")
    loaded, items = load_model(tmp_path / "m.pt", registry_with(ConditionalVAE))
    assert list(items) == list(feats.items)
    np.testing.assert_allclose(loaded.score(feats, rows), scores, rtol=1e-5, atol=1e-5)


def test_cvae_trains_with_user_features_only() -> None:
    feats = cvae_features()
    feats.item_side = {}
    model = ConditionalVAE({"epochs": 2, "batch_size": 16, "hidden": 8, "latent": 4,
                            "embedding": 4})
    model.fit(feats, None, penchant.Context(seed=0))
    assert model.score(feats, np.arange(3)).shape == (3, feats.shape[1])


def test_cvae_uses_side_features_for_a_user_with_no_history() -> None:
    """A brand-new user's group alone should point at their group's items."""
    feats = cvae_features()
    model = ConditionalVAE({"epochs": 120, "batch_size": 16, "hidden": 64, "latent": 16,
                            "embedding": 16, "dropout": 0.5, "beta_cap": 0.0, "lr": 0.01})
    model.fit(feats, None, penchant.Context(seed=0))
    empty = feats.matrix.copy()
    empty.data[:] = 0
    blank = Features(users=feats.users, items=feats.items, now=NOW, dataset=feats.dataset,
                     matrix=empty, history=feats.history, user_side=feats.user_side)
    scores = model.score(blank, np.arange(feats.shape[0]))
    top_block = [int(feats.items[np.argmax(s)][1:]) // 10 for s in scores]
    user_group = [int(u[1:]) % 4 for u in feats.users]
    assert np.mean(np.array(top_block) == np.array(user_group)) >= 0.8
