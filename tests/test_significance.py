"""Paired bootstrap intervals: right where the answer is known, calibrated where it is
random, and honest when the baseline scores nothing."""

from __future__ import annotations

import numpy as np
import pytest

from penchant.report import ratio_cell
from penchant.significance import paired_ratio


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
