"""Top-k lists from scores: the one ranking routine every recommender and the evaluation
of baselines share, so "exclude what the user has" means the same everywhere."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from penchant.components import Context
from penchant.data import Features, Recommendations
from penchant.errors import PluginError
from penchant.metrics import top_columns

Scorer = Callable[[Features, np.ndarray], np.ndarray]


def top_k(score: Scorer, features: Features, rows: np.ndarray, k: int, ctx: Context,
          exclude_seen: bool = True, batch_size: int = 2048) -> Recommendations:
    """The ``k`` best items per user at ``rows``, scored ``batch_size`` users at a time.

    Seen items (``features.history``) get -inf when ``exclude_seen``; items scored -inf are
    never listed, so a user who has seen nearly everything gets a shorter list.
    """
    k = min(k, features.shape[1])
    users, items, ranks, scores = [], [], [], []
    for start in range(0, len(rows), batch_size):
        ctx.check_cancelled()
        batch = rows[start:start + batch_size]
        s = np.array(score(features, batch), dtype=np.float32)
        _check_scores(s, (len(batch), features.shape[1]), score)
        if exclude_seen:
            s[features.history[batch].nonzero()] = -np.inf
        top = top_columns(s, k)
        top_scores = np.take_along_axis(s, top, axis=1)
        valid = np.isfinite(top_scores)
        users.append(np.repeat(batch, k).reshape(len(batch), k)[valid])
        items.append(top[valid])
        ranks.append(np.tile(np.arange(1, k + 1), (len(batch), 1))[valid])
        scores.append(top_scores[valid])
        ctx.progress("recommend", min(start + len(batch), len(rows)), len(rows))
    return Recommendations(pd.DataFrame({
        "user": features.users[_joined(users, np.int64)].astype("string"),
        "item": features.items[_joined(items, np.int64)].astype("string"),
        "rank": _joined(ranks, np.int64),
        "score": _joined(scores, np.float32),
    }))


def _check_scores(scores: np.ndarray, expected: tuple[int, int], score: Scorer) -> None:
    """A plugin's wrong output is named here, not found later as a numpy error."""
    owner = getattr(getattr(score, "__self__", None), "name", None)
    who = f"model {owner!r}" if owner else getattr(score, "__qualname__", "the scorer")
    if scores.shape != expected:
        raise PluginError(f"{who} returned scores of shape {scores.shape}; expected "
                          f"{expected} (one row per user asked for, one column per item)")
    if np.isnan(scores).any():
        rows = np.flatnonzero(np.isnan(scores).any(axis=1))
        raise PluginError(f"{who} returned NaN scores for {len(rows)} of {len(scores)} "
                          "users; return -inf for items that must never be recommended")


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
