"""Temporal splits and horizons.

Evaluation mimics deployment: train on everything before a cutoff, then ask what each user
does in the next 7, 30, 90… days. Nothing at or after the cutoff reaches training, and a
user's relevant items for a horizon are only the ones new to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from penchant.data import Events
from penchant.errors import PipelineError
from penchant.params import parse_duration


def resolve_cutoff(events: Events, cutoff: str | float) -> pd.Timestamp:
    """An ISO date/time, or a quantile (0..1) of event times."""
    if isinstance(cutoff, int | float) and not isinstance(cutoff, bool):
        if not 0 < float(cutoff) < 1:
            raise PipelineError(f"[evaluation] key 'cutoff': quantile {cutoff} must be "
                                "strictly between 0 and 1")
        times = events.frame["time"]
        return times.quantile(float(cutoff), interpolation="lower")
    try:
        ts = pd.Timestamp(str(cutoff))
    except ValueError as exc:
        raise PipelineError(f"[evaluation] key 'cutoff': {cutoff!r} is neither a quantile "
                            "nor an ISO date such as '2024-06-01'") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass(frozen=True)
class TemporalSplit:
    train: Events
    test: Events
    cutoff: pd.Timestamp


def temporal_split(events: Events, cutoff: str | float,
                   own: np.ndarray | None = None) -> TemporalSplit:
    """Train strictly before the cutoff, test at or after it.

    ``own`` marks the shop's own events when others were added (merged feedback): only
    they set a quantile cutoff and make up the test period, so the added events can train
    a model but neither move the cutoff nor count as what users went on to do.
    """
    at = resolve_cutoff(events if own is None else events.select(own), cutoff)
    before = (events.frame["time"] < at).to_numpy()
    after = ~before if own is None else ~before & own
    train, test = events.select(before), events.select(after)
    if len(train) == 0:
        raise PipelineError(f"[evaluation] cutoff {at} leaves no training events "
                            f"(events start at {events.start})")
    return TemporalSplit(train, test, at)


def horizon_window(cutoff: pd.Timestamp, horizon: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    delta: timedelta = parse_duration(horizon)
    return cutoff, cutoff + delta


def relevant_items(train: Events, test: Events, cutoff: pd.Timestamp,
                   horizon: str) -> dict[str, list[str]]:
    """For each user with training history: items touched in [cutoff, cutoff + h) that are
    not in their history. Users whose set is empty are left out (they cannot be scored)."""
    start, end = horizon_window(cutoff, horizon)
    t = test.frame
    window = t[(t["time"] >= start) & (t["time"] < end)]
    pairs = pd.DataFrame({"user": window["user"].astype("string"),
                          "item": window["item"].astype("string")}).drop_duplicates()
    known_users = pd.Index(pd.unique(train.frame["user"].astype("string")))
    pairs = pairs[pairs["user"].isin(known_users)]
    history = pd.MultiIndex.from_frame(pd.DataFrame({
        "user": train.frame["user"].astype("string"),
        "item": train.frame["item"].astype("string")}).drop_duplicates())
    new = ~pd.MultiIndex.from_frame(pairs).isin(history)
    pairs = pairs[np.asarray(new)]
    return {u: g["item"].tolist() for u, g in pairs.groupby("user", sort=True)}


def validation_cut(train: Events, fraction: float) -> pd.Timestamp:
    """Where the last ``fraction`` of the training period starts, for early stopping."""
    start, end = train.start, train.end
    return start + (end - start) * (1 - fraction)
