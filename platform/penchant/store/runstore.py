"""The run store: every run, its parameters, metrics, loss curves, artifacts and feedback.

SQLite by default (one file under ``$PENCHANT_HOME``, WAL mode so the app can read while a
run writes); any SQLAlchemy URL through ``PENCHANT_STORE`` or the ``url`` argument. Each
write is one transaction, so a crash leaves the previous state.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from penchant.errors import StoreError
from penchant.paths import inside
from penchant.secrets import mask_url
from penchant.store import feedback as feedback_rows
from penchant.store import schema

ACTIVE = "running"
ENDED = ("finished", "failed", "interrupted", "cancelled")


def penchant_home() -> Path:
    return Path(os.environ.get("PENCHANT_HOME", Path.home() / ".penchant")).expanduser()


def default_url() -> str:
    url = os.environ.get("PENCHANT_STORE")
    if url:
        return url
    return f"sqlite:///{penchant_home() / 'runs.sqlite'}"


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    model: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    out_dir: str | None
    pipeline: str
    params: dict[str, Any]
    summary: dict[str, Any] | None
    error: str | None
    pid: int | None
    host: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        try:
            sa_url = make_url(self.url)
        except Exception as exc:
            raise StoreError(f"run store URL {mask_url(self.url)!r} is not a valid "
                             f"SQLAlchemy URL: {exc}") from None
        if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "",
                                                                              ":memory:"):
            Path(sa_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(sa_url)
        if sa_url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            _create_tables(self.engine)
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot open the run store {mask_url(self.url)}: "
                             f"{type(reason).__name__}: {reason}") from None
        self.reap_stale()

    # -- writing -----------------------------------------------------------------------

    def start_run(self, name: str, model: str, pipeline_toml: str, params: Mapping[str, Any],
                  out_dir: str | None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(insert(schema.runs).values(
                name=name, model=model, status=ACTIVE, started_at=_now(), pid=os.getpid(),
                host=socket.gethostname(), out_dir=out_dir, pipeline=pipeline_toml,
                params=dict(params)))
            return int(result.inserted_primary_key[0])

    def reopen_run(self, run_id: int) -> RunRecord:
        """Mark an ended, unfinished run as running again in this process (``penchant run
        --resume``); a finished run, or one whose process is still alive, is refused."""
        self.reap_stale()
        record = self.run(run_id)
        if record.status == "finished":
            raise StoreError(f"run {run_id} finished; there is nothing to resume")
        if record.status == ACTIVE:
            raise StoreError(f"run {run_id} is still running (process {record.pid} on "
                             f"{record.host}); stop it before resuming it")
        with self.engine.begin() as conn:
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(
                status=ACTIVE, finished_at=None, error=None, pid=os.getpid(),
                host=socket.gethostname()))
        return record

    def set_out_dir(self, run_id: int, out_dir: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id)
                         .values(out_dir=out_dir))

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None,
                   error: str | None = None) -> None:
        if status not in ENDED:
            raise ValueError(f"unknown final status {status!r}")
        with self.engine.begin() as conn:
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(
                status=status, finished_at=_now(), summary=_json_safe(summary or {}),
                error=error))

    def add_losses(self, run_id: int, model: str, epoch: int,
                   values: Mapping[str, float]) -> None:
        rows = [{"run_id": run_id, "model": model, "epoch": epoch, "term": term,
                 "value": _finite(v)} for term, v in values.items()]
        with self.engine.begin() as conn:
            conn.execute(delete(schema.losses).where(
                (schema.losses.c.run_id == run_id) & (schema.losses.c.model == model)
                & (schema.losses.c.epoch == epoch)))
            if rows:
                conn.execute(insert(schema.losses), rows)

    def add_metrics(self, run_id: int, results: Mapping[str, Mapping[str, Mapping[str, float]]]
                    ) -> None:
        """``results[model][horizon][metric] = value``."""
        rows = [{"run_id": run_id, "model": model, "horizon": horizon, "metric": metric,
                 "value": _finite(value)}
                for model, by_h in results.items() for horizon, values in by_h.items()
                for metric, value in values.items()]
        with self.engine.begin() as conn:
            conn.execute(delete(schema.metrics).where(schema.metrics.c.run_id == run_id))
            if rows:
                conn.execute(insert(schema.metrics), rows)

    def add_artifacts(self, run_id: int, paths: Mapping[str, str | Path]) -> None:
        with self.engine.begin() as conn:
            for name, path in paths.items():
                conn.execute(delete(schema.artifacts).where(
                    (schema.artifacts.c.run_id == run_id) & (schema.artifacts.c.name == name)))
                conn.execute(insert(schema.artifacts).values(run_id=run_id, name=name,
                                                             path=str(path)))

    def save_source_mark(self, key: str, run_id: int | None, mark: Any, events_path: str,
                         rows: int) -> str | None:
        """Record where an incremental source stopped; returns the events file it replaces
        (for the caller to delete once this is committed), or None."""
        with self.engine.begin() as conn:
            old = conn.execute(select(schema.source_marks.c.events_path).where(
                schema.source_marks.c.key == key)).scalar()
            conn.execute(delete(schema.source_marks).where(schema.source_marks.c.key == key))
            conn.execute(insert(schema.source_marks).values(
                key=key, run_id=run_id, mark=_json_safe(mark), events_path=events_path,
                rows=rows, saved_at=_now()))
        return old if old != events_path else None

    def source_mark(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.source_marks).where(
                schema.source_marks.c.key == key)).first()
        return dict(row._mapping) if row is not None else None

    def add_feedback(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Store feedback rows in one transaction, skipping any already stored (same run,
        user, item, kind and time); returns the rows that were new. Rows are checked by
        :mod:`penchant.feedback`, which is what callers use."""
        return feedback_rows.insert_new(self.engine, rows)

    def reap_stale(self) -> int:
        """Runs still marked running whose process on this host is gone were killed
        (SIGKILL, power loss): mark them interrupted so none is shown as running forever."""
        host = socket.gethostname()
        with self.engine.begin() as conn:
            rows = conn.execute(select(schema.runs.c.id, schema.runs.c.pid).where(
                (schema.runs.c.status == ACTIVE) & (schema.runs.c.host == host))).all()
            dead = [r.id for r in rows if r.pid is None or not _pid_alive(r.pid)]
            if dead:
                conn.execute(update(schema.runs).where(schema.runs.c.id.in_(dead)).values(
                    status="interrupted", finished_at=_now(),
                    error="the process ended without recording a result (killed?)"))
        return len(dead)

    def delete_run(self, run_id: int, with_feedback: bool = False) -> RunRecord:
        """Forget a run: its record, metrics, losses, artifact list and, only when
        ``with_feedback``, the feedback shoppers gave on its lists (refused otherwise, so
        feedback meant for the next training is never lost by accident). One transaction:
        a failure leaves the run whole. The caller removes the run's files (see
        :func:`penchant.artifacts.remove_run_files`), which the store does not own."""
        self.reap_stale()
        record = self.run(run_id)
        if record.status == ACTIVE:
            raise StoreError(f"run {run_id} is still running (process {record.pid} on "
                             f"{record.host}); stop it first")
        with self.engine.begin() as conn:
            given = conn.execute(select(func.count()).select_from(schema.feedback).where(
                schema.feedback.c.run_id == run_id)).scalar_one()
            if given and not with_feedback:
                raise StoreError(f"run {run_id} has {given} feedback event(s), which the "
                                 "next training may read; delete them with the run by "
                                 "asking for it (--with-feedback)")
            conn.execute(update(schema.source_marks).where(
                schema.source_marks.c.run_id == run_id).values(run_id=None))
            for table in (schema.feedback, schema.artifacts, schema.losses, schema.metrics):
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(schema.runs).where(schema.runs.c.id == run_id))
        return record

    # -- reading -----------------------------------------------------------------------

    def runs(self, limit: int | None = None, status: str | None = None) -> list[RunRecord]:
        query = select(schema.runs).order_by(schema.runs.c.id.desc())
        if status:
            query = query.where(schema.runs.c.status == status)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [RunRecord(**row._mapping) for row in conn.execute(query)]

    def run(self, run_id: int) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).first()
        if row is None:
            raise StoreError(f"run {run_id} is not in the run store {mask_url(self.url)}")
        return RunRecord(**row._mapping)

    def metrics(self, run_id: int) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(schema.metrics).where(
                    schema.metrics.c.run_id == run_id)):
                out.setdefault(r.model, {}).setdefault(r.horizon, {})[r.metric] = r.value
        return out

    def losses(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.losses).where(schema.losses.c.run_id == run_id)
                                .order_by(schema.losses.c.model, schema.losses.c.epoch))
            return [dict(r._mapping) for r in rows]

    def feedback(self, runs: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Stored feedback rows (times in UTC), of the given runs or of all."""
        return feedback_rows.select_rows(self.engine, runs)

    def run_ids(self, ids: Iterable[int]) -> set[int]:
        """Those of ``ids`` that are runs in the store."""
        wanted = sorted({int(i) for i in ids})
        with self.engine.connect() as conn:
            return set(conn.execute(select(schema.runs.c.id).where(
                schema.runs.c.id.in_(wanted))).scalars())

    def artifacts(self, run_id: int) -> dict[str, str]:
        """Each file the run wrote, by name. Every reader (loading a model, the app, export)
        comes through here, so a path that left the run's folder is refused here."""
        with self.engine.connect() as conn:
            out_dir = conn.execute(select(schema.runs.c.out_dir).where(
                schema.runs.c.id == run_id)).scalar()
            rows = conn.execute(select(schema.artifacts).where(
                schema.artifacts.c.run_id == run_id)).all()
        if rows and not out_dir:
            raise StoreError(f"run {run_id} records files but no run folder to hold them")
        return {r.name: str(inside(out_dir, r.path, f"run {run_id} artifact {r.name!r}"))
                for r in rows}


def _create_tables(engine: Engine) -> None:
    """Create what is missing. Two processes opening a new store at once (the app and a
    headless run) can both see a table missing and both create it: the loser tries again
    and finds more of them there. SQLite commits each CREATE by itself, so every failure
    means another table or index was made: as many tries as there are of those suffice."""
    tries = 1 + sum(1 + len(table.indexes) for table in schema.metadata.tables.values())
    for attempt in range(tries):
        try:
            schema.metadata.create_all(engine)
            return
        except OperationalError as exc:
            if "already exists" not in str(exc) or attempt == tries - 1:
                raise


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The wait first: switching a new file to WAL takes a lock that another process
    # opening the same store at the same moment may hold.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value
