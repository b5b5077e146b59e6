"""``penchant feedback replay``: feedback simulated from what users actually did.

Every recommendation a run showed (its ``recommendations.csv``, ranks up to
``recommend_k``) becomes an impression at the run's cutoff. It also counts as a click, an
add-to-cart or a purchase when the user interacted with that item within the horizon after
the cutoff: a ``view`` is a click, a ``cart`` an add-to-cart, a ``purchase`` a purchase,
any other event type (a plain ``interaction``) a click; each kind once per
recommendation, at the first such event. The events are the run's own source read again
and split at the run's recorded cutoff (:mod:`penchant.run_data`, :mod:`penchant.split`),
not preprocessed: what the shop logged, not what a model trained on.

Replayed rows are stored like imported ones, so replaying twice stores nothing twice, and
a longer horizon later adds only what the shorter one had not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from penchant import feedback, run_data
from penchant.data import Events
from penchant.plugins import Registry
from penchant.split import horizon_window, temporal_split
from penchant.store import RunStore

#: The feedback kind an event type stands for; any other type is a click.
EVENT_KINDS = {"view": "click", "click": "click", "cart": "add-to-cart",
               "add-to-cart": "add-to-cart", "purchase": "purchase"}
DEFAULT_KIND = "click"


@dataclass
class Replay:
    run_id: int
    cutoff: pd.Timestamp
    horizon: str
    #: Replayed events per kind (impressions first).
    counts: dict[str, int] = field(default_factory=dict)
    recorded: feedback.Recorded = field(default_factory=feedback.Recorded)


def replay(store: RunStore, run_id: int, horizon: str = "30d",
           registry: Registry | None = None, batch: int | None = None) -> Replay:
    """Simulate and store the feedback of run ``run_id``'s lists over ``horizon``."""
    record = store.run(run_id)
    shown = run_data.shown_lists(store, run_id)
    cutoff = run_data.cutoff(record)
    pipeline = run_data.stored_pipeline(store, run_id, registry)
    events = run_data.load_source(pipeline, registry).events
    frame = replay_frame(run_id, shown, events, cutoff, horizon)
    result = Replay(run_id, cutoff, horizon, counts={
        kind: int((frame["kind"] == kind).sum()) for kind in feedback.KINDS
        if kind == "impression" or kind in EVENT_KINDS.values()})
    result.recorded = feedback.record(store, frame, f"replay of run {run_id}", registry,
                                      batch)
    return result


def replay_frame(run_id: int, shown: pd.DataFrame, events: Events, cutoff: pd.Timestamp,
                 horizon: str) -> pd.DataFrame:
    """The feedback (:data:`penchant.feedback.COLUMNS`) that ``shown`` lists would have
    had from ``events``: impressions, then what users did within ``horizon``."""
    shown = shown[["user", "item", "rank"]].astype({"user": "string", "item": "string"})
    impressions = shown.assign(time=cutoff, kind="impression")
    start, end = horizon_window(cutoff, horizon)
    test = temporal_split(events, cutoff.isoformat()).test.frame
    window = test[(test["time"] >= start) & (test["time"] < end)].reset_index(drop=True)
    acted = pd.DataFrame({
        "user": window["user"].astype("string"), "item": window["item"].astype("string"),
        "kind": window["event"].astype("string").map(EVENT_KINDS).fillna(DEFAULT_KIND),
        "time": window["time"]})
    acted = acted.merge(shown, on=["user", "item"], how="inner")
    acted = acted.groupby(["user", "item", "rank", "kind"], as_index=False)["time"].min()
    out = pd.concat([impressions, acted], ignore_index=True)
    out["time"] = pd.to_datetime(out["time"], utc=True).dt.floor("us")
    out["run_id"] = int(run_id)
    out["rank"] = out["rank"].astype("Int64")
    out["note"] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out[list(feedback.COLUMNS)]

