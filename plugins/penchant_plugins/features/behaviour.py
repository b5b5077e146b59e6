"""How a shopper behaves, whatever they buy: how often, how much, how recently."""

from __future__ import annotations

import numpy as np
import pandas as pd

from penchant import Context, FeatureExtractor, Features, Param


class BehaviourFeatures(FeatureExtractor):
    """Visit and purchase frequency, dwell time, recency and tenure, per user, as
    standardised log values: a heavy buyer and a window shopper with the same items want
    different things next."""

    name = "behaviour-features"
    description = ("Per-user visit frequency (active days per week), purchase frequency, "
                   "mean dwell time, days since last event and tenure, from the events.")
    params = (
        Param("purchase_event", "str", "purchase", help="event type that counts as a purchase"),
        Param("dwell_event", "str", "view",
              help="event type whose value column holds dwell time (seconds); absent: 0"),
    )

    NAMES = ("visits_per_week", "purchases_per_week", "dwell", "days_since_last", "tenure_days",
             "events")

    def extract(self, features: Features, ctx: Context) -> Features:
        f = features.dataset.events.frame
        rows, _ = features.coordinates()
        keep = rows >= 0
        frame = pd.DataFrame({"row": rows[keep], "time": f["time"].to_numpy()[keep],
                              "event": f["event"].astype("string").to_numpy()[keep],
                              "value": f["value"].to_numpy()[keep]})
        n = features.shape[0]
        day = frame["time"].dt.floor("D")
        by_user = frame.groupby("row")
        first, last = by_user["time"].min(), by_user["time"].max()
        tenure = ((features.now - first).dt.total_seconds() / 86400).clip(lower=1)
        weeks = tenure / 7
        active_days = pd.Series(day.to_numpy(), index=frame["row"]).groupby(level=0).nunique()
        purchases = frame[frame["event"] == self.params.purchase_event].groupby("row").size()
        dwell = frame[frame["event"] == self.params.dwell_event].groupby("row")["value"].mean()
        columns = {
            "visits_per_week": active_days / weeks,
            "purchases_per_week": purchases.reindex(weeks.index, fill_value=0) / weeks,
            "dwell": dwell.reindex(weeks.index).fillna(0.0),
            "days_since_last": (features.now - last).dt.total_seconds() / 86400,
            "tenure_days": tenure,
            "events": by_user.size(),
        }
        block = np.zeros((n, len(self.NAMES)), dtype=np.float32)
        for j, name in enumerate(self.NAMES):
            values = np.log1p(columns[name].clip(lower=0).astype("float64"))
            block[values.index.to_numpy(), j] = values.to_numpy()
        # Scale with fixed, data-independent constants so a folded-in user is on the same
        # scale as the training users without storing statistics.
        features.user_side["behaviour"] = block / np.float32(5.0)
        features.extra["behaviour_feature_names"] = list(self.NAMES)
        return features
