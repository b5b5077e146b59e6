"""Temporal splits and horizons.

Evaluation mimics deployment: train on everything before a cutoff, then ask what each user
does in the next 7, 30, 90… days. Nothing at or after the cutoff reaches training, and a
user's relevant items for a horizon are only the ones new to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from penchant.data import Events, distinct_pairs
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
                   horizons: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """Per horizon, for each user with training history: the items touched in
    [cutoff, cutoff + h) that are not in their history. Users whose set is empty are left
    out (they cannot be scored).

    Worked on integer codes of (user, item) pairs, sorted once: on ten million events the
    string pairs it replaces took a minute per horizon."""
    train_users, test_users, users = _shared_codes(train.frame["user"], test.frame["user"])
    train_items, test_items, items = _shared_codes(train.frame["item"], test.frame["item"])
    n = len(items)
    seen_users, seen_items = distinct_pairs(train_users, train_items, n)
    history = seen_users * n + seen_items  # sorted, as distinct_pairs leaves them
    known = np.zeros(len(users), dtype=bool)
    known[train_users[train_users >= 0]] = True
    user_ids, item_ids = np.asarray(users, dtype=object), np.asarray(items, dtype=object)
    times = test.frame["time"]
    out = {}
    for horizon in horizons:
        start, end = horizon_window(cutoff, horizon)
        window = ((times >= start) & (times < end)).to_numpy() & (test_users >= 0) \
            & (test_items >= 0)
        user, item = distinct_pairs(test_users[window], test_items[window], n)
        new = known[user] & ~_in_sorted(user * n + item, history)
        user, item = user[new], item[new]
        cuts = np.flatnonzero(np.diff(user)) + 1
        out[horizon] = {user_ids[u[0]]: item_ids[i].tolist() for u, i in
                        zip(np.split(user, cuts), np.split(item, cuts), strict=True) if len(u)}
    return out


def _shared_codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Integer codes of two id columns over one shared index of ids, -1 for a null. Two
    parts of one log share their categories, so their codes serve as they are."""
    if not (isinstance(a.dtype, pd.CategoricalDtype) and a.dtype == b.dtype):
        both = pd.Categorical(pd.concat([a, b], ignore_index=True).astype("string"))
        a, b = (pd.Series(both[:len(a)]), pd.Series(both[len(a):]))
    return (a.cat.codes.to_numpy(np.int64), b.cat.codes.to_numpy(np.int64),
            a.cat.categories.astype("string"))


def _in_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
    return sorted_keys[at] == keys if len(sorted_keys) else np.zeros(len(keys), dtype=bool)


def validation_cut(train: Events, fraction: float) -> pd.Timestamp:
    """Where the last ``fraction`` of the training events starts: the test's own
    construction (a quantile of event times) applied to the training period. Where
    activity grows over the years, the last tenth of the *time* would hold a long window
    and a large share of the events, and tune for the long run; the last tenth of the
    events is as recent as the test's window is."""
    return resolve_cutoff(train, 1 - fraction)
