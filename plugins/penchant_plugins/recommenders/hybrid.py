"""A model's scores blended with what is selling now, weights learnt on held-out time."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from penchant import (
    Context,
    Features,
    Model,
    Param,
    PipelineError,
    Recommendations,
    Recommender,
    Validation,
    parse_duration,
)
from penchant.metrics import ndcg_of_ranking
from penchant.ranking import top_k
from penchant_plugins.models.ease import EASE

#: Candidate weights of each signal; the model's own weight is fixed at 1 (or 0), so the
#: grid spans every relative mix that matters.
GRID = {
    "model": (0.0, 1.0),
    "similar": (0.0, 0.5, 1.0, 2.0),
    "recent": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    "trend": (0.0, 0.25, 0.5, 1.0),
    "fresh": (0.0, 0.5, 1.0, 2.0),
}


def _standard(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    keep = axis is not None
    x = np.asarray(x, dtype=np.float32)
    if np.isfinite(x).all():  # the usual case, at a third of the nan-aware functions' cost
        mean, std = x.mean(axis=axis, keepdims=keep), x.std(axis=axis, keepdims=keep)
    else:
        x = np.where(np.isfinite(x), x, np.nan)
        mean, std = np.nanmean(x, axis=axis, keepdims=keep), np.nanstd(x, axis=axis,
                                                                       keepdims=keep)
    return np.nan_to_num((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


@dataclass
class Signals:
    """Everything the blend adds up, standardised once so the grid search only combines:
    per user × item the model's and the similar-items scores, per user the freshness, per
    item recent popularity and trend."""

    model: np.ndarray
    similar: np.ndarray | None
    fresh: np.ndarray
    recent: np.ndarray
    trend: np.ndarray

    def combine(self, w: dict[str, float]) -> np.ndarray:
        out = (w["model"] * self.model + w["recent"] * self.recent + w["trend"] * self.trend
               + w["fresh"] * self.fresh[:, None] * self.model)
        if w["similar"] and self.similar is not None:
            out += w["similar"] * self.similar
        return out

    def candidates(self, seen: sp.csr_matrix, depth: int) -> np.ndarray | None:
        """Per user, the unseen items among the ``depth`` best of any one signal, as a
        users × C column array padded with -1 (C the most any user has); None when that
        would cover most of the catalogue anyway. A blend with non-negative weights ranks
        near its top only items that some signal ranks high, so ranking these alone
        scores almost every grid point exactly, at a fraction of the catalogue's cost."""
        users, items = self.model.shape
        each = [self.model, self.recent, self.trend] + (
            [self.similar] if self.similar is not None else [])
        if len(each) * depth >= items // 2:
            return None
        mask = np.zeros((users, items), dtype=bool)
        for signal in each:
            best = _best(np.broadcast_to(signal, (users, items)), depth, seen)
            mask[np.arange(users)[:, None], best] = True
        mask[seen.nonzero()] = False
        counts = mask.sum(axis=1)
        user, item = np.nonzero(mask)
        slot = np.arange(len(user)) - np.repeat(np.cumsum(counts) - counts, counts)
        columns = np.full((users, max(int(counts.max()), 1)), -1)
        columns[user, slot] = item
        return columns

    def restricted(self, columns: np.ndarray) -> Signals:
        """These signals at each user's candidate ``columns`` (-1 pads read column 0:
        mask them after combining)."""
        at = np.maximum(columns, 0)

        def gather(x: np.ndarray | None) -> np.ndarray | None:
            if x is None:
                return None
            return np.take_along_axis(x, at, axis=1) if x.ndim == 2 else x[at]

        return Signals(gather(self.model), gather(self.similar), self.fresh,
                       gather(self.recent), gather(self.trend))


def grid_ndcg(signals: Signals, seen: sp.csr_matrix, goal: sp.csr_matrix, k: int,
              depth: int, ctx: Context) -> tuple[list[dict[str, float]], np.ndarray, int]:
    """Every meaningful grid point and its NDCG@k per user (grid points × users) against
    ``goal``, each user's blend ranked among the candidates of :meth:`Signals.candidates`
    (``depth`` deep) with ``seen`` items left out; and how many candidates a user had at
    most."""
    columns = signals.candidates(seen, depth)
    if columns is None:
        columns = np.broadcast_to(np.arange(goal.shape[1]), goal.shape)
        padding = seen.toarray() > 0
    else:
        signals, padding = signals.restricted(columns), columns < 0
    relevant = np.asarray(goal[np.arange(goal.shape[0])[:, None], np.maximum(columns, 0)]
                          .todense()) > 0
    relevant &= ~padding
    n_relevant = np.diff(goal.indptr)
    grid, table = [], []
    for values in itertools.product(*GRID.values()):
        w = dict(zip(GRID, values, strict=True))
        if (w["model"] == 0 and (w["fresh"] > 0 or not w["recent"] + w["trend"]
                                 + w["similar"])) \
                or (w["similar"] and signals.similar is None):
            continue  # freshness scales the model's signal; all-zero ranks nothing
        scores = signals.combine(w)
        scores[padding] = -np.inf
        grid.append(w)
        table.append(ndcg_of_ranking(scores, relevant, n_relevant, k))
        ctx.check_cancelled()
    return grid, np.asarray(table), columns.shape[1]


def _best(scores: np.ndarray, depth: int, seen: sp.csr_matrix) -> np.ndarray:
    """Each row's ``depth`` best unseen columns (unordered)."""
    scores = scores.copy()
    scores[seen.nonzero()] = -np.inf
    return np.argpartition(-scores, depth - 1, axis=1)[:, :depth]


class Hybrid(Recommender):
    """Demand moves faster than tastes: last month's bestsellers and rising items carry
    signal no history-based model has. The blend

        score = w_model·z(model) + w_similar·z(similar) + w_recent·z(recent popularity)
                + w_trend·z(trend) + w_fresh·freshness(user)·z(model)

    adds them, where z standardises each signal, similar scores items like everything the
    user ever touched (EASE on the undecayed history: the long-run tastes a decayed input
    plays down, and on small data the steadiest collaborative signal), and freshness(user)
    = 2^(−idle days / half-life) lets a user's own recent activity outweigh the crowd.

    The weights are chosen on the validation window, scored by a model that never saw it,
    so the blend is chosen the way it will be used: only what users do within ``horizon``
    of the cut counts (a year-long window would tune for the long run), and the best grid
    point is found again on bootstrap resamples of the validation users and the picks
    averaged, because on a small window the single best point is mostly noise."""

    name = "hybrid"
    description = ("Blends model scores with similar items (EASE on the whole history), "
                   "recent popularity, item trend and the user's own recency; blend weights "
                   "learnt on the temporal validation cut.")
    params = (
        Param("window", "duration", "30d", help="how far back recent popularity looks"),
        Param("trend_window", "duration", "180d",
              help="the long-run period recent demand is compared with for the trend"),
        Param("user_half_life", "duration", "30d",
              help="idle time after which a user's own history counts half as much"),
        Param("similar_l2", "float", 500.0, min=0,
              help="λ of the EASE item-item model behind the similar-items signal (fitted "
                   "on every user's undecayed history); 0 leaves the signal out"),
        Param("horizon", "duration", "90d",
              help="the blend is tuned on what users do within this long after the "
                   "validation cut: the furthest ahead its recommendations are meant for"),
        Param("resamples", "int", 50, min=0,
              help="bootstrap resamples of the validation users; the weights average each "
                   "resample's best grid point (0: the single best point on all of them)"),
        Param("weights", "table", {}, items="float", keys=tuple(GRID),
              help="fixed blend weights (model, similar, recent, trend, fresh); empty: "
                   "learn them"),
        Param("exclude_seen", "bool", True, help="leave out items in the user's history"),
        Param("batch_size", "int", 1024, min=1, help="users scored at once"),
        Param("max_validation_users", "int", 3000, min=1,
              help="validation users sampled when learning the weights"),
        Param("candidates", "int", 200, min=1,
              help="while learning the weights, each user's blend is ranked among the "
                   "items in the top N of any one signal (the whole catalogue when that "
                   "is most of it)"),
        Param("similar_items", "int", 5000, min=1,
              help="the similar-items signal covers the N items most users touched (EASE "
                   "grows with N² in memory, N³ in time); the rest get none"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.weights = dict.fromkeys(GRID, 0.0) | {"model": 1.0}
        self.weights.update(self.params.weights)
        self.recent = np.zeros(0, dtype=np.float32)
        self.trend = np.zeros(0, dtype=np.float32)
        self.similar: EASE | None = None

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

    def fit_similar(self, features: Features, ctx: Context) -> EASE | None:
        """EASE on the binary history as of ``features.now``; None when ``similar_l2`` is
        0 or the catalogue is too large for EASE's dense item×item matrix (logged: the
        blend then does without the signal rather than fail the run)."""
        if not self.params.similar_l2:
            return None
        ease = EASE(self._similar_params(), where="[recommender] hybrid")
        try:
            ease.fit(replace(features, matrix=features.history), None, ctx)
        except PipelineError as exc:
            ctx.log(f"hybrid: no similar-items signal: {exc}")
            return None
        return ease

    def _similar_params(self) -> dict[str, Any]:
        return {"l2": self.params.similar_l2, "top_items": self.params.similar_items}

    def signals(self, model: Model, features: Features, rows: np.ndarray,
                similar: EASE | None, items: tuple[np.ndarray, np.ndarray]) -> Signals:
        scores = np.asarray(model.score(features, rows), dtype=np.float32)
        near = None if similar is None else _standard(
            similar.score(replace(features, matrix=features.history), rows), axis=1)
        return Signals(_standard(scores, axis=1), near, self.freshness(features, rows),
                       *items)

    def fit(self, model: Model, features: Features, validation: Validation | None,
            ctx: Context) -> None:
        if not self.params.weights and validation is not None:
            self.weights = self._learn(model, features, validation, ctx)
        self.recent, self.trend = self.item_signals(features)
        self.similar = self.fit_similar(features, ctx) if self.weights["similar"] else None
        ctx.log("hybrid: weights " + ", ".join(f"{k} {v:.3g}" for k, v in self.weights.items()))
        ctx.report["weights"] = dict(self.weights)

    def horizon_targets(self, features: Features, validation: Validation) -> sp.csr_matrix:
        """The validation targets touched within ``horizon`` of the cut (``features``
        hold the whole training period, validation window included)."""
        cut = validation.features.now
        frame = features.dataset.events.frame
        within = ((frame["time"] >= cut)
                  & (frame["time"] < cut + parse_duration(self.params.horizon))).to_numpy()
        touched = Features.start(features.dataset.with_events(
            features.dataset.events.select(within)), cut, features.users, features.items)
        return sp.csr_matrix(validation.targets.multiply(touched.history))

    def _learn(self, model: Model, features: Features, validation: Validation,
               ctx: Context) -> dict[str, float]:
        val = validation.features
        targets = self.horizon_targets(features, validation)
        rows = np.flatnonzero((np.diff(targets.indptr) > 0) & (np.diff(val.history.indptr) > 0))
        if len(rows) == 0:
            ctx.log(f"hybrid: no validation users within {self.params.horizon} of the cut; "
                    "keeping the model's scores alone")
            return dict(self.weights)
        rng = np.random.default_rng(ctx.seed)
        if len(rows) > self.params.max_validation_users:
            rows = np.sort(rng.choice(rows, self.params.max_validation_users, replace=False))
        signals = self.signals(model, val, rows, self.fit_similar(val, ctx),
                               self.item_signals(val))
        grid, ndcg, width = grid_ndcg(signals, val.history[rows], targets[rows],
                                      validation.k, self.params.candidates, ctx)
        if width < len(features.items):
            ctx.log(f"hybrid: each validation user's blend ranked among at most {width} "
                    "candidate items")
        ctx.report["validation_users"] = len(rows)
        ctx.report["validation_ndcg"] = float(ndcg.mean(axis=1).max())
        return self.choose(grid, ndcg, rng)

    def choose(self, grid: list[dict[str, float]], ndcg: np.ndarray,
               rng: np.random.Generator) -> dict[str, float]:
        """The grid point with the best mean of ``ndcg`` (grid points × users), or the
        average of the best points of ``resamples`` bootstrap resamples of the users, each
        scaled to sum 1 (the blend ranks the same under any positive multiple)."""
        if not self.params.resamples:
            return grid[int(np.argmax(ndcg.mean(axis=1)))]
        n = ndcg.shape[1]
        picks = [grid[int(np.argmax(ndcg[:, rng.integers(0, n, n)].mean(axis=1)))]
                 for _ in range(self.params.resamples)]
        return {k: float(np.mean([w[k] / sum(w.values()) for w in picks])) for k in GRID}

    def recommend(self, model: Model, features: Features, rows: np.ndarray, k: int,
                  ctx: Context) -> Recommendations:
        items = (self.recent, self.trend)

        def score(feats: Features, batch: np.ndarray) -> np.ndarray:
            return self.signals(model, feats, batch, self.similar, items).combine(self.weights)

        return top_k(score, features, rows, k, ctx, self.params.exclude_seen,
                     self.params.batch_size)

    def state(self) -> dict[str, Any]:
        out = {"weights": dict(self.weights), "recent": torch.from_numpy(self.recent),
               "trend": torch.from_numpy(self.trend)}
        if self.similar is not None:
            out["similar"] = self.similar.state()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        if state:
            self.weights = dict.fromkeys(GRID, 0.0) | {
                k: float(v) for k, v in state["weights"].items()}
            self.recent = state["recent"].numpy()
            self.trend = state["trend"].numpy()
            self.similar = None
            if "similar" in state:
                self.similar = EASE(self._similar_params())
                self.similar.load_state(state["similar"])
