"""The one data model every stage passes along.

``Events`` (the interaction log), optional ``items``/``users`` side tables bundled in a
``Dataset``, ``Features`` for models, and ``Recommendations``. Stages take and return these
so any of them can be swapped or skipped without the others knowing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.api.types import union_categoricals

from penchant.errors import DataError

#: Canonical event columns; ``row`` is the position in the source (line number in a file,
#: row number in a table) so that any problem can be reported where the user can find it.
EVENT_COLUMNS = ("user", "item", "time", "event", "value", "row")
REQUIRED_MAPPING = ("user", "item", "time")
OPTIONAL_MAPPING = ("event", "value")
DEFAULT_EVENT = "interaction"
TIME_DTYPE = "datetime64[ns, UTC]"
#: Epoch numbers at or above this are milliseconds (as seconds they would be after the year
#: 5138): the rule ``time_unit = "auto"`` reads numbers by, wherever they come from.
EPOCH_MS_FROM = 1e11


def parse_times(values: pd.Series, unit: str = "auto") -> pd.Series:
    """Times as UTC; unparseable values become NaT (reported later, with their rows).

    ``unit`` is ``"s"`` or ``"ms"`` (epoch numbers), ``"iso"`` (ISO 8601 strings), or
    ``"auto"``: each value on its own, numbers as epoch seconds — or milliseconds when
    they are too large to be seconds (after the year 5138) — and other strings as ISO.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return _nanoseconds(pd.to_datetime(values, utc=True))
    if unit == "iso":
        return _iso_times(values)
    numbers = pd.to_numeric(values, errors="coerce")
    numbers = numbers.where(np.isfinite(numbers))
    if unit == "auto":
        numbers = numbers.where(numbers.abs() < EPOCH_MS_FROM, numbers / 1000.0)
    out = _nanoseconds(pd.to_datetime(numbers / (1000.0 if unit == "ms" else 1.0), unit="s",
                                      utc=True, errors="coerce"))
    if unit == "auto" and not pd.api.types.is_numeric_dtype(values):
        text = values.isna() | numbers.notna()
        if not text.all():
            out = out.where(text, _iso_times(values.where(~text)))
    return out


def _iso_times(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    return _nanoseconds(pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601"))


def _nanoseconds(times: pd.Series) -> pd.Series:
    """UTC times in the nanoseconds events are kept in; those before 1677 or after 2262
    become NaT like any other unusable time. pandas parses such a time ("0000-01-01",
    epoch 1e10) in a coarser unit, and converting it as it is would overflow."""
    first, last = (pd.Timestamp(t, tz="UTC") for t in (pd.Timestamp.min, pd.Timestamp.max))
    return times.where(times.between(first, last)).astype(TIME_DTYPE)


def _ids(values: pd.Series) -> pd.Series:
    """Ids as a categorical of stripped strings; blanks become missing.

    Work happens on the distinct values only: a log has far fewer ids than rows.
    """
    if pd.api.types.is_float_dtype(values):
        # Integer ids read with a missing value come back as floats: 3.0 → "3".
        values = values.astype("Int64")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = pd.Index(uniques).astype("string").str.strip()
    names = names.where(names != "", pd.NA)
    final, categories = pd.factorize(names, use_na_sentinel=True)
    mapped = np.where(codes >= 0, final[codes] if len(final) else codes, -1)
    return pd.Series(pd.Categorical.from_codes(mapped, categories=pd.Index(categories,
                                                                            dtype="string")))


def _text_categories(column: pd.Series) -> pd.Series:
    """The column with its categories as ``string``: parts built apart (an empty chunk, a
    Parquet file) may carry ``object`` or ``str`` categories, which cannot be united."""
    categories = column.cat.categories
    dtype, text = categories.dtype, pd.StringDtype()
    # ``==`` would call ``str`` and ``string`` (and their storages) equal: compare parts.
    if isinstance(dtype, pd.StringDtype) and dtype.storage == text.storage \
            and dtype.na_value is pd.NA:
        return column
    return column.cat.rename_categories(categories.astype(text))


def distinct_pairs(users: np.ndarray, items: np.ndarray,
                   n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """User and item code of each distinct (user, item) pair.

    One int64 key per event and a sort: ``np.unique`` (numpy 2.4) on millions of keys is
    tens of times slower.
    """
    key = np.sort(users * n_items + items)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key = key[first]
    return key // n_items, key % n_items


def positions(column: pd.Series, index: pd.Index) -> np.ndarray:
    """Where each id of ``column`` sits in ``index`` (-1 when outside it). An events
    column is categorical: looking up each distinct id once and taking by code costs a
    fraction of hashing ten million strings."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return index.get_indexer(column.astype("string"))
    at = np.append(index.get_indexer(column.cat.categories.astype("string")), -1)
    return at[column.cat.codes.to_numpy()]  # a null's code, -1, takes the appended -1


@dataclass(frozen=True)
class Events:
    """The interaction log: one row per (user, item, time, event type, optional value)."""

    frame: pd.DataFrame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, time_unit: str = "auto") -> Events:
        """Coerce a frame that already uses canonical column names.

        Bad values are kept as nulls rather than raised on, so that a preprocessor can drop
        them with a report, or :meth:`check` can name every offending row at once.
        """
        missing = [c for c in REQUIRED_MAPPING if c not in frame.columns]
        if missing:
            raise DataError(f"events lack column(s) {', '.join(missing)}")
        out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
        for col in ("user", "item"):
            out[col] = _ids(frame[col].reset_index(drop=True))
        out["time"] = parse_times(frame["time"].reset_index(drop=True), time_unit)
        if "event" in frame.columns:
            out["event"] = (frame["event"].reset_index(drop=True).astype("string")
                            .fillna(DEFAULT_EVENT).astype("category"))
        else:
            out["event"] = pd.Categorical([DEFAULT_EVENT] * len(frame))
        if "value" in frame.columns:
            out["value"] = pd.to_numeric(frame["value"].reset_index(drop=True),
                                         errors="coerce").astype("float64")
        else:
            out["value"] = np.nan
        if "row" in frame.columns:
            out["row"] = frame["row"].to_numpy(dtype="int64")
        else:
            out["row"] = np.arange(1, len(frame) + 1, dtype="int64")
        return cls(out)

    @classmethod
    def concat(cls, parts: Iterable[Events]) -> Events:
        frames = [p.frame for p in parts]
        if not frames:
            return cls.from_frame(pd.DataFrame({c: [] for c in REQUIRED_MAPPING}))
        columns = {}
        for col in EVENT_COLUMNS:
            if col in ("user", "item", "event"):
                columns[col] = union_categoricals([_text_categories(f[col]) for f in frames],
                                                  ignore_order=True)
            else:
                columns[col] = pd.concat([f[col] for f in frames], ignore_index=True)
        return cls(pd.DataFrame(columns))

    def __len__(self) -> int:
        return len(self.frame)

    def malformed(self) -> pd.Series:
        """Boolean mask of rows that cannot be used: null user or item, unparseable time."""
        f = self.frame
        return f["user"].isna() | f["item"].isna() | f["time"].isna()

    def check(self, origin: str) -> None:
        """Raise a :class:`DataError` naming the first bad rows, if there are any."""
        bad = self.malformed()
        if bad.any():
            f = self.frame[bad]
            reasons = []
            for col, label in (("user", "null user"), ("item", "null item"),
                               ("time", "unparseable or missing time")):
                rows = f.loc[f[col].isna(), "row"].tolist()
                if rows:
                    shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
                    reasons.append(f"{len(rows)} with {label} (rows {shown})")
            raise DataError(
                f"{origin}: {int(bad.sum())} malformed event row(s): " + "; ".join(reasons)
                + ". Fix the data, or add `[[preprocess]] plugin = \"drop-malformed\"`."
            )
        if len(self.frame) == 0:
            raise DataError(f"{origin}: no events left")

    def select(self, mask: pd.Series | np.ndarray) -> Events:
        return Events(self.frame[np.asarray(mask)].reset_index(drop=True))

    @property
    def start(self) -> pd.Timestamp:
        return self.frame["time"].min()

    @property
    def end(self) -> pd.Timestamp:
        return self.frame["time"].max()


@dataclass(frozen=True)
class Dataset:
    """Events plus optional side tables (indexed by original item / user id) and provenance.

    ``event_weights`` are weights suggested by whatever added event types of its own to the
    data (merged feedback: ``click``, ``dismiss``, …), so they count as meant without every
    extractor's table listing them; an extractor's own weights take precedence.
    """

    events: Events
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    provenance: tuple[str, ...] = ()
    event_weights: Mapping[str, float] = field(default_factory=dict)

    def with_events(self, events: Events, note: str | None = None) -> Dataset:
        prov = self.provenance + ((note,) if note else ())
        return replace(self, events=events, provenance=prov)

    def noted(self, note: str) -> Dataset:
        return replace(self, provenance=(*self.provenance, note))


@dataclass
class Features:
    """What models read: a sparse user×item matrix over fixed id indexes, plus side blocks.

    ``users`` and ``items`` fix the row and column order (original ids). ``history`` marks
    every (user, item) seen in any event, whatever its weight, for excluding seen items.
    ``now`` is the reference time: everything here comes from events before it. Extractors
    add to ``user_side`` / ``item_side`` (dense blocks, one row per user / item) or
    ``extra`` (anything else, e.g. per-window slices for temporal models).
    """

    users: pd.Index
    items: pd.Index
    now: pd.Timestamp
    dataset: Dataset
    matrix: sp.csr_matrix | None = None
    history: sp.csr_matrix | None = None
    user_side: dict[str, np.ndarray] = field(default_factory=dict)
    item_side: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Days from each user's last event to ``now`` (NaN without events): how fresh a
    #: user's history is, which decides how much it should outweigh what is trending.
    idle_days: np.ndarray | None = None

    @classmethod
    def start(cls, dataset: Dataset, now: pd.Timestamp,
              users: pd.Index | None = None, items: pd.Index | None = None) -> Features:
        """Empty features over the dataset's ids (or given ones, e.g. a model's catalogue)."""
        f = dataset.events.frame
        users = users if users is not None else pd.Index(
            pd.unique(f["user"]).astype("string"), dtype="string")
        items = items if items is not None else pd.Index(
            pd.unique(f["item"]).astype("string"), dtype="string")
        feats = cls(users=users, items=items, now=now, dataset=dataset)
        feats.history = feats.interaction_matrix(np.ones(len(f), dtype=np.float32), binary=True)
        rows, _ = feats.coordinates()
        idle = np.full(len(users), np.nan)
        if len(f):
            age = (now - f["time"]).dt.total_seconds().to_numpy() / 86400
            known = rows >= 0
            last = pd.Series(age[known]).groupby(rows[known]).min()
            idle[last.index.to_numpy()] = last.to_numpy()
        feats.idle_days = idle
        return feats

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.users), len(self.items)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column index of every event; -1 where the id is outside the indexes."""
        f = self.dataset.events.frame
        return positions(f["user"], self.users), positions(f["item"], self.items)

    def interaction_matrix(self, weights: np.ndarray, binary: bool = False,
                           reduce: str = "sum") -> sp.csr_matrix:
        """Sum (or max) per-event ``weights`` into a user×item CSR over these indexes."""
        rows, cols = self.coordinates()
        keep = (rows >= 0) & (cols >= 0) & (weights != 0)
        rows, cols, w = rows[keep], cols[keep], weights[keep].astype(np.float32)
        if reduce == "max" and len(w):
            key = rows.astype(np.int64) * len(self.items) + cols
            order = np.lexsort((w, key))
            key, w = key[order], w[order]
            last = np.r_[key[1:] != key[:-1], True]
            rows, cols, w = (key[last] // len(self.items)).astype(np.int64), \
                key[last] % len(self.items), w[last]
        m = sp.csr_matrix((w, (rows, cols)), shape=self.shape, dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m


@dataclass(frozen=True)
class Recommendations:
    """Top-k per user: columns ``user, item, rank, score`` (original ids, rank from 1)."""

    frame: pd.DataFrame

    COLUMNS = ("user", "item", "rank", "score")

    def for_user(self, user: str) -> pd.DataFrame:
        return self.frame[self.frame["user"] == str(user)]

    def lists(self) -> dict[str, list[str]]:
        """User → items in rank order, for metrics."""
        ordered = self.frame.sort_values(["user", "rank"], kind="stable")
        users = ordered["user"].to_numpy(dtype=object)
        items = ordered["item"].to_numpy(dtype=object)
        cuts = np.flatnonzero(users[1:] != users[:-1]) + 1
        return {users[start]: part.tolist() for start, part in
                zip(np.r_[0, cuts], np.split(items, cuts), strict=True) if len(part)}
