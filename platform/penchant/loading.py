"""From a source's chunks to checked :class:`~penchant.data.Events`, for every source alike.

A source reads its raw rows in chunks and hands each one, under canonical column names, to
an :class:`EventsBuilder`. The builder types the chunk at once (so only the compact form is
kept: memory follows the chunk size plus the result, not the raw table), keeps the pipeline's
time window, and checks the rows: null ids, missing or unparseable times, values that are not
numbers. What it finds is counted and named by row (a line, a row number or a document id);
``on_error = "stop"`` fails the load with all of it at the end, ``"drop"`` drops those rows
and records them with the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from penchant.data import EVENT_COLUMNS, TIME_DTYPE, Events
from penchant.errors import DataError

if TYPE_CHECKING:
    from penchant.components import Context

ON_ERROR = ("stop", "drop")
#: Offending rows named per problem in an error message or a log line.
SHOWN = 10
#: Offending rows kept per problem in the run's report.
REPORTED = 100

#: Problem → what a user reads; the order is the order of the message.
PROBLEMS = {
    "user": "null user id",
    "item": "null item id",
    "time_missing": "missing time",
    "time": "unparseable time",
    "value": "value that is not a number",
    "value_infinite": "infinite value",
}


@dataclass
class _Tally:
    count: int = 0
    rows: list[Any] = field(default_factory=list)

    def add(self, labels: np.ndarray) -> None:
        self.count += len(labels)
        room = REPORTED - len(self.rows)
        if room > 0:
            self.rows.extend(_plain(v) for v in labels[:room])


def _plain(value: Any) -> Any:
    """JSON-friendly: numpy scalars become Python ones, anything else its text."""
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, int | float | str) else str(value)


def _blank(raw: pd.Series) -> np.ndarray:
    """Missing, or text that is only spaces."""
    missing = raw.isna().to_numpy(dtype=bool)
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype("string").str.strip()
        missing = missing | (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


def find_problems(raw: pd.DataFrame, events: Events) -> dict[str, np.ndarray]:
    """Boolean masks (one per problem in :data:`PROBLEMS`) over the rows of a chunk.

    ``raw`` is the chunk as the source read it (canonical names), ``events`` its typed form:
    comparing the two tells a blank field from one that did not parse.
    """
    f = events.frame
    time_bad = f["time"].isna().to_numpy()
    time_blank = _blank(raw["time"])
    masks = {
        "user": f["user"].isna().to_numpy(),
        "item": f["item"].isna().to_numpy(),
        "time_missing": time_bad & time_blank,
        "time": time_bad & ~time_blank,
    }
    value = f["value"].to_numpy()
    if "value" in raw.columns:
        masks["value"] = np.isnan(value) & ~_blank(raw["value"])
    else:
        masks["value"] = np.zeros(len(f), dtype=bool)
    masks["value_infinite"] = np.isinf(value)
    return masks


_CATEGORICAL = ("user", "item", "event")


def _parts_of(column: pd.Series) -> tuple[np.ndarray, Any]:
    """A chunk's categorical as its codes and its categories' bare array.

    Not the categories' Index: once looked up, an Index carries a hash table of Python
    strings, which kept for every chunk cost more memory than the events themselves.
    """
    return column.cat.codes.to_numpy(), column.cat.categories.array


def _united(parts: list[tuple[np.ndarray, Any]]) -> pd.Categorical:
    """One categorical from chunks' codes and categories, hashing every chunk's categories
    once: they are stacked, factorised together, and each chunk's codes mapped through the
    result. Linear in rows plus categories, where uniting categoricals pairwise
    (``union_categoricals``) grows with the number of chunks."""
    stacked = pd.concat([pd.Series(categories, dtype="string") for _, categories in parts],
                        ignore_index=True)
    remap, names = pd.factorize(stacked)
    codes, offset = [], 0
    for local, categories in parts:
        local = local.astype(np.int64)
        codes.append(np.where(local >= 0, remap[offset + np.maximum(local, 0)], -1)
                     if len(remap) else local)
        offset += len(categories)
    return pd.Categorical.from_codes(np.concatenate(codes).astype(np.int32),
                                     categories=pd.Index(names, dtype="string"))


class EventsBuilder:
    """Collects a source's chunks into one checked :class:`Events`.

    ``origin`` names the data in messages (a path, a masked URL and table). ``row_name`` is
    what ``labels`` are (``"row"``, ``"line"``, ``"_id"``); without labels a row is named
    by its ``row`` column. ``since``/``until`` keep events with ``since <= time < until``.
    """

    def __init__(self, origin: str, ctx: Context, *, time_unit: str = "auto",
                 on_error: str = "stop", since: pd.Timestamp | None = None,
                 until: pd.Timestamp | None = None, row_name: str = "row",
                 total: int = 0) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.origin, self.ctx, self.time_unit = origin, ctx, time_unit
        self.on_error, self.since, self.until = on_error, since, until
        self.row_name, self.total = row_name, total
        self.parts: list[dict[str, Any]] = []
        self.tallies = {key: _Tally() for key in PROBLEMS}
        self.read = 0
        self.consumed = 0
        self.outside_window = 0

    def add(self, raw: pd.DataFrame, labels: pd.Series | np.ndarray | None = None,
            consumed: int | None = None) -> None:
        """One chunk with canonical column names (``user``, ``item``, ``time``, optional
        ``event``, ``value``, ``row``). ``consumed`` is how far into the source the chunk
        reached (lines, including skipped blank ones), for progress; the chunk's length
        when not given."""
        self.ctx.check_cancelled()
        raw = raw.reset_index(drop=True)
        events = Events.from_frame(raw, self.time_unit)
        masks = find_problems(raw, events)
        names = (np.asarray(labels, dtype=object) if labels is not None
                 else events.frame["row"].to_numpy())
        bad = np.zeros(len(raw), dtype=bool)
        for key, mask in masks.items():
            if mask.any():
                self.tallies[key].add(names[mask])
                bad |= mask
        keep = ~bad & self._in_window(events.frame["time"])
        self.outside_window += int((~bad & ~keep).sum())
        if self.on_error == "drop" or not self.problems():
            self._keep(events.frame if keep.all() else events.frame[keep])
        self.read += len(raw)
        self.consumed += len(raw) if consumed is None else consumed
        self.ctx.progress("load", self.consumed, max(self.total, self.consumed))

    def _in_window(self, times: pd.Series) -> np.ndarray:
        keep = np.ones(len(times), dtype=bool)
        if self.since is not None:
            keep &= (times >= self.since).to_numpy(dtype=bool, na_value=False)
        if self.until is not None:
            keep &= (times < self.until).to_numpy(dtype=bool, na_value=False)
        return keep

    def problems(self) -> int:
        return sum(t.count for t in self.tallies.values())

    def describe(self, shown: int = SHOWN) -> str:
        """``"3 with null user id (rows 4, 9, 12); 1 with …"``."""
        bits = []
        for key, tally in self.tallies.items():
            if tally.count:
                names = ", ".join(map(str, tally.rows[:shown]))
                more = " …" if tally.count > shown else ""
                plural = "s" if tally.count > 1 and self.row_name in ("row", "line") else ""
                bits.append(f"{tally.count} with {PROBLEMS[key]} "
                            f"({self.row_name}{plural} {names}{more})")
        return "; ".join(bits)

    def finish(self) -> Events:
        """The events read, or a :class:`DataError` naming every kind of bad row."""
        count = self.problems()
        if count and self.on_error == "stop":
            raise DataError(
                f"{self.origin}: {count} of {self.read} event row(s) cannot be used: "
                f"{self.describe()}. Fix the data, or set on_error = \"drop\" in [source] "
                "to drop them (the run records which)")
        report = self.ctx.report
        report["rows_read"] = self.read
        if self.outside_window:
            report["outside_window"] = self.outside_window
        if count:
            report["dropped"] = {PROBLEMS[k]: {"count": t.count, "rows": t.rows}
                                 for k, t in self.tallies.items() if t.count}
            self.ctx.log(f"load: dropped {count} of {self.read} row(s) from {self.origin}: "
                         f"{self.describe()}")
        return self._events()

    def _keep(self, frame: pd.DataFrame) -> None:
        """Hold a chunk as plain arrays and its categoricals as they are (codes and the
        chunk's few categories); they are united once, at the end."""
        part: dict[str, Any] = {col: frame[col].to_numpy(copy=True)
                                for col in ("value", "row")}
        # UTC nanoseconds: converting the zoned column to numpy would box every timestamp.
        part["time"] = frame["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        for col in _CATEGORICAL:
            part[col] = _parts_of(frame[col])
        self.parts.append(part)

    def _events(self) -> Events:
        if not self.parts:
            return Events.concat([])
        frame = pd.DataFrame({
            col: (_united([p[col] for p in self.parts]) if col in _CATEGORICAL
                  else np.concatenate([p[col] for p in self.parts]))
            for col in EVENT_COLUMNS})
        self.parts.clear()
        frame["time"] = frame["time"].dt.tz_localize("UTC").astype(TIME_DTYPE)
        return Events(frame)


def utc_or_none(value: Any) -> pd.Timestamp | None:
    """An ISO date parameter as a UTC timestamp; a time without a zone is read as UTC."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
