"""Feedback on recommendations: what shoppers did with the lists a run made.

Every event is tied to a run and a recommendation: ``run_id, user, item, rank`` (the
position shown, when known), ``time`` (UTC), ``kind`` (one of :data:`KINDS`) and an
optional ``note``. It is stored in the run store's ``feedback`` table, idempotently: the
same (run, user, item, kind, time) is stored once however often it is imported or replayed.

This module is the one way in and out: :func:`check` validates raw rows (naming the file,
line and column of every bad value), :func:`record` writes them one transaction per batch
and tells the ``penchant_on_feedback`` observers, :func:`read` returns them as a DataFrame,
and :func:`merge` turns them into events for a retraining run (``[feedback] merge = true``).

How feedback trains a model: every kind but ``impression`` becomes an event whose ``event``
is the kind, so the interactions extractor weighs it like any event type; the weight comes
from the extractor's own ``weights`` table when it lists the kind, else from the
pipeline's ``[feedback] weights``, else :data:`DEFAULT_WEIGHTS`. Like any event it marks
the item as seen by that user, so with ``exclude_seen`` (the default) a dismissed item is
not recommended to that user again. Dismissals and thumbs-down weigh 0 by default: that
filter is all they do, since most models read the interaction matrix as non-negative
interest. A negative weight (with the extractor's ``reduce = "sum"``, so it offsets earlier
interest) also pushes the model away, for models that accept negative entries.
Impressions are never merged: they say what was shown, not what the shopper wanted, and
as events would hide every shown item from the next lists; they are the denominators of
:mod:`penchant.feedback_report`.

A merged event carries ``row = -(its feedback id)``: source rows are never negative, which
is how a run tells feedback from the shop's own events. Feedback trains but neither moves a
quantile cutoff nor counts as what users went on to do in the test period, so runs with and
without feedback are scored on the same events.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from penchant.data import TIME_DTYPE, Dataset, Events, parse_times
from penchant.errors import DataError, PipelineError
from penchant.secrets import mask_url
from penchant.store import RunStore

#: Every kind of feedback, from seeing a recommendation to buying or rejecting it.
KINDS = ("impression", "click", "add-to-cart", "purchase", "dismiss", "thumbs-up",
         "thumbs-down")
POSITIVE = ("click", "add-to-cart", "purchase", "thumbs-up")
NEGATIVE = ("dismiss", "thumbs-down")
#: Kinds that become events when a run merges feedback (all but impressions).
MERGED = POSITIVE + NEGATIVE
#: Interaction weight of each merged kind unless the pipeline says otherwise.
DEFAULT_WEIGHTS: dict[str, float] = {"click": 1.0, "add-to-cart": 2.0, "purchase": 4.0,
                                     "thumbs-up": 2.0, "dismiss": 0.0, "thumbs-down": 0.0}
#: Columns of a feedback frame, in order.
COLUMNS = ("run_id", "user", "item", "rank", "time", "kind", "note")
#: Rows written per transaction unless told otherwise (the environment variable wins over
#: this default; an explicit ``batch`` argument over both).
DEFAULT_BATCH = 5000
BATCH_ENV = "PENCHANT_FEEDBACK_BATCH"
#: Longest user or item id the store keeps.
ID_LENGTH = 200
#: Largest run id or rank: what every backend's integer column holds (32 bits).
INTEGER_MAX = 2**31 - 1
#: Problems named in one error before the rest are only counted.
_SHOWN = 10


@dataclass
class Recorded:
    """What a write did: events newly stored, duplicates skipped, observers that failed."""

    stored: int = 0
    skipped: int = 0
    observer_errors: list[str] = field(default_factory=list)

    def add(self, other: Recorded) -> None:
        self.stored += other.stored
        self.skipped += other.skipped
        self.observer_errors += other.observer_errors


def batch_size(given: int | None = None) -> int:
    """Rows per transaction: ``given``, else ``$PENCHANT_FEEDBACK_BATCH``, else 5,000."""
    if given is None:
        text = os.environ.get(BATCH_ENV, "").strip()
        if not text:
            return DEFAULT_BATCH
        try:
            given = int(text)
        except ValueError:
            raise PipelineError(f"{BATCH_ENV}={text!r} is not a whole number") from None
    if given < 1:
        raise PipelineError(f"a feedback batch needs at least 1 row, not {given}")
    return given


def normalise_kind(value: Any) -> str:
    """``"Add_To_Cart"`` → ``"add-to-cart"``: spelling variants of a kind are one kind."""
    return str(value).strip().lower().replace("_", "-").replace(" ", "-")


def check(raw: pd.DataFrame, where: str, lines: Sequence[int] | None = None,
          run_id: int | None = None, store: RunStore | None = None) -> pd.DataFrame:
    """Validate raw feedback rows and return them typed, with :data:`COLUMNS`.

    ``raw`` holds at least ``user, item, time, kind`` (values as read: text or numbers),
    and ``run_id`` unless ``run_id`` is given, which fills rows that name no run. ``lines``
    are the rows' line numbers in ``where`` for messages. Every bad value is reported at
    once, by line and column, in one :class:`DataError`; with ``store``, runs that are not
    in it are bad values too.
    """
    raw = raw.reset_index(drop=True)
    lines = list(lines) if lines is not None else list(range(1, len(raw) + 1))
    needed = ["user", "item", "time", "kind"] + ([] if run_id is not None else ["run_id"])
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        hint = " (or give the run with --run)" if missing == ["run_id"] else ""
        raise DataError(f"{where}: column(s) {', '.join(missing)} missing{hint}; feedback "
                        f"needs {', '.join(needed)}, and may have rank and note")
    if run_id is not None and store is not None and not store.run_ids([run_id]):
        raise DataError(f"{where}: run {run_id} is not in the run store "
                        f"{mask_url(store.url)}")
    problems: list[tuple[int, str, str]] = []

    def bad(mask: pd.Series | np.ndarray, column: str, why: Any) -> None:
        for i in np.flatnonzero(np.asarray(mask)):
            value = raw[column].iloc[i] if column in raw.columns else None
            problems.append((lines[i], column, why(value) if callable(why) else why))

    out = pd.DataFrame(index=raw.index)
    out["run_id"] = _run_ids(raw, run_id, bad, store)
    for column in ("user", "item"):
        text = raw[column].astype("string").str.strip()
        bad(text.isna() | (text == ""), column, "missing")
        bad((text.str.len() > ID_LENGTH).fillna(False), column,
            f"longer than {ID_LENGTH} characters")
        out[column] = text
    out["rank"] = _ranks(raw, bad)
    written = (raw["time"].astype("string").str.strip() != "").fillna(False)
    times = parse_times(raw["time"].where(written))
    bad(times.isna(), "time", lambda v: f"{v!r} is not a time (ISO 8601 such as "
                                        "'2024-06-01T12:00:00Z', or epoch seconds)"
        if _present(v) else "missing")
    out["time"] = times.dt.floor("us")
    kinds = raw["kind"].map(lambda v: normalise_kind(v) if _present(v) else "")
    bad(~kinds.isin(KINDS), "kind",
        lambda v: f"{v!r} is not a feedback kind ({', '.join(KINDS)})" if _present(v)
        else "missing")
    out["kind"] = kinds
    note = raw["note"] if "note" in raw.columns else pd.Series(pd.NA, index=raw.index)
    out["note"] = note.astype("string").where(lambda s: s.str.strip() != "")
    if problems:
        problems.sort()
        shown = [f"{where} line {line}, column {column!r}: {why}"
                 for line, column, why in problems[:_SHOWN]]
        if len(problems) > _SHOWN:
            shown.append(f"… and {len(problems) - _SHOWN} more")
        raise DataError(f"{len(problems)} bad feedback value(s):\n  " + "\n  ".join(shown))
    return out[list(COLUMNS)]


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) \
        and value is not pd.NA and str(value).strip() != ""


def _run_ids(raw: pd.DataFrame, default: int | None, bad: Any,
             store: RunStore | None) -> pd.Series:
    given = raw["run_id"] if "run_id" in raw.columns else pd.Series(pd.NA, index=raw.index)
    present = given.map(_present).astype(bool)
    numbers = _numbers(given, present)
    whole = _counting_number(numbers)
    bad(present & ~whole, "run_id", lambda v: f"{v!r} is not a run id")
    if default is None:
        bad(~present, "run_id", "missing (or give the run with --run)")
    ids = numbers.where(whole).fillna(default if default is not None else 0).astype("int64")
    if store is not None:
        named = present & whole
        known = store.run_ids(ids[named].unique())
        bad(named & ~ids.isin(known), "run_id", lambda v: f"run {v} is not in the run store")
    return ids


def _ranks(raw: pd.DataFrame, bad: Any) -> pd.Series:
    if "rank" not in raw.columns:
        return pd.Series(pd.NA, index=raw.index, dtype="Int64")
    present = raw["rank"].map(_present).astype(bool)
    numbers = _numbers(raw["rank"], present)
    whole = _counting_number(numbers)
    bad(present & ~whole, "rank", lambda v: f"{v!r} is not a position (1 = first shown)")
    return numbers.where(whole).astype("Int64")


def _numbers(values: pd.Series, present: pd.Series) -> pd.Series:
    """The present values as numbers (NaN where not one). A JSON ``true`` is not the
    number 1 here, though Python and pandas would take it as such."""
    return pd.to_numeric(values.where(present & ~values.map(lambda v: isinstance(v, bool))
                                      .astype(bool)), errors="coerce")


def _counting_number(numbers: pd.Series) -> pd.Series:
    """Which of ``numbers`` are whole, at least 1, and fit the store's integer columns:
    infinity or 1e30 would otherwise pass as whole and fail converting to an integer."""
    return numbers.between(1, INTEGER_MAX) & (numbers == np.floor(numbers.fillna(0)))


def record(store: RunStore, frame: pd.DataFrame, origin: str, registry: Any = None,
           batch: int | None = None) -> Recorded:
    """Store checked feedback (see :func:`check`), one transaction per ``batch`` rows,
    skipping events already stored; after each commit, ``penchant_on_feedback`` observers
    get the batch's new events. An observer that raises is reported in the result, never
    raised: the events are stored by then."""
    size = batch_size(batch)
    if registry is None:
        from penchant.plugins import default_registry

        registry = default_registry()
    rows = _store_rows(frame, origin, datetime.now(UTC))
    total = Recorded()
    for start in range(0, len(rows), size):
        part = rows[start:start + size]
        new = store.add_feedback(part)
        errors = _tell(registry, new, origin) if new else []
        total.add(Recorded(len(new), len(part) - len(new), errors))
    return total


def _store_rows(frame: pd.DataFrame, origin: str, recorded_at: datetime
                ) -> list[dict[str, Any]]:
    """Checked rows as the store takes them (Python values, None for missing), built a
    column at a time: reading a frame row by row costs more than writing the rows."""
    columns = {
        "run_id": frame["run_id"].astype("int64").tolist(),
        "user": frame["user"].astype(str).tolist(),
        "item": frame["item"].astype(str).tolist(),
        "rank": [None if pd.isna(v) else int(v) for v in frame["rank"].tolist()],
        "time": list(frame["time"].dt.to_pydatetime()),
        "kind": frame["kind"].astype(str).tolist(),
        "note": [None if pd.isna(v) else str(v) for v in frame["note"].tolist()],
    }
    fixed = {"origin": origin[:200], "recorded_at": recorded_at}
    return [dict(zip(columns, values, strict=True), **fixed)
            for values in zip(*columns.values(), strict=True)]


def _tell(registry: Any, rows: list[dict[str, Any]], origin: str) -> list[str]:
    if not registry.listens("penchant_on_feedback"):
        return []
    frame = _typed(pd.DataFrame(rows))[list(COLUMNS)]
    return [f"{label}.penchant_on_feedback: {type(error).__name__}: {error}"
            for label, _, error in registry.call_each("penchant_on_feedback",
                                                      feedback=frame, origin=origin)
            if error is not None]


def read(store: RunStore, runs: Sequence[int] | None = None) -> pd.DataFrame:
    """Stored feedback, oldest first, of ``runs`` or of every run: columns ``id`` and
    :data:`COLUMNS`, then ``origin`` and ``recorded_at``; ``time`` in UTC."""
    columns = ["id", *COLUMNS, "origin", "recorded_at"]
    return _typed(pd.DataFrame(store.feedback(runs), columns=columns))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("id", "run_id"):
        if column in frame.columns:
            frame[column] = frame[column].astype("int64")
    frame["rank"] = frame["rank"].astype("Int64")
    for column in ("user", "item", "kind", "note"):
        frame[column] = frame[column].astype("string")
    for column in ("time", "recorded_at"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(TIME_DTYPE)
    return frame


def merge(dataset: Dataset, feedback: pd.DataFrame,
          weights: Mapping[str, float] | None = None) -> Dataset:
    """``dataset`` with the merged kinds of ``feedback`` (from :func:`read`) as events,
    and their weights (``weights`` over :data:`DEFAULT_WEIGHTS`) suggested to extractors."""
    if (dataset.events.frame["row"].to_numpy() < 0).any():
        raise DataError("the source numbers some rows below 0 (its row key is negative), "
                        "so merged feedback could not be told apart from them; merge "
                        "feedback only with sources whose row numbers or keys are ≥ 0")
    rows = feedback[feedback["kind"].isin(MERGED)]
    rows = rows.reset_index(drop=True)
    events = Events.from_frame(pd.DataFrame({
        "user": rows["user"], "item": rows["item"], "time": rows["time"],
        "event": rows["kind"], "row": -rows["id"].astype("int64")}))
    table = {**DEFAULT_WEIGHTS, **(weights or {})}
    merged = dataset.with_events(Events.concat([dataset.events, events]),
                                 f"+{len(rows)} feedback events")
    return replace(merged, event_weights={**dataset.event_weights,
                                          **{kind: table[kind] for kind in MERGED}})


def is_feedback(events: Events) -> np.ndarray:
    """Which events are merged feedback rather than the source's own."""
    return events.frame["row"].to_numpy() < 0


def kind_counts(events: Events) -> dict[str, int]:
    """Merged feedback events by kind."""
    kinds = events.frame["event"].astype("string")[is_feedback(events)]
    return {str(k): int(n) for k, n in kinds.value_counts().sort_index().items()}
