"""Tiny generated data for model tests: block-structured users × items, and a registry.

Users fall into ``blocks`` groups; each group interacts mostly with its own slice of the
catalogue, so any model that learns co-occurrence can recover a user's items from the
rest. Fast enough for unit tests (tens of users and items).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import penchant
from penchant.data import Dataset, Events, Features
from penchant.plugins import Registry

NOW = pd.Timestamp("2024-06-01", tz="UTC")


def block_frame(users: int = 60, items: int = 40, blocks: int = 4, per_user: int = 6,
                noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Events (user, item, time) where user u takes ``per_user`` items of block u % blocks.

    ``noise`` is the share of each user's events drawn from anywhere in the catalogue.
    """
    rng = np.random.default_rng(seed)
    width = items // blocks
    rows = []
    for u in range(users):
        block = np.arange((u % blocks) * width, (u % blocks + 1) * width)
        n_noise = round(per_user * noise)
        chosen = list(rng.choice(block, size=min(per_user - n_noise, width), replace=False))
        if n_noise:
            chosen += list(rng.choice(items, size=n_noise, replace=False))
        for i in dict.fromkeys(chosen):
            rows.append((f"u{u}", f"i{i}"))
    frame = pd.DataFrame(rows, columns=["user", "item"])
    days = rng.integers(1, 300, size=len(frame))
    frame["time"] = [(NOW - pd.Timedelta(days=int(d))).isoformat() for d in days]
    return frame


def features_from(frame: pd.DataFrame, now: pd.Timestamp = NOW) -> Features:
    """Features over the frame's ids with ``matrix`` = the binary history (float32)."""
    features = Features.start(Dataset(Events.from_frame(frame)), now)
    features.matrix = features.history.astype(np.float32)
    return features


def block_features(**kwargs: Any) -> Features:
    """``features_from(block_frame(**kwargs))``."""
    return features_from(block_frame(**kwargs))


def registry_with(*models: type) -> Registry:
    """A registry holding only these model classes (no entry points)."""

    class _Plugin:
        @penchant.hookimpl
        def penchant_register_models(self) -> list[type]:
            return list(models)

    return Registry(plugins=[_Plugin()], entry_points=False)


def own_item_recall(scores: np.ndarray, history: Any) -> float:
    """Mean over users of |history ∩ top-|history| scored items| / |history|."""
    history = history.tocsr()
    recalls = []
    for r in range(scores.shape[0]):
        seen = history.indices[history.indptr[r]:history.indptr[r + 1]]
        if len(seen) == 0:
            continue
        top = np.argsort(-scores[r], kind="stable")[:len(seen)]
        recalls.append(len(set(top) & set(seen)) / len(seen))
    return float(np.mean(recalls))
