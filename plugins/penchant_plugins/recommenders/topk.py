"""Top-k lists from any model's scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from penchant import Context, Features, Model, Param, Recommendations, Recommender


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
        k = min(k, features.shape[1])
        users, items, ranks, scores = [], [], [], []
        for start in range(0, len(rows), self.params.batch_size):
            ctx.check_cancelled()
            batch = rows[start:start + self.params.batch_size]
            s = np.asarray(model.score(features, batch), dtype=np.float32)
            if self.params.exclude_seen:
                seen = features.history[batch].nonzero()
                s[seen] = -np.inf
            top = np.argpartition(-s, k - 1, axis=1)[:, :k]
            top_scores = np.take_along_axis(s, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            valid = np.isfinite(top_scores)
            row_idx = np.repeat(batch, k).reshape(len(batch), k)
            users.append(row_idx[valid])
            items.append(top[valid])
            ranks.append(np.tile(np.arange(1, k + 1), (len(batch), 1))[valid])
            scores.append(top_scores[valid])
            ctx.progress("recommend", min(start + len(batch), len(rows)), len(rows))
        frame = pd.DataFrame({
            "user": features.users[_joined(users, np.int64)].astype("string"),
            "item": features.items[_joined(items, np.int64)].astype("string"),
            "rank": _joined(ranks, np.int64),
            "score": _joined(scores, np.float32),
        })
        return Recommendations(frame)


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
