"""The user×item interaction matrix most models read."""

from __future__ import annotations

import numpy as np

from penchant import Context, FeatureExtractor, Features, Param
from penchant.interests import event_weights


class Interactions(FeatureExtractor):
    """Events summed into a sparse user×item matrix, weighted by event type and age.

    Weights let a purchase say more than a view; the optional half-life lets last month
    say more than last year, which is what long-term interest forecasting needs.
    """

    name = "interactions"
    description = ("Sparse user×item matrix with per-event-type weights (e.g. view < cart < "
                   "purchase) and optional exponential time decay.")
    params = (
        Param("weights", "table", {}, items="float",
              help="weight per event type, e.g. { view = 1, cart = 2, purchase = 4 }; "
                   "types not listed get the weight the data suggests (merged feedback "
                   "kinds: the pipeline's [feedback] weights) or else default_weight"),
        Param("default_weight", "float", 1.0, min=0, help="weight of unlisted event types"),
        Param("half_life", "duration", None,
              help="halve an event's weight every this long before the cutoff (e.g. '90d'); "
                   "unset: no decay"),
        Param("reduce", "str", "max", choices=("sum", "max", "log"),
              help="how repeated events of a user on an item combine: sum, max, or log(1+sum)"),
    )

    def event_weights(self, features: Features) -> np.ndarray:
        frame = features.dataset.events.frame
        # Event types the data brought with a suggested weight (merged feedback) count as
        # suggested unless this table says otherwise.
        table = {**features.dataset.event_weights,
                 **{str(k): float(v) for k, v in self.params.weights.items()}}
        return event_weights(frame, table, self.params.default_weight, features.now,
                             self.params.half_life or None).astype(np.float32)

    def extract(self, features: Features, ctx: Context) -> Features:
        weights = self.event_weights(features)
        reduce = self.params.reduce
        matrix = features.interaction_matrix(weights, reduce="max" if reduce == "max" else "sum")
        if reduce == "log":
            matrix.data = np.log1p(matrix.data)
        features.matrix = matrix
        ctx.log(f"interactions: {matrix.nnz} non-zeros over {matrix.shape[0]} users × "
                f"{matrix.shape[1]} items")
        return features
