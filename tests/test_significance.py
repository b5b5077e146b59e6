"""Paired bootstrap intervals: right where the answer is known, calibrated where it is
random, and honest when the baseline scores nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from penchant.report import paired_runs_table, ratio_cell
from penchant.significance import paired_ratio, paired_runs


def test_a_constant_ratio_has_no_width_however_the_users_vary() -> None:
    # Users differ wildly in how easy they are; both lists share that, so it cancels.
    difficulty = np.random.default_rng(0).exponential(size=50)
    out = paired_ratio(1.25 * difficulty, difficulty, 0.95, 500, seed=0)
    assert out["ratio"] == pytest.approx(1.25)
    assert out["low"] == pytest.approx(1.25) and out["high"] == pytest.approx(1.25)
    assert out["difference"] == pytest.approx(0.25 * difficulty.mean())
    assert out["users"] == 50


def test_intervals_cover_the_true_ratio_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    trials = 200
    for trial in range(trials):
        # Sparse hits as NDCG has them: most users score 0; the model's rate is 1.5×.
        model = (rng.random(300) < 0.15) * rng.random(300)
        baseline = (rng.random(300) < 0.10) * rng.random(300)
        out = paired_ratio(model, baseline, 0.9, 400, seed=trial)
        covered += out["low"] <= 1.5 <= out["high"]
    assert 0.82 <= covered / trials <= 0.97


def test_a_wider_level_gives_a_wider_interval_and_a_seed_repeats_it() -> None:
    rng = np.random.default_rng(2)
    model, baseline = rng.random(80), rng.random(80)
    narrow = paired_ratio(model, baseline, 0.5, 1000, seed=3)
    wide = paired_ratio(model, baseline, 0.99, 1000, seed=3)
    assert wide["low"] < narrow["low"] < narrow["ratio"] < narrow["high"] < wide["high"]
    assert paired_ratio(model, baseline, 0.5, 1000, seed=3) == narrow
    assert paired_ratio(model, baseline, 0.5, 1000, seed=4) != narrow


def test_a_baseline_that_scores_nothing_leaves_the_interval_open_above() -> None:
    nothing = paired_ratio(np.array([1.0, 0.5, 0.0]), np.zeros(3), 0.95, 300, seed=0)
    assert nothing["ratio"] == np.inf and nothing["high"] == np.inf
    rare = paired_ratio(np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0, 0.0]),
                        0.95, 300, seed=0)
    assert rare["ratio"] == 1.0 and rare["low"] == 0.0 and rare["high"] == np.inf
    empty = paired_ratio(np.array([]), np.array([]), 0.95, 300, seed=0)
    assert np.isnan(empty["ratio"]) and np.isnan(empty["low"]) and empty["users"] == 0


def test_unpaired_or_misleveled_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one value per user"):
        paired_ratio(np.ones(3), np.ones(4), 0.95, 100, seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        paired_ratio(np.ones(3), np.ones(3), 1.0, 100, seed=0)


@pytest.mark.parametrize("values, text", [
    ({"ratio": 1.184, "low": 1.05, "high": 1.321}, "1.18× (1.05–1.32)"),
    ({"ratio": 1.0, "low": 0.0, "high": None}, "1.00× (0.00–∞)"),
    ({"ratio": None, "low": None, "high": None, "difference": 0.2}, "∞"),
    ({"ratio": None, "low": None, "high": None, "difference": 0.0}, "-"),
    ({"ratio": 0.5, "low": None, "high": None}, "0.50×"),
    ({}, "-"),
])
def test_ratio_cells_read_as_a_ratio_and_its_interval(values, text) -> None:
    assert ratio_cell(values) == text


def per_user(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "horizon", "ndcg@10", "ndcg@20"])


def test_two_runs_pair_over_the_users_both_evaluated() -> None:
    first = per_user([("a", "7d", 0.1, 0.2), ("b", "7d", 0.3, 0.4), ("c", "7d", 0.5, 0.6),
                      ("a", "30d", 0.1, 0.1), ("b", "30d", 0.2, 0.2)])
    second = per_user([("b", "7d", 0.0, 0.8), ("c", "7d", 0.0, 1.2), ("d", "7d", 1.0, 1.0),
                       ("a", "30d", 0.2, 0.2), ("b", "30d", 0.4, 0.4)])
    paired = paired_runs(first, second, resamples=200)
    assert paired["metric"] == "ndcg@20" and list(paired["ratios"]) == ["7d", "30d"]
    week = paired["ratios"]["7d"]  # b and c only: (0.8 + 1.2) / (0.4 + 0.6)
    assert week["ratio"] == pytest.approx(2.0) and week["users"] == 2
    assert (week["first_users"], week["second_users"]) == (3, 3)
    assert week["low"] == pytest.approx(2.0) and week["high"] == pytest.approx(2.0)
    table = paired_runs_table(paired, "run 1", "run 2")
    assert "ndcg@20 of run 2 ÷ run 1, with its 95 % interval" in table
    assert "2 (of 3 and 3)" in table and "2.00× (2.00–2.00)" in table
    assert "30d      2      " in table  # the same users: no note
    # A horizon only the second run has is skipped; no shared metric, no comparison.
    assert list(paired_runs(first[first["horizon"] == "30d"], second)["ratios"]) == ["30d"]
    assert paired_runs(first.drop(columns=["ndcg@10", "ndcg@20"]), second) is None


def test_grouped_values_are_resampled_together() -> None:
    """A user evaluated from three cutoffs is one unit, not three: the interval of the
    triplicated values grouped by user is that of the originals, while treating the copies
    as independent users would narrow it by about √3."""
    rng = np.random.default_rng(3)
    model, baseline = rng.gamma(2.0, 0.05, 60), rng.gamma(2.0, 0.04, 60)
    once = paired_ratio(model, baseline, 0.95, 2000, seed=1)
    thrice = np.repeat(model, 3), np.repeat(baseline, 3)
    users = np.repeat(np.arange(60), 3)
    grouped = paired_ratio(*thrice, 0.95, 2000, seed=1, groups=users)
    assert grouped["low"] == pytest.approx(once["low"])
    assert grouped["high"] == pytest.approx(once["high"])
    assert grouped["users"] == 60 and grouped["evaluations"] == 180
    assert "evaluations" not in once
    loose = paired_ratio(*thrice, 0.95, 2000, seed=1)
    assert loose["high"] - loose["low"] < 0.7 * (once["high"] - once["low"])
    with pytest.raises(ValueError, match="one label per value"):
        paired_ratio(model, baseline, 0.95, 100, seed=0, groups=users)
