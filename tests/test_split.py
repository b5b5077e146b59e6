"""The temporal split and the relevant sets per horizon."""

from __future__ import annotations

import pandas as pd
import pytest

from penchant.data import Events
from penchant.errors import PipelineError
from penchant.split import relevant_items, resolve_cutoff, temporal_split


def events(rows: list[tuple[str, str, str]]) -> Events:
    return Events.from_frame(pd.DataFrame(rows, columns=["user", "item", "time"]))


LOG = events([
    ("u1", "a", "2024-01-01"), ("u1", "b", "2024-01-05"), ("u2", "a", "2024-01-03"),
    ("u1", "a", "2024-02-01"),  # cutoff instant: test side, and a repeat (not relevant)
    ("u1", "c", "2024-02-03"),  # relevant for u1 at 7d and 30d
    ("u2", "c", "2024-02-20"),  # relevant for u2 at 30d only
    ("u3", "d", "2024-02-02"),  # no training history: never evaluated
    ("u2", "e", "2024-05-01"),  # beyond 30 days
])


def test_nothing_at_or_after_the_cutoff_reaches_training() -> None:
    split = temporal_split(LOG, "2024-02-01")
    assert split.cutoff == pd.Timestamp("2024-02-01", tz="UTC")
    assert (split.train.frame["time"] < split.cutoff).all()
    assert (split.test.frame["time"] >= split.cutoff).all()
    assert len(split.train) + len(split.test) == len(LOG)
    assert len(split.test) == 5


def test_relevant_sets_per_horizon() -> None:
    split = temporal_split(LOG, "2024-02-01")
    both = relevant_items(split.train, split.test, split.cutoff, ["7d", "30d"])
    week, month = both["7d"], both["30d"]
    assert week == {"u1": ["c"]}
    assert month == {"u1": ["c"], "u2": ["c"]}
    for rel in (week, month):
        for user, items in rel.items():
            history = set(split.train.frame.loc[split.train.frame["user"] == user, "item"])
            assert not history & set(items)


def test_quantile_cutoff_and_bad_cutoffs() -> None:
    at = resolve_cutoff(LOG, 0.5)
    times = LOG.frame["time"].sort_values()
    assert times.iloc[0] <= at <= times.iloc[-1]
    with pytest.raises(PipelineError, match="neither a quantile"):
        resolve_cutoff(LOG, "next week")
    with pytest.raises(PipelineError, match="no training events"):
        temporal_split(LOG, "2023-01-01")


def test_the_validation_cut_holds_out_the_last_share_of_events_not_of_time() -> None:
    """Activity that grows over the years: one event a month for nine years, then 90 in
    the last year. The last tenth of the events is the last months' worth, as recent as
    the test's window, where the last tenth of the time would hold half of every event."""
    from penchant.split import validation_cut

    early = [("u", f"i{m}", f"{2015 + m // 12}-{m % 12 + 1:02d}-01") for m in range(108)]
    late = [("u", f"j{d}", str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=4 * d)))
            for d in range(90)]
    log = events(early + late)
    cut = validation_cut(log, 0.1)
    held = (log.frame["time"] >= cut).sum()
    assert held == pytest.approx(0.1 * len(log), abs=2)
    assert cut > pd.Timestamp("2024-09-01", tz="UTC")
