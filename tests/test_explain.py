"""Explanations: which history items and categories are behind each recommendation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import penchant
from conftest import write_pipeline
from modelkit import block_features, features_from
from penchant import Context
from penchant.cli import main
from penchant.explain import SIMILARITY, explain_recommendations, render
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.ranking import top_k
from penchant.runner import Runner
from penchant.store import RunStore
from penchant.trained import TrainedRun
from penchant_plugins.models.cdae import CDAE
from penchant_plugins.models.cfgan import CFGAN
from penchant_plugins.models.cvae import ConditionalVAE
from penchant_plugins.models.dae import MultDAE
from penchant_plugins.models.ease import EASE
from penchant_plugins.models.itemknn import ItemKNN
from penchant_plugins.models.popularity import Popularity
from penchant_plugins.models.vae import MultVAE

#: Items a, b, c, d. u0 has a (weight 3) and b (weight 1); c goes with a, d with b.
TOY = {"u0": {"a": 3.0, "b": 1.0}, "u1": {"a": 1.0, "c": 1.0}, "u2": {"a": 1.0, "c": 1.0},
       "u3": {"a": 1.0, "c": 2.0}, "u4": {"b": 1.0, "d": 1.0}, "u5": {"b": 2.0, "d": 1.0},
       "u6": {"c": 1.0, "d": 1.0}}
TOY_CATEGORIES = np.array(["shoes", "hats", "shoes", ""])  # a, b, c, d (d has none)


def toy_features() -> penchant.Features:
    frame = pd.DataFrame([(u, i, "2024-01-01") for u, taken in TOY.items() for i in taken],
                         columns=["user", "item", "time"])
    features = features_from(frame)
    assert list(features.items) == ["a", "b", "c", "d"]
    dense = np.array([[TOY[u].get(i, 0.0) for i in features.items] for u in features.users])
    features.matrix = sp.csr_matrix(dense.astype(np.float32))
    return features


def explained(model: penchant.Model, features: penchant.Features, row: int, k: int = 2,
              top: int = 5, categories: np.ndarray | None = None) -> list:
    recs = top_k(model.score, features, np.array([row]), k, Context()).frame
    return explain_recommendations(model, features, row, recs, features.matrix, categories,
                                   top)


@pytest.mark.parametrize("model", [EASE({"l2": 1.0}), ItemKNN({"shrink": 0.0})],
                         ids=["ease", "itemknn"])
def test_linear_models_decompose_each_score_exactly(model) -> None:
    features = toy_features()
    model.fit(features, None, Context())
    row = features.users.get_loc("u0")
    scores = model.score(features, np.array([row]))[0]
    by_item = {e.item: e for e in explained(model, features, row, top=1,
                                            categories=TOY_CATEGORIES)}
    assert set(by_item) == {"c", "d"}, "a and b are seen"
    for item, e in by_item.items():
        assert e.method == "exact"
        total = sum(w for _, w in e.contributions) + e.rest
        assert total == pytest.approx(float(scores[features.items.get_loc(item)]), rel=1e-5)
    # c is taken with a, d with b: each one's top reason is its own partner
    assert by_item["c"].contributions[0][0] == "a"
    assert by_item["d"].contributions[0][0] == "b"
    for e in by_item.values():
        assert sum(share for _, share in e.categories) == pytest.approx(1.0)
    assert by_item["c"].categories[0][0] == "shoes"


def test_exact_contributions_are_weight_times_similarity_by_hand() -> None:
    features = toy_features()
    model = ItemKNN({"shrink": 0.0})
    model.fit(features, None, Context())
    x = features.matrix.toarray()
    norms = np.linalg.norm(x, axis=0)
    cos_ac = x[:, 0] @ x[:, 2] / (norms[0] * norms[2])
    e = next(e for e in explained(model, features, 0) if e.item == "c")
    assert dict(e.contributions)["a"] == pytest.approx(3.0 * cos_ac, rel=1e-5)


@pytest.fixture(scope="module")
def blocks() -> penchant.Features:
    # four blocks of ten items; a quarter of each user's items come from anywhere
    return block_features(users=80, items=40, blocks=4, per_user=8, noise=0.25, seed=0)


def fitted(cls: type, blocks: penchant.Features, **params) -> penchant.Model:
    model = cls({"epochs": 25, "batch_size": 40, "device": "cpu", **params})
    model.fit(blocks, None, Context())
    return model


@pytest.mark.parametrize(("cls", "params"), [
    (MultVAE, {"hidden": 16, "latent": 8, "dropout": 0.2}),
    (ConditionalVAE, {"hidden": 16, "latent": 8, "embedding": 8}),
    (MultDAE, {"hidden": 0, "latent": 8}),
    (CDAE, {"hidden": 8}),
], ids=["vae", "cvae", "dae", "cdae"])
def test_autoencoders_give_finite_gradient_contributions_over_the_history_only(
        cls, params, blocks) -> None:
    if cls.uses_user_side:  # cvae reads side blocks: give it some
        rng = np.random.default_rng(0)
        blocks = replace(blocks, user_side={"user": rng.random((blocks.shape[0], 3))},
                         item_side={"item": rng.random((blocks.shape[1], 2))})
    model = fitted(cls, blocks, epochs=2, **params)
    items = np.array([0, 5, 17, 39])
    for row in (0, 7):
        given = sp.csr_matrix(model.explain(blocks, row, items))
        assert given.shape == (len(items), blocks.shape[1])
        assert np.isfinite(given.data).all() and given.nnz > 0
        assert set(given.indices) <= set(blocks.matrix[row].indices)
    assert explained(model, blocks, 3)[0].method == "gradient × input"


def test_masking_the_top_contributor_costs_the_vae_more_than_the_weakest(blocks) -> None:
    model = fitted(MultVAE, blocks, hidden=32, latent=8, dropout=0.2)

    def score(row: int, item: int, without: str | None = None) -> float:
        matrix = blocks.matrix.tolil(copy=True)
        if without is not None:
            matrix[row, blocks.items.get_loc(without)] = 0.0
        masked = replace(blocks, matrix=matrix.tocsr())
        return float(model.score(masked, np.array([row]))[0, item])

    checked = 0
    for row in (0, 1, 2, 3):
        for e in explained(model, blocks, row, k=3, top=100):
            item = blocks.items.get_loc(e.item)
            strongest, weakest = e.contributions[0][0], e.contributions[-1][0]
            full = score(row, item)
            assert full - score(row, item, strongest) > full - score(row, item, weakest)
            checked += 1
    assert checked == 12


def test_a_model_without_explain_is_explained_by_item_similarity() -> None:
    class Unexplained(penchant.Model):
        name = "unexplained"
        description = "Scores by co-occurrence but keeps its reasons to itself."

        def fit(self, features, validation, ctx) -> None:
            x = features.matrix.toarray()
            self.weights = (x.T @ x).astype(np.float32)

        def score(self, features, rows):
            return np.asarray(features.matrix[rows] @ self.weights, dtype=np.float32)

    features = toy_features()
    model = Unexplained({})
    model.fit(features, None, Context())
    by_item = {e.item: e for e in explained(model, features, 0, categories=TOY_CATEGORIES)}
    assert {e.method for e in by_item.values()} == {SIMILARITY}
    assert by_item["c"].contributions[0][0] == "a"
    assert by_item["d"].contributions[0][0] == "b"
    assert {i for e in by_item.values() for i, _ in e.contributions} <= {"a", "b"}
    assert sum(s for _, s in by_item["d"].categories) == pytest.approx(1.0)


def test_a_torch_model_whose_scores_do_not_flow_from_the_row_falls_back(blocks) -> None:
    model = fitted(CFGAN, blocks, epochs=1, g_hidden=8, d_hidden=8)  # reads x > 0 only
    assert model.explain(blocks, 0, np.array([1, 2])) is None
    assert {e.method for e in explained(model, blocks, 0)} == {SIMILARITY}


def test_popularity_says_it_is_popular_rather_than_inventing_reasons() -> None:
    features = toy_features()
    model = Popularity({})
    model.fit(features, None, Context())
    for e in explained(model, features, 0, categories=TOY_CATEGORIES):
        assert "popularity" in e.method and "not from their history" in e.method
        assert e.contributions == () and e.categories == () and e.rest == 0.0
    assert "no item of this user's history" in render(explained(model, features, 0))


def test_a_plugin_explanation_of_the_wrong_shape_is_named() -> None:
    features = toy_features()
    model = Popularity({})
    model.fit(features, None, Context())
    model.explain = lambda features, row, items: np.zeros((1, 2))
    with pytest.raises(penchant.PluginError, match="'popularity' explained with a matrix"):
        explained(model, features, 0)


# -- a stored run: TrainedRun and the CLI ------------------------------------------------


@pytest.fixture(scope="module")
def run(shop, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain-run")
    url = f"sqlite:///{folder / 'runs.sqlite'}"
    registry = Registry()
    pipeline = load_pipeline(write_pipeline(shop, folder, epochs=2), registry)
    result = Runner(pipeline, registry, RunStore(url), folder / "out").run()
    return result, url, TrainedRun(result.run.id, RunStore(url), registry)


def test_a_trained_run_explains_its_lists_with_categories(run) -> None:
    result, _, trained = run
    user = result.recommendations.frame["user"].iloc[0]
    explanations = trained.explain(user, k=4, top=3)
    listed = trained.recommend(user, k=4)
    assert [e.item for e in explanations] == listed["item"].tolist()
    history = {str(trained.features.items[i]) for i in trained.features.matrix[
        trained.features.users.get_loc(user)].indices}
    for e in explanations:
        assert len(e.contributions) == 3 and {i for i, _ in e.contributions} <= history
        assert e.categories and sum(s for _, s in e.categories) == pytest.approx(1.0)
    folded = trained.explain_history(pd.DataFrame({"item": sorted(history)}), k=2, top=2)
    assert len(folded) == 2
    assert all({i for i, _ in e.contributions} <= history for e in folded)


def test_recommend_explain_prints_reasons_and_json(run, capsys) -> None:
    result, url, _ = run
    user = result.recommendations.frame["user"].iloc[0]
    argv = ["--store", url, "recommend", str(result.run.id), "--user", user, "-k", "3"]
    assert main([*argv, "--explain", "--top", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(gradient × input)") == 3
    assert printed.count("from: ") == 3 and printed.count("categories: ") == 3
    assert main([*argv, "--explain", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in records] == [1, 2, 3] and {r["user"] for r in records} == {user}
    for r in records:
        assert r["method"] == "gradient × input" and 0 < len(r["contributions"]) <= 5
        assert sum(c["share"] for c in r["categories"]) == pytest.approx(1.0)
