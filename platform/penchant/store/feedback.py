"""Feedback rows in the run store: written idempotently, read back by run.

Idempotence rests on the natural key (run, user, item, kind, time), unique in the table: a
batch is first inserted as it is, in one transaction, which the constraint refuses whole if
any of its keys is stored already. Only then, in a second transaction, are the stored keys
looked up and skipped. So new events (the usual case) cost no lookup, and a batch imported
twice, or a re-run after a crash that committed half a file, stores each event once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from penchant.store import schema

Key = tuple[int, str, str, str, datetime]

#: Users looked up per query when finding stored keys (well under any backend's limit on
#: bound parameters).
_USERS_PER_QUERY = 500


def natural_key(row: Mapping[str, Any]) -> Key:
    """What makes a feedback event the same event; times compared as naive UTC, the way
    every backend hands them back."""
    return (int(row["run_id"]), str(row["user"]), str(row["item"]), str(row["kind"]),
            _naive_utc(row["time"]))


def insert_new(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Insert, in one transaction, the rows whose natural key is not stored yet (nor
    repeated earlier in ``rows``); return those rows."""
    if not rows:
        return []
    first: dict[Key, Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(natural_key(row), row)
    unique = [dict(row) for row in first.values()]
    try:
        with engine.begin() as conn:
            conn.execute(insert(schema.feedback), unique)
        return unique
    except IntegrityError:
        pass  # some key is stored already (or another writer raced this one)
    with engine.begin() as conn:
        stored = _stored_keys(conn, unique)
        fresh = [row for row in unique if natural_key(row) not in stored]
        if fresh:
            conn.execute(insert(schema.feedback), fresh)
    return fresh


def select_rows(engine: Engine, runs: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Stored feedback, oldest first; of the given runs only, when ``runs`` is not None."""
    table = schema.feedback
    query = select(table).order_by(table.c.time, table.c.id)
    if runs is not None:
        query = query.where(table.c.run_id.in_([int(r) for r in runs]))
    with engine.connect() as conn:
        out = [dict(r._mapping) for r in conn.execute(query)]
    for row in out:
        row["time"] = _aware_utc(row["time"])
    return out


def _stored_keys(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[Key]:
    """Keys among the stored feedback that ``rows`` could collide with: same run, same
    users, within the batch's time range."""
    table = schema.feedback
    by_run: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(int(row["run_id"]), []).append(row)
    found: set[Key] = set()
    for run_id, group in by_run.items():
        times = [_aware_utc(r["time"]) for r in group]
        users = sorted({str(r["user"]) for r in group})
        for start in range(0, len(users), _USERS_PER_QUERY):
            query = select(table.c.run_id, table.c.user, table.c.item, table.c.kind,
                           table.c.time).where(
                (table.c.run_id == run_id) & (table.c.time >= min(times))
                & (table.c.time <= max(times))
                & table.c.user.in_(users[start:start + _USERS_PER_QUERY]))
            found.update(natural_key(r._mapping) for r in conn.execute(query))
    return found


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _aware_utc(value: datetime) -> datetime:
    """SQLite hands times back naive; they were written as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
