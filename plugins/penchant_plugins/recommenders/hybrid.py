"""A model's scores blended with what is selling now, weights learnt on held-out time."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from penchant import (
    Context,
    Features,
    Model,
    Param,
    Recommendations,
    Recommender,
    Validation,
    parse_duration,
)
from penchant.ranking import top_k

#: Candidate weights of each signal; the model's own weight is fixed at 1 (or 0), so the
#: grid spans every relative mix that matters.
GRID = {
    "model": (0.0, 1.0),
    "recent": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    "trend": (0.0, 0.25, 0.5, 1.0),
    "fresh": (0.0, 0.5, 1.0, 2.0),
}


def _standard(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    x = np.where(np.isfinite(x), x, np.nan)
    mean = np.nanmean(x, axis=axis, keepdims=axis is not None)
    std = np.nanstd(x, axis=axis, keepdims=axis is not None)
    return np.nan_to_num((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


class Hybrid(Recommender):
    """Demand moves faster than tastes: last month's bestsellers and rising items carry
    signal no history-based model has. The blend

        score = w_model·z(model) + w_recent·z(recent popularity) + w_trend·z(trend)
                + w_fresh·freshness(user)·z(model)

    adds them, where z standardises each signal and freshness(user) = 2^(−idle days /
    half-life) lets a user's own recent activity outweigh the crowd. The weights are the
    grid point with the best NDCG on the validation window, scored by a model that never
    saw that window, so the blend is chosen the way it will be used."""

    name = "hybrid"
    description = ("Blends model scores with recent popularity, item trend and the user's "
                   "own recency; blend weights learnt on the temporal validation cut.")
    params = (
        Param("window", "duration", "30d", help="how far back recent popularity looks"),
        Param("trend_window", "duration", "180d",
              help="the long-run period recent demand is compared with for the trend"),
        Param("user_half_life", "duration", "30d",
              help="idle time after which a user's own history counts half as much"),
        Param("weights", "table", {}, items="float", keys=tuple(GRID),
              help="fixed blend weights (model, recent, trend, fresh); empty: learn them"),
        Param("exclude_seen", "bool", True, help="leave out items in the user's history"),
        Param("batch_size", "int", 1024, min=1, help="users scored at once"),
        Param("max_validation_users", "int", 3000, min=1,
              help="validation users sampled when learning the weights"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.weights = {"model": 1.0, "recent": 0.0, "trend": 0.0, "fresh": 0.0}
        self.weights.update(self.params.weights)
        self.recent = np.zeros(0, dtype=np.float32)
        self.trend = np.zeros(0, dtype=np.float32)

    def item_signals(self, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """Standardised recent popularity and trend per item, as of ``features.now``."""
        f = features.dataset.events.frame
        cols = features.items.get_indexer(f["item"].astype("string"))
        age = (features.now - f["time"]).dt.total_seconds().to_numpy() / 86400
        window = parse_duration(self.params.window).total_seconds() / 86400
        long = parse_duration(self.params.trend_window).total_seconds() / 86400
        n = len(features.items)

        def counts(days: float) -> np.ndarray:
            keep = (cols >= 0) & (age < days)
            return np.bincount(cols[keep], minlength=n).astype(np.float64)

        recent, longer = counts(window), counts(long)
        trend = np.log((recent / window + 1e-3) / (longer / long + 1e-3))
        return _standard(np.log1p(recent)), _standard(trend)

    def freshness(self, features: Features, rows: np.ndarray) -> np.ndarray:
        half = parse_duration(self.params.user_half_life).total_seconds() / 86400
        idle = features.idle_days[rows] if features.idle_days is not None else \
            np.full(len(rows), np.inf)
        return np.nan_to_num(np.power(0.5, idle / half), nan=0.0).astype(np.float32)

    def blend(self, scores: np.ndarray, fresh: np.ndarray, recent: np.ndarray,
              trend: np.ndarray, w: dict[str, float]) -> np.ndarray:
        model = _standard(scores, axis=1)
        return (w["model"] * model + w["recent"] * recent[None, :]
                + w["trend"] * trend[None, :] + w["fresh"] * fresh[:, None] * model)

    def fit(self, model: Model, features: Features, validation: Validation | None,
            ctx: Context) -> None:
        if not self.params.weights and validation is not None:
            self.weights = self._learn(model, validation, ctx)
        self.recent, self.trend = self.item_signals(features)
        ctx.log("hybrid: weights " + ", ".join(f"{k} {v:g}" for k, v in self.weights.items()))
        ctx.report["weights"] = dict(self.weights)

    def _learn(self, model: Model, validation: Validation, ctx: Context) -> dict[str, float]:
        val = validation.features
        rows = validation.users()
        if len(rows) == 0:
            ctx.log("hybrid: no validation users; keeping the model's scores alone")
            return dict(self.weights)
        rng = np.random.default_rng(ctx.seed)
        if len(rows) > self.params.max_validation_users:
            rows = np.sort(rng.choice(rows, self.params.max_validation_users, replace=False))
        scores = np.asarray(model.score(val, rows), dtype=np.float32)
        recent, trend = self.item_signals(val)
        fresh = self.freshness(val, rows)
        best, best_w = -np.inf, dict(self.weights)
        for values in itertools.product(*GRID.values()):
            w = dict(zip(GRID, values, strict=True))
            if w["model"] == 0 and (w["fresh"] > 0 or not w["recent"] + w["trend"]):
                continue  # freshness scales the model's signal; all-zero ranks nothing
            value = validation.ndcg(self.blend(scores, fresh, recent, trend, w), rows)
            if value > best + 1e-9:
                best, best_w = value, w
            ctx.check_cancelled()
        ctx.report["validation_ndcg"] = best
        return best_w

    def recommend(self, model: Model, features: Features, rows: np.ndarray, k: int,
                  ctx: Context) -> Recommendations:
        def score(feats: Features, batch: np.ndarray) -> np.ndarray:
            return self.blend(np.asarray(model.score(feats, batch), dtype=np.float32),
                              self.freshness(feats, batch), self.recent, self.trend,
                              self.weights)

        return top_k(score, features, rows, k, ctx, self.params.exclude_seen,
                     self.params.batch_size)

    def state(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "recent": torch.from_numpy(self.recent),
                "trend": torch.from_numpy(self.trend)}

    def load_state(self, state: dict[str, Any]) -> None:
        if state:
            self.weights = {k: float(v) for k, v in state["weights"].items()}
            self.recent = state["recent"].numpy()
            self.trend = state["trend"].numpy()


