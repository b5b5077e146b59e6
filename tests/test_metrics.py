"""Every ranking metric against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from penchant.metrics import ListHits, ndcg_from_scores

D2, D3, D4 = 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5)  # discounts of ranks 2..4

RECS = {"a": ["i1", "i2", "i3", "i4"], "b": ["x", "y", "z", "w"], "c": []}
RELEVANT = {"a": ["i2", "i4", "gone"], "b": ["x"], "c": ["q"]}


@pytest.fixture(scope="module")
def result() -> dict[str, float]:
    return ListHits.of(RECS, RELEVANT, depth=4).metrics([2, 4], catalogue_size=10)


def test_ndcg_uses_min_of_k_and_relevant_for_the_ideal(result: dict[str, float]) -> None:
    # user a @2: hit at rank 2 → D2 / (1 + D2); user b: hit at rank 1 → 1; user c: 0
    assert result["ndcg@2"] == pytest.approx((D2 / (1 + D2) + 1 + 0) / 3)
    # user a @4: hits at ranks 2 and 4, three relevant → ideal 1 + D2 + D3
    assert result["ndcg@4"] == pytest.approx(((D2 + D4) / (1 + D2 + D3) + 1 + 0) / 3)


def test_recall_divides_by_min_of_k_and_relevant(result: dict[str, float]) -> None:
    assert result["recall@2"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert result["recall@4"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_precision_hr_mrr(result: dict[str, float]) -> None:
    assert result["precision@2"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert result["precision@4"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert result["hr@2"] == pytest.approx(2 / 3)
    assert result["mrr@2"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert result["mrr@4"] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_coverage_counts_distinct_items_shown(result: dict[str, float]) -> None:
    assert result["coverage@2"] == pytest.approx(4 / 10)  # i1 i2 x y
    assert result["coverage@4"] == pytest.approx(8 / 10)
    assert result["users"] == 3


def test_perfect_list_scores_one_even_with_fewer_relevant_than_k() -> None:
    r = ListHits.of({"u": ["a", "b", "c"]}, {"u": ["a"]}, depth=3).metrics([3], 3)
    assert r["ndcg@3"] == pytest.approx(1.0)
    assert r["recall@3"] == pytest.approx(1.0)
    assert r["precision@3"] == pytest.approx(1 / 3)


def test_per_user_ndcg_and_a_segment_come_from_the_same_hits() -> None:
    hits = ListHits.of(RECS, RELEVANT, depth=4)
    assert hits.users == ["a", "b", "c"]
    np.testing.assert_allclose(hits.ndcg(2), [D2 / (1 + D2), 1, 0])
    segment = hits.subset({"a", "c", "not evaluated"})
    assert segment.users == ["a", "c"] and segment.lists == [RECS["a"], []]
    np.testing.assert_allclose(segment.ndcg(2), [D2 / (1 + D2), 0])
    assert segment.metrics([2], 10) == pytest.approx(
        ListHits.of(RECS, {u: RELEVANT[u] for u in ("a", "c")}, 4).metrics([2], 10))


def test_ndcg_from_scores_matches_list_version() -> None:
    scores = np.array([[0.9, 0.1, 0.8, 0.2], [0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.3, 0.2]])
    targets = sp.csr_matrix(np.array([[0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]))
    got = ndcg_from_scores(scores, targets, k=2)
    # row 0 ranks items 0, 2: hit at rank 2 of two relevant → D2 / (1 + D2)
    assert got[0] == pytest.approx(D2 / (1 + D2))
    assert got[1] == 0.0  # ranks 3, 2; relevant item 0 missed
    assert math.isnan(got[2])  # nothing to find
