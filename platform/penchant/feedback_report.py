"""``penchant feedback report``: how recommendations did, from stored feedback.

Counts of every kind, click-through rate (clicks / impressions) and conversion (purchases /
impressions), grouped by run (with its model), model, position, item category, day or week.
One function returns a DataFrame, which the CLI prints and the app charts.

An event counts at the position it was shown at: its own ``rank``, else that of the
impression of the same run, user and item. Days and weeks are the events' own (UTC), so a
day's rates compare that day's clicks with that day's impressions. Categories come from
the run's items side table (the pipeline's ``[evaluation] category`` column), read again
through its source; runs without one are left out, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from penchant import feedback, run_data
from penchant.errors import PenchantError, PipelineError
from penchant.plugins import Registry
from penchant.store import RunStore

GROUPINGS = ("run", "model", "position", "category", "day", "week")
#: Column of the report for each kind.
COUNTS = {"impression": "impressions", "click": "clicks", "add-to-cart": "add_to_carts",
          "purchase": "purchases", "dismiss": "dismissals", "thumbs-up": "thumbs_up",
          "thumbs-down": "thumbs_down"}


@dataclass
class FeedbackReport:
    by: str
    #: One row per group: the group's column(s), a count per kind, ``ctr``, ``conversion``.
    table: pd.DataFrame
    #: What was left out and why.
    notes: list[str] = field(default_factory=list)


def feedback_report(store: RunStore, runs: Sequence[int] | None = None, by: str = "run",
                    registry: Registry | None = None) -> FeedbackReport:
    """Feedback of ``runs`` (or every run) counted and rated per ``by`` group."""
    if by not in GROUPINGS:
        raise PipelineError(f"feedback report by {by!r}: choose one of {', '.join(GROUPINGS)}")
    frame = feedback.read(store, runs)
    notes: list[str] = []
    models = {r: store.run(int(r)).model for r in frame["run_id"].unique()}
    frame["model"] = frame["run_id"].map(models).astype("string")
    if by == "position":
        frame["position"] = _positions(frame)
        unplaced = int(frame["position"].isna().sum())
        if unplaced:
            notes.append(f"{unplaced} event(s) with no known position left out")
    elif by == "category":
        frame["category"] = _categories(store, frame, notes, registry)
    elif by in ("day", "week"):
        days = frame["time"].dt.floor("D")
        if by == "week":
            days = days - pd.to_timedelta(frame["time"].dt.weekday, unit="D")
        frame[by] = days.dt.strftime("%Y-%m-%d")
    keys = ["run_id", "model"] if by == "run" else [by]
    frame = frame.dropna(subset=keys)
    table = _rates(frame, keys)
    if by == "run":
        table = table.rename(columns={"run_id": "run"})
    return FeedbackReport(by, table, notes)


def _rates(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=[*keys, *COUNTS.values(), "ctr", "conversion"])
    counts = (frame.groupby([*keys, "kind"], observed=True).size()
              .unstack("kind", fill_value=0)
              .reindex(columns=list(COUNTS), fill_value=0)
              .rename(columns=COUNTS))
    counts.columns.name = None
    impressions = counts["impressions"].replace(0, np.nan)
    counts["ctr"] = counts["clicks"] / impressions
    counts["conversion"] = counts["purchases"] / impressions
    return counts.reset_index()


def _positions(frame: pd.DataFrame) -> pd.Series:
    shown = frame[frame["kind"] == "impression"].dropna(subset=["rank"])
    first = shown.groupby(["run_id", "user", "item"])["rank"].min()
    keys = pd.MultiIndex.from_frame(frame[["run_id", "user", "item"]])
    inherited = pd.Series(first.reindex(keys).to_numpy(), index=frame.index, dtype="Int64")
    return frame["rank"].fillna(inherited)


def _categories(store: RunStore, frame: pd.DataFrame, notes: list[str],
                registry: Registry | None) -> pd.Series:
    out = pd.Series(pd.NA, index=frame.index, dtype="string")
    for run_id in sorted(frame["run_id"].unique()):
        try:
            pipeline = run_data.stored_pipeline(store, int(run_id), registry)
            column = pipeline.evaluation.category
            items = run_data.load_source(pipeline, registry).items
        except PenchantError as exc:
            notes.append(f"run {run_id} left out: its source cannot be read again ({exc})")
            continue
        if items is None or column not in items.columns:
            notes.append(f"run {run_id} left out: its source has no items side table with a "
                         f"{column!r} column")
            continue
        rows = frame["run_id"] == run_id
        names = items[column].astype("string")
        names.index = names.index.astype("string")
        out[rows] = frame.loc[rows, "item"].map(names).fillna("(unknown)")
    return out
