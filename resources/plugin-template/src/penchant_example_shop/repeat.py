"""Repeat purchases: what a customer bought before, then what everyone buys."""

from __future__ import annotations

import numpy as np
import torch

import penchant


class RepeatBuy(penchant.Model):
    """Coffee, nappies, printer ink: in many shops the best next item is one the customer
    already buys. Their own purchases, decayed with age, rank first; popular items fill
    the rest of the list."""

    name = "repeat-buy"
    description = "The customer's own past items (decayed), then popular items."
    params = (
        penchant.Param("half_life", "duration", "60d", help="age at which a purchase counts half"),
    )

    def fit(self, features: penchant.Features, validation: object,
            ctx: penchant.Context) -> None:
        counts = np.asarray(features.history.sum(axis=0)).ravel().astype(np.float32)
        self.popularity = counts / max(float(counts.max()), 1.0)

    def _own(self, features: penchant.Features, rows: np.ndarray) -> np.ndarray:
        frame = features.dataset.events.frame
        days = (features.now - frame["time"]).dt.total_seconds().to_numpy() / 86400
        half = penchant.parse_duration(self.params.half_life).total_seconds() / 86400
        weights = np.power(0.5, np.clip(days, 0, None) / half).astype(np.float32)
        own = features.interaction_matrix(weights)[rows].toarray()
        if not own.any():  # a stored run has no events: fall back to the history
            own = features.history[rows].toarray()
        return own

    def score(self, features: penchant.Features, rows: np.ndarray) -> np.ndarray:
        return (self._own(features, rows) + self.popularity[None, :]).astype(np.float32)

    def state(self) -> dict:
        return {"popularity": torch.from_numpy(self.popularity)}

    def load_state(self, state: dict) -> None:
        self.popularity = state["popularity"].numpy()
