"""How sure a lead over a baseline is: paired bootstrap intervals over the evaluated users.

Training seeds move a model's scores, but not which users happen to act in the test
window, and at a short horizon a few dozen users decide a mean: one user's hit can move
NDCG by a hundredth. Resampling the users, the same draw for both lists so that what the
two share (how easy those users are) cancels, says how far the ratio of the two means
could move with another draw of users. The ratio is what the project's bars are stated in
("at least 1.05× EASE"), so that is the figure given an interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from penchant.metrics import ListHits

#: Index draws held in memory at once (resamples × users), about 16 MB of int64.
_CHUNK = 2_000_000


def paired_ratio(model: np.ndarray, baseline: np.ndarray, level: float, resamples: int,
                 seed: int, groups: np.ndarray | None = None) -> dict[str, float]:
    """Ratio of the mean of ``model`` to that of ``baseline`` (per-user values of the same
    users, in the same order) with its percentile bootstrap interval at ``level``.

    ``groups`` labels each value with the unit that is resampled whole: a backtest
    evaluates one user at several cutoffs, and those values rise and fall together, so
    drawing users (all of a user's values at once) rather than values keeps the interval
    honest. Without it each value is its own unit. ``users`` counts the units, and
    ``evaluations`` the values where there are more of them.

    A resample in which the baseline scores nothing while the model scores something has
    an infinite ratio, and one where both score nothing has none (left out): an interval
    may therefore be open above (``high`` infinite), which says the baseline's mean is not
    clearly above zero."""
    model = np.asarray(model, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if model.shape != baseline.shape or model.ndim != 1:
        raise ValueError(f"paired values need one value per user for both lists; got "
                         f"shapes {model.shape} and {baseline.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, not {level}")
    n = len(model)
    if groups is None:
        units_m, units_b = model, baseline
    else:
        groups = np.asarray(groups)
        if groups.shape != model.shape:
            raise ValueError(f"groups need one label per value; got {groups.shape} for "
                             f"{model.shape}")
        codes = pd.factorize(groups)[0]
        units_m, units_b = np.bincount(codes, model), np.bincount(codes, baseline)
    out = {"ratio": float(_ratio(model.mean(), baseline.mean())) if n else np.nan,
           "difference": float(model.mean() - baseline.mean()) if n else np.nan,
           "low": np.nan, "high": np.nan, "users": float(len(units_m))}
    if len(units_m) != n:
        out["evaluations"] = float(n)
    if n == 0:
        return out
    rng = np.random.default_rng(seed)
    ratios = []
    m = len(units_m)
    step = max(1, _CHUNK // m)
    for start in range(0, resamples, step):
        draw = rng.integers(0, m, (min(step, resamples - start), m))
        # A ratio of means over the drawn values is the ratio of their sums.
        ratios.append(_ratio(units_m[draw].sum(axis=1), units_b[draw].sum(axis=1)))
    ratios = np.concatenate(ratios)
    ratios = ratios[~np.isnan(ratios)]
    if len(ratios):
        tail = (1 - level) / 2
        # Quantiles that are sample values, so an infinite ratio never meets arithmetic.
        out["low"], out["high"] = (float(q) for q in np.quantile(
            ratios, [tail, 1 - tail], method="inverted_cdf"))
    return out


def versus(hits: Mapping[str, Mapping[str, ListHits]], main: str, k: int, level: float,
           resamples: int, seed: int) -> dict[str, Any]:
    """``main``'s NDCG@k over each other list's, per horizon, paired over the evaluated
    users (the lists' rows), each user's rows resampled together: the ``versus`` of a
    run's metrics, and of a backtest's pooled over its cutoffs."""
    return {"metric": f"ndcg@{k}", "level": level, "ratios": {
        name: {h: paired_ratio(hits[main][h].ndcg(k), hits_h.ndcg(k), level, resamples, seed,
                               groups=np.asarray(hits[main][h].users))
               for h, hits_h in by_horizon.items()}
        for name, by_horizon in hits.items() if name != main}}


def _ratio(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def paired_runs(first: pd.DataFrame, second: pd.DataFrame, level: float = 0.95,
                resamples: int = 1000, seed: int = 0) -> dict[str, Any] | None:
    """``second``'s NDCG over ``first``'s per horizon, paired over the users both runs
    evaluated (two runs' ``user_metrics.csv``: user, horizon, ``ndcg@k``…), at the
    largest k both hold; None when they share no metric. Each horizon's entry also counts
    the users each run evaluated, since a run on other data or another cutoff pairs only
    its overlap."""
    shared = [c for c in first.columns if c.startswith("ndcg@") and c in second.columns]
    if not shared:
        return None
    metric = max(shared, key=lambda c: int(c.split("@")[1]))
    out: dict[str, Any] = {"metric": metric, "level": level, "ratios": {}}
    for horizon in dict.fromkeys(first["horizon"]):
        a = first[first["horizon"] == horizon].set_index("user")[metric]
        b = second[second["horizon"] == horizon].set_index("user")[metric]
        if b.empty:
            continue
        both = a.index.intersection(b.index)
        out["ratios"][horizon] = {
            **paired_ratio(b[both].to_numpy(), a[both].to_numpy(), level, resamples, seed),
            "first_users": float(len(a)), "second_users": float(len(b))}
    return out
