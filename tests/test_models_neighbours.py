"""Item-neighbourhood models: itemknn (sparse cosine kNN) and ease (closed form)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from modelkit import block_features, features_from, own_item_recall, registry_with
from penchant import Context, PipelineError
from penchant.artifacts import load_model, save_model
from penchant_plugins.models import ease as ease_module
from penchant_plugins.models import itemknn as itemknn_module
from penchant_plugins.models.ease import EASE
from penchant_plugins.models.itemknn import ItemKNN


def toy_features(matrix: np.ndarray):
    """Features whose matrix is exactly ``matrix`` (users u0…, items i0…)."""
    users, items = matrix.shape
    frame = pd.DataFrame({"user": [f"u{u}" for u in range(users)] + ["u0"] * items,
                          "item": ["i0"] * users + [f"i{i}" for i in range(items)],
                          "time": "2024-01-01"})
    features = features_from(frame)
    assert list(features.items) == [f"i{i}" for i in range(items)]
    assert list(features.users) == [f"u{u}" for u in range(users)]
    features.matrix = sp.csr_matrix(matrix.astype(np.float32))
    return features


@pytest.fixture(scope="module")
def blocks():
    # 10 blocks of 4 items; every user has the whole of one block.
    return block_features(users=60, items=40, blocks=10, per_user=4, seed=3)


@pytest.mark.parametrize("model", [ItemKNN({"neighbours": 10}), EASE({"l2": 1.0})],
                         ids=["itemknn", "ease"])
def test_each_model_recovers_its_training_items(model, blocks) -> None:
    model.fit(blocks, None, Context())
    rows = np.arange(blocks.shape[0])
    scores = model.score(blocks, rows)
    assert scores.shape == blocks.shape and scores.dtype == np.float32
    assert own_item_recall(scores, blocks.history) >= 0.9


def test_itemknn_similarity_is_cosine_with_shrink_by_hand() -> None:
    x = np.array([[2, 1, 0], [1, 0, 3], [0, 1, 1]], dtype=np.float32)
    features = toy_features(x)
    model = ItemKNN({"neighbours": 2, "shrink": 1.0})
    model.fit(features, None, Context())
    # column norms √5, √2, √10; dot products 0·1 = 2, 0·2 = 3, 1·2 = 1
    s01 = 2 / (np.sqrt(5) * np.sqrt(2) + 1)
    s02 = 3 / (np.sqrt(5) * np.sqrt(10) + 1)
    s12 = 1 / (np.sqrt(2) * np.sqrt(10) + 1)
    expected = np.array([[0, s01, s02], [s01, 0, s12], [s02, s12, 0]])
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-6)
    np.testing.assert_allclose(model.score(features, np.array([0, 2])),
                               x[[0, 2]] @ expected, rtol=1e-6)

    # one neighbour each: 0 → 1 (0.48 > 0.37), 1 → 0 (0.48 > 0.18), 2 → 0 (0.37 > 0.18);
    # S[i, j] holds sim(i, j) where i is one of j's neighbours
    model = ItemKNN({"neighbours": 1, "shrink": 1.0})
    model.fit(features, None, Context())
    expected = np.array([[0, s01, s02], [s01, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-6)


def test_itemknn_keeps_k_neighbours_whatever_the_blocks_and_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # binary data: many tied similarities, so tie-breaking must not depend on the blocking
    noisy = block_features(users=80, items=30, blocks=3, per_user=6, noise=0.5, seed=1)

    def fit(block_rows: int, dense_share: float) -> sp.csr_matrix:
        monkeypatch.setattr(itemknn_module, "BLOCK_ENTRIES", block_rows * 30)
        monkeypatch.setattr(itemknn_module, "DENSE_SHARE", dense_share)
        model = ItemKNN({"neighbours": 5, "shrink": 2.0})
        model.fit(noisy, None, Context())
        return model.similarity

    reference = fit(30, 2.0)  # one block, sparse selection
    assert np.diff(reference.tocsc().indptr).max() == 5
    assert reference.diagonal().max() == 0
    for block_rows, dense_share in ((7, 2.0), (30, -1.0), (4, -1.0)):
        other = fit(block_rows, dense_share)
        assert (other != reference).nnz == 0, (block_rows, dense_share)


def test_ease_weights_match_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((12, 5)) < 0.5).astype(np.float32)
    x[0] = 1  # every item seen at least once
    model = EASE({"l2": 2.0})
    model.fit(toy_features(x), None, Context())
    p = np.linalg.inv(x.T.astype(np.float64) @ x + 2.0 * np.eye(5))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    assert model.weights.dtype == np.float32
    assert np.all(np.diag(model.weights) == 0)
    np.testing.assert_allclose(model.weights, b, rtol=1e-5, atol=1e-7)


def test_ease_without_l2_on_a_singular_gram_says_to_raise_l2() -> None:
    x = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32)  # item 2: nobody
    with pytest.raises(PipelineError, match="raise l2"):
        EASE({"l2": 0.0}).fit(toy_features(x), None, Context())
    model = EASE({"l2": 1.0})
    model.fit(toy_features(x), None, Context())
    assert np.all(model.weights[:, 2] == 0) and np.all(model.weights[2] == 0)


def test_ease_refuses_more_items_than_max_items(blocks) -> None:
    with pytest.raises(PipelineError) as err:
        EASE({"max_items": 30}).fit(blocks, None, Context())
    message = str(err.value)
    assert "40 items" in message and "max_items = 30" in message
    assert "itemknn" in message and "k-core" in message and "item_min" in message


def test_ease_refuses_when_memory_is_short(blocks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ease_module, "available_memory", lambda: 4096)
    with pytest.raises(PipelineError) as err:
        EASE().fit(blocks, None, Context())
    message = str(err.value)
    assert "40 items" in message and "available" in message and "GiB" in message
    assert "itemknn" in message and "k-core" in message
    fits = int((4096 / ease_module.BYTES_PER_ITEM_PAIR) ** 0.5)
    assert f"below {fits} items" in message
    # unknown memory: no check, the fit goes ahead
    monkeypatch.setattr(ease_module, "available_memory", lambda: None)
    EASE().fit(blocks, None, Context())


def test_available_memory_reads_something_plausible() -> None:
    have = ease_module.available_memory()
    assert have is None or have > 0


def test_ease_on_the_most_touched_items_is_ease_on_those_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = (rng.random((40, 9)) < np.linspace(0.9, 0.1, 9)).astype(np.float32)
    x[0] = 1
    x[:, 2] = 0.0
    x[:30, 2] = 1.0  # item 2 is the third most touched
    features = toy_features(x)
    model = EASE({"l2": 2.0, "top_items": 4})
    model.fit(features, None, Context())
    top = np.sort(np.argsort(-(x > 0).sum(axis=0), kind="stable")[:4])
    assert 2 in top
    np.testing.assert_array_equal(model.columns, top)
    alone = EASE({"l2": 2.0})
    alone.fit(toy_features(x[:, top]), None, Context())
    rows = np.arange(40)
    scores = model.score(features, rows)
    np.testing.assert_allclose(scores[:, top], alone.score(toy_features(x[:, top]), rows),
                               rtol=1e-6)
    rest = np.setdiff1d(np.arange(9), top)
    assert scores.shape == (40, 9) and not scores[:, rest].any()  # no evidence: 0
    # explanations add up to the score, also for items outside the fitted columns
    parts = model.explain(features, 5, np.arange(9))
    np.testing.assert_allclose(np.asarray(parts.sum(axis=1)).ravel(), scores[5], atol=1e-6)
    path = save_model(model, features.items, tmp_path / "model.pt")
    loaded, _ = load_model(path, registry_with(EASE))
    np.testing.assert_array_equal(loaded.score(features, rows), scores)


@pytest.mark.parametrize("model", [ItemKNN({"neighbours": 3, "shrink": 0.5}),
                                   EASE({"l2": 10.0})], ids=["itemknn", "ease"])
def test_checkpoint_round_trip_gives_identical_scores(model, blocks, tmp_path: Path) -> None:
    model.fit(blocks, None, Context())
    path = save_model(model, blocks.items, tmp_path / "model.pt")
    loaded, items = load_model(path, registry_with(ItemKNN, EASE))
    assert type(loaded) is type(model) and dict(loaded.params) == dict(model.params)
    assert list(items) == list(blocks.items)
    rows = np.arange(blocks.shape[0])
    np.testing.assert_array_equal(loaded.score(blocks, rows), model.score(blocks, rows))


@pytest.mark.parametrize(("cls", "params", "key"), [
    (EASE, {"l2": -1.0}, "l2"),
    (EASE, {"max_items": 0}, "max_items"),
    (ItemKNN, {"neighbours": 0}, "neighbours"),
    (ItemKNN, {"shrink": -0.1}, "shrink"),
])
def test_bad_params_name_the_key(cls, params, key) -> None:
    with pytest.raises(PipelineError, match=f"'{key}'"):
        cls(params)


def test_fit_logs_through_the_context(blocks) -> None:
    for model in (ItemKNN(), EASE()):
        lines: list[str] = []
        model.fit(blocks, None, Context(log=lines.append))
        assert lines and all(line.startswith(model.name) for line in lines)
