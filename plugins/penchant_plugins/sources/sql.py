"""The ``sql`` source: events (and side tables) from any database SQLAlchemy reaches.

A table or a read-only query is read in chunks from a server-side cursor, so memory follows
the chunk, not the table. Only the mapped columns are selected; the time window and, for
incremental reads, the high-water mark go into the WHERE clause when the time column holds
numbers or date-times (text times are filtered after parsing). Table and column names are
checked against the database's own catalogue and values are bound parameters: nothing from
the pipeline is pasted into SQL except a query the user wrote, which must be one SELECT and
runs in a read-only session where the database offers one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from penchant import (
    EPOCH_MS_FROM,
    DataError,
    Dataset,
    Events,
    Param,
    PipelineError,
    Source,
    mask_url,
)
from penchant.secrets import scrub, url_password
from penchant_plugins.sources._side_tables import (
    SIDE_TABLE_IDS,
    check_side_table_specs,
    index_by_id,
)

if TYPE_CHECKING:
    from penchant import Context, ParamValues

_READ_ONLY_QUERY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
#: Comments (kept: their text is checked too, but quotes inside them open nothing),
#: then string literals and quoted names (blanked: their text is data, not SQL).
_TOKENS = re.compile(r"(--[^\n]*|#[^\n]*|/\*.*?\*/)|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|"
                     r"`(?:[^`]|``)*`", re.DOTALL)
#: Words that write, or read or write outside the database, wherever they stand in a
#: query: a WITH … DELETE, a SELECT … INTO OUTFILE, a FOR UPDATE lock.
_WRITES = re.compile(r"\b(insert|update|delete|merge|upsert|drop|alter|create|truncate|"
                     r"grant|revoke|into|attach|detach|pragma|outfile|dumpfile|"
                     r"load_extension|lo_export|lo_import)\b", re.IGNORECASE)
#: How each database is told that a session only reads.
_READ_ONLY_SESSION = {
    "sqlite": "PRAGMA query_only = ON",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
}
_DRIVERS = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql"}


class SqlSource(Source):
    """Events from a database table or query, read in chunks, optionally incrementally."""

    name = "sql"
    description = ("Events (and item/user tables) from a database table or read-only query: "
                   "MySQL/MariaDB, PostgreSQL, SQLite or any SQLAlchemy URL")
    params = (
        Param("url", "str", required=True, secret=True,
              help="SQLAlchemy URL, e.g. \"mysql+pymysql://shop:${env:SHOP_DB_PASSWORD}@db/"
                   "shop\", or the whole URL from the environment: \"${env:SHOP_DB_URL}\""),
        Param("table", "str", help="table or view to read (\"schema.table\" allowed)"),
        Param("query", "str", help="a read-only SELECT to read instead of a table"),
        Param("key", "str",
              help="column that names a row in messages and orders the read; by default "
                   "the table's primary key"),
        Param("chunk_size", "int", 100_000, min=1,
              help="rows fetched at a time; lower it to use less memory while loading"),
        Param("incremental", "bool", False,
              help="read only rows newer than the last run's high-water mark and add them "
                   "to the events read then"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: Any = None) -> None:
        super().__init__(params, where, base_dir)
        where = where or f"[{self.name}]"
        if (self.params.table is None) == (self.params.query is None):
            raise PipelineError(f"{where}: give exactly one of `table` or `query`")
        #: The query without the trailing semicolon a subquery cannot have.
        self.query = (self.params.query or "").strip().rstrip(";").strip() or None
        if self.query is not None:
            _check_read_only(self.query, where)
        check_side_table_specs(self.params, where, "table", "the same database", "{kind}")
        self.origin = f"{mask_url(self.params.url)} " + (
            f"table {self.params.table}" if self.params.table else "query")

    def describe_origin(self) -> str:
        return self.origin

    # -- connecting ----------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A read-only connection; any database error leaves as a :class:`DataError` that
        names the masked URL and never the password."""
        engine = self._engine()
        try:
            with self._errors(), engine.connect() as conn:
                statement = _READ_ONLY_SESSION.get(engine.dialect.name)
                if statement:
                    conn.exec_driver_sql(statement)
                    conn.commit()
                yield conn
        finally:
            engine.dispose()

    def _engine(self) -> Engine:
        try:
            url = sa.engine.make_url(self.params.url)
        except sa.exc.ArgumentError:
            raise PipelineError(f"[source] key 'url': {mask_url(self.params.url)!r} is not a "
                                "SQLAlchemy URL such as \"sqlite:///shop.db\" or "
                                "\"mysql+pymysql://user:${env:PW}@host/db\"") from None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            url = url.set(database=str(self.resolve_path(url.database)))
        try:
            return sa.create_engine(url)
        except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as exc:
            extra = _DRIVERS.get(url.get_backend_name())
            advice = f"pip install 'penchant[{extra}]'" if extra else "install its driver"
            raise PipelineError(f"{self.origin}: no database driver for "
                                f"{url.drivername!r} ({exc}); {advice}") from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            text = f"{type(reason).__name__}: {reason}".split("\n[SQL:")[0]
            secrets = [self.params.url, url_password(self.params.url) or ""]
            raise DataError(f"{self.origin}: {scrub(text, secrets)}") from None

    def _relation(self, conn: Connection) -> sa.FromClause:
        """The table (from the catalogue, so a wrong name is refused, not quoted into SQL)
        or the query as a subquery."""
        if self.query is not None:
            probe = sa.text(self.query).columns().subquery("penchant_query")
            names = list(conn.execute(sa.select(sa.literal_column("*")).select_from(probe)
                                      .limit(0)).keys())
            return sa.text(self.query).columns(
                *(sa.column(n) for n in names)).subquery("penchant_query")
        return self._table(conn, self.params.table)

    def _table(self, conn: Connection, name: str) -> sa.Table:
        schema, _, table = name.rpartition(".")
        inspector = sa.inspect(conn)
        if not inspector.has_table(table, schema=schema or None):
            known = inspector.get_table_names(schema=schema or None) + \
                inspector.get_view_names(schema=schema or None)
            raise DataError(f"{mask_url(self.params.url)}: no table {name!r}; it has "
                            f"{', '.join(map(repr, sorted(known))) or 'no tables'}")
        return sa.Table(table, sa.MetaData(), schema=schema or None, autoload_with=conn)

    def available_columns(self) -> list[str]:
        with self._connect() as conn:
            return list(self._relation(conn).c.keys())

    # -- loading -------------------------------------------------------------------------

    def load(self, ctx: Context) -> Dataset:
        with self._connect() as conn:
            relation = self._relation(conn)
            self._check_mapping(list(relation.c.keys()))
            key = self._key(relation)
            sample = self._sample_time(conn, relation)
            identity = self._identity(key)
            before = ctx.increments.last(identity) if (
                self.params.incremental and ctx.increments is not None) else None
            if self.params.incremental and before is None:
                ctx.log(f"load: {self.origin}: no earlier incremental read; reading everything")
            mark = _Mark.from_json(before.mark) if before else _Mark.empty(sample)
            if self.params.incremental and sample is not None and mark.kind == "text":
                raise PipelineError(f"{self.origin}: incremental reads need a time column "
                                    "stored as numbers or date-times; "
                                    f"{self.params.columns['time']!r} holds text")
            statement = self._select(relation, key, sample, mark)
            offset = int(before.events.frame["row"].max()) if before and len(before.events) \
                else 0
            new, mark = self._read(conn, statement, key, ctx, offset, mark)
            items, users = self._side_table(conn, "items"), self._side_table(conn, "users")
        events = Events.concat([before.events, new]) if before else new
        note = f"sql: {len(new)} events from {self.origin}"
        if before:
            note += f" after the mark {mark.value!r} of run {before.run_id}, " \
                    f"added to {len(before.events)} read before"
            ctx.report["incremental"] = {"read_before": len(before.events),
                                         "new": len(new), "run": before.run_id}
        if self.params.incremental and ctx.increments is not None and mark.value is not None:
            ctx.increments.save(identity, events, mark.to_json())
        return Dataset(events, items=items, users=users, provenance=(note,))

    def sample(self, ctx: Context, rows: int) -> Dataset:
        with self._connect() as conn:
            _, key, statement = self._plain_select(conn)
            events = self._read(conn, statement.limit(rows), key, ctx, 0, _Mark.empty(None))[0]
            return Dataset(events, items=self._side_table(conn, "items"),
                           users=self._side_table(conn, "users"))

    def count(self) -> int | None:
        with self._connect() as conn:
            _, _, statement = self._plain_select(conn)
            return int(conn.execute(sa.select(sa.func.count()).select_from(
                statement.order_by(None).subquery())).scalar())

    def _plain_select(self, conn: Connection) -> tuple[sa.FromClause, str | None, sa.Select]:
        """The relation, its key and the window's SELECT, without any incremental mark."""
        relation = self._relation(conn)
        self._check_mapping(list(relation.c.keys()))
        key = self._key(relation)
        sample = self._sample_time(conn, relation)
        return relation, key, self._select(relation, key, sample, _Mark.empty(sample))

    def _check_mapping(self, columns: list[str]) -> None:
        missing = [f"columns.{k} = {c!r}" for k, c in self.params.columns.items()
                   if c not in columns]
        if missing:
            raise DataError(f"{self.origin}: no column for {'; '.join(missing)}; it has "
                            f"{', '.join(map(repr, columns))}")

    def _key(self, relation: sa.FromClause) -> str | None:
        if self.params.key is not None:
            if self.params.key not in relation.c:
                raise DataError(f"{self.origin}: key column {self.params.key!r} not found; "
                                f"it has {', '.join(map(repr, relation.c.keys()))}")
            return self.params.key
        primary = list(relation.primary_key.columns.keys()) \
            if isinstance(relation, sa.Table) else []
        return primary[0] if len(primary) == 1 else None

    def _sample_time(self, conn: Connection, relation: sa.FromClause) -> Any:
        """One stored time value: its type decides what can be pushed into the query."""
        column = relation.c[self.params.columns["time"]]
        return conn.execute(sa.select(column).where(column.is_not(None)).limit(1)).scalar()

    def _identity(self, key: str | None) -> dict[str, Any]:
        p = self.params
        return {"source": self.name, "url": mask_url(p.url), "table": p.table,
                "query": p.query, "key": key, "columns": p.columns, "time_unit": p.time_unit,
                "since": p.since, "until": p.until, "on_error": p.on_error}

    def _select(self, relation: sa.FromClause, key: str | None, sample: Any,
                mark: _Mark) -> sa.Select:
        wanted = dict.fromkeys([*self.params.columns.values(), *([key] if key else [])])
        statement = sa.select(*(relation.c[c] for c in wanted))
        time = relation.c[self.params.columns["time"]]
        since, until = self.window()
        if since is not None and (bound := self._bound(sample, since)) is not None:
            statement = statement.where(time >= bound)
        if until is not None and (bound := self._bound(sample, until)) is not None:
            statement = statement.where(time < bound)
        if mark.value is not None:
            statement = statement.where(time > mark.bound(sample))
        return statement.order_by(relation.c[key]) if key else statement

    def _bound(self, sample: Any, when: pd.Timestamp) -> Any:
        """``when`` in the column's own terms, or None when a comparison in SQL could not be
        trusted (times stored as text): the builder's exact filter then does it alone."""
        if isinstance(sample, datetime):
            return when.to_pydatetime() if sample.tzinfo is not None else \
                when.tz_convert("UTC").tz_localize(None).to_pydatetime()
        if _is_number(sample) and self.params.time_unit != "iso":
            seconds = when.timestamp()
            return seconds * 1000 if self._epoch_ms(sample) else seconds
        return None

    def _epoch_ms(self, sample: Any) -> bool:
        return self.params.time_unit == "ms" or (self.params.time_unit == "auto"
                                                 and abs(float(sample)) >= EPOCH_MS_FROM)

    def _read(self, conn: Connection, statement: sa.Select, key: str | None, ctx: Context,
              offset: int, mark: _Mark) -> tuple[Events, _Mark]:
        """Stream the rows through the builder; returns the events and the new mark."""
        builder = self.events_builder(ctx, self.origin, row_name=key or "row")
        mapping = self.params.columns
        size = self.params.chunk_size
        result = conn.execution_options(stream_results=True, yield_per=size).execute(
            statement)
        names = list(result.keys())
        read = offset
        for rows in result.partitions(size):
            # Plain tuples: pandas reads a list of SQLAlchemy rows three times slower.
            chunk = pd.DataFrame.from_records(list(map(tuple, rows)), columns=names,
                                              coerce_float=True)
            frame = pd.DataFrame({k: chunk[c] for k, c in mapping.items()})
            ordinal = pd.RangeIndex(read + 1, read + 1 + len(chunk))
            labels = None
            if key is None:
                frame["row"] = ordinal
            elif pd.api.types.is_integer_dtype(chunk[key]):
                frame["row"] = chunk[key].to_numpy()
            else:
                frame["row"] = ordinal
                labels = chunk[key].astype("string").to_numpy()
            mark = mark.after(chunk[mapping["time"]])
            builder.add(frame, labels=labels)
            read += len(chunk)
        return builder.finish(), mark

    def _side_table(self, conn: Connection, kind: str) -> pd.DataFrame | None:
        spec = self.params[kind]
        if spec is None:
            return None
        table = self._table(conn, spec["table"])
        id_column = spec.get("id", self.params.columns[SIDE_TABLE_IDS[kind]])
        result = conn.execute(sa.select(table))
        frame = pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()),
                                          coerce_float=True)
        return index_by_id(frame, id_column, SIDE_TABLE_IDS[kind],
                           f"{mask_url(self.params.url)} table {spec['table']}")


def _check_read_only(query: str, where: str) -> None:
    """Refuse anything but one statement that only reads, judged on the query's SQL with
    literals and quoted names blanked out, so a ``';'`` in a value is no second statement
    and a column named "delete" no write. The read-only session is the backstop."""
    if re.search(r"\\['\"`]", query):
        # Backslash escapes mean different literals to different databases.
        raise PipelineError(f"{where}: key 'query': write a quote inside a literal doubled "
                            "('it''s'), not with a backslash")
    code = _TOKENS.sub(lambda m: m.group(1) or " ", query)
    write = _WRITES.search(code)
    if not _READ_ONLY_QUERY.match(code) or ";" in code or write:
        found = f"; it has {write.group(0)!r}" if write else \
            "; it has a second statement" if ";" in code else ""
        raise PipelineError(f"{where}: key 'query' must be one SELECT (or WITH … SELECT) "
                            f"statement{found}; the sql source only reads")


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or \
        type(value).__name__ == "Decimal"


class _Mark:
    """The largest time value read so far, in the column's own type (JSON in the store)."""

    def __init__(self, kind: str, value: Any) -> None:
        self.kind, self.value = kind, value

    @classmethod
    def empty(cls, sample: Any) -> _Mark:
        kind = "datetime" if isinstance(sample, datetime) else \
            "number" if _is_number(sample) else "text"
        return cls(kind, None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Mark:
        return cls(data["kind"], data["value"])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}

    def after(self, column: pd.Series) -> _Mark:
        """This mark moved past the values in ``column`` (a chunk's raw times)."""
        if self.kind == "text" or column.isna().all():
            return self
        if self.kind == "datetime":
            top = pd.to_datetime(column, utc=True).max()
            value = top.isoformat() if self.value is None else max(
                pd.Timestamp(self.value), top).isoformat()
        else:
            top = float(pd.to_numeric(column, errors="coerce").max())
            value = top if self.value is None else max(float(self.value), top)
        return _Mark(self.kind, value)

    def bound(self, sample: Any) -> Any:
        """The mark as a value to compare the column with."""
        if self.kind == "number":
            return self.value
        stamp = pd.Timestamp(self.value)
        return stamp.to_pydatetime() if isinstance(sample, datetime) and sample.tzinfo \
            else stamp.tz_convert("UTC").tz_localize(None).to_pydatetime()
