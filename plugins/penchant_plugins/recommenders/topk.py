"""Top-k lists from any model's scores."""

from __future__ import annotations

import numpy as np

from penchant import Context, Features, Model, Param, Recommendations, Recommender
from penchant.ranking import top_k


class TopK(Recommender):
    """The k best-scored items per user, by default leaving out what the user already has
    (switch that off for shops where repeat purchases are the point)."""

    name = "top-k"
    description = "The k highest-scored items per user, optionally excluding seen items."
    params = (
        Param("exclude_seen", "bool", True, help="leave out items in the user's history"),
        Param("batch_size", "int", 2048, min=1, help="users scored at once"),
    )

    def recommend(self, model: Model, features: Features, rows: np.ndarray, k: int,
                  ctx: Context) -> Recommendations:
        return top_k(model.score, features, rows, k, ctx, self.params.exclude_seen,
                     self.params.batch_size)
