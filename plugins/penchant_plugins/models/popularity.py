"""Popularity baselines: what every model must beat."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from penchant import Context, Features, Model, Param, distinct_pairs, parse_duration


class _StaticScores(Model):
    """A model whose scores are one vector over the catalogue, the same for every user."""

    explanation_method = "popularity: the same for every user, not from their history"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scores = np.zeros(0, dtype=np.float32)

    def item_scores(self, features: Features) -> np.ndarray:
        raise NotImplementedError

    def fit(self, features: Features, validation: Any, ctx: Context) -> None:
        self.scores = self.item_scores(features).astype(np.float32)
        ctx.log(f"{self.name}: scored {len(self.scores)} items")

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(rows), len(self.scores))).copy()

    def explain(self, features: Features, row: int, items: np.ndarray) -> sp.csr_matrix:
        """No history item contributes: saying otherwise would invent reasons."""
        return sp.csr_matrix((len(items), len(self.scores)), dtype=np.float32)

    def state(self) -> dict[str, Any]:
        return {"scores": torch.from_numpy(self.scores)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.scores = state["scores"].numpy()


def distinct_users_per_item(features: Features, since: pd.Timestamp | None = None) -> np.ndarray:
    """How many of the features' users touched each item (since ``since``), counted on
    integer (user, item) pairs."""
    rows, cols = features.coordinates()
    keep = (rows >= 0) & (cols >= 0)
    if since is not None:
        keep &= (features.dataset.events.frame["time"] >= since).to_numpy()
    _, items = distinct_pairs(rows[keep].astype(np.int64), cols[keep], len(features.items))
    return np.bincount(items, minlength=len(features.items)).astype(np.float64)


class Popularity(_StaticScores):
    name = "popularity"
    description = "Items ranked by how many users interacted with them before the cutoff."

    def item_scores(self, features: Features) -> np.ndarray:
        return distinct_users_per_item(features)


class RecentPopularity(_StaticScores):
    """Shop demand moves: what sold last quarter predicts next month far better than the
    all-time list, which makes this the baseline time-aware models must beat."""

    name = "recent-popularity"
    description = ("Items ranked by how many users interacted with them in a recent window "
                   "before the cutoff (ties broken by all-time popularity).")
    params = (Param("window", "duration", "90d", help="how far back 'recent' reaches"),)

    def item_scores(self, features: Features) -> np.ndarray:
        since = features.now - parse_duration(self.params.window)
        recent = distinct_users_per_item(features, since)
        overall = distinct_users_per_item(features)
        return recent + overall / (overall.max() + 1.0)
