"""Writing a run's recommendations back where a shop can serve them: a SQL table or a
MongoDB collection, all or nothing.

SQL: one transaction: the table is created when absent, emptied first for ``replace``, and
the rows inserted in batches; a failure rolls everything back, so readers see the old lists
or the new ones. MongoDB has no multi-document transactions on a standalone server, so every
document carries its export's ``export_id``: a failed insert deletes what it wrote, and
``replace`` deletes the older exports only once the new one is complete. Until then readers
find both; a shop that must never see the two at once serves the newest ``export_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from penchant.errors import DataError, PipelineError
from penchant.secrets import mask_url, scrub, url_password

MODES = ("replace", "append")
#: Columns of the exported table, in order; ``user``/``rank`` are reserved words in SQL.
COLUMNS = ("run_id", "user_id", "item_id", "position", "score", "exported_at")
BATCH = 10_000


def export_recommendations(frame: pd.DataFrame, run_id: int, url: str, target: str,
                           mode: str = "replace", database: str | None = None) -> int:
    """Write ``frame`` (columns ``user, item, rank, score``) to ``target`` (a table, or a
    collection when ``url`` is a MongoDB URL); returns the rows written."""
    if mode not in MODES:
        raise PipelineError(f"export mode must be one of {', '.join(MODES)}, got {mode!r}")
    rows = _rows(frame, run_id)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        return _to_mongodb(rows, url, database, target, mode)
    return _to_sql(rows, url, target, mode)


def _rows(frame: pd.DataFrame, run_id: int) -> pd.DataFrame:
    now = datetime.now(UTC).replace(microsecond=0)
    return pd.DataFrame({"run_id": run_id, "user_id": frame["user"].astype(str),
                         "item_id": frame["item"].astype(str),
                         "position": frame["rank"].astype(int),
                         "score": frame["score"].astype(float), "exported_at": now},
                        columns=list(COLUMNS))


def _batches(rows: pd.DataFrame) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows.iloc[start:start + BATCH].to_dict(orient="records")


def _failure(url: str, where: str, exc: Exception) -> DataError:
    reason = getattr(exc, "orig", None) or exc
    text = f"{type(reason).__name__}: {reason}".split("\n[SQL:")[0]
    return DataError(f"{mask_url(url)} {where}: {scrub(text, [url, url_password(url) or ''])}"
                     "; nothing was written")


def _to_sql(rows: pd.DataFrame, url: str, name: str, mode: str) -> int:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise PipelineError(f"cannot connect to {mask_url(url)}: {exc}") from None
    schema, _, table_name = name.rpartition(".")
    table = sa.Table(
        table_name, sa.MetaData(), sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("item_id", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("score", sa.Float), sa.Column("exported_at", sa.DateTime, nullable=False),
        schema=schema or None)
    try:
        with engine.begin() as conn:
            inspector = sa.inspect(conn)
            if inspector.has_table(table_name, schema=schema or None):
                found = {c["name"] for c in inspector.get_columns(table_name,
                                                                  schema=schema or None)}
                if not set(COLUMNS) <= found:
                    raise DataError(f"{mask_url(url)} table {name}: exists without the "
                                    f"columns {', '.join(sorted(set(COLUMNS) - found))}; "
                                    "export to a new table or add them")
            else:
                table.create(conn)
            if mode == "replace":
                conn.execute(table.delete())
            rows = rows.assign(exported_at=rows["exported_at"].dt.tz_localize(None))
            for batch in _batches(rows):
                conn.execute(table.insert(), batch)
    except sa.exc.SQLAlchemyError as exc:
        raise _failure(url, f"table {name}", exc) from None
    finally:
        engine.dispose()
    return len(rows)


def _to_mongodb(rows: pd.DataFrame, url: str, database: str | None, name: str,
                mode: str) -> int:
    try:
        import pymongo
        from pymongo.errors import PyMongoError
    except ModuleNotFoundError:
        raise PipelineError("exporting to MongoDB needs pymongo: "
                            "pip install 'penchant[mongodb]'") from None
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=10_000, tz_aware=True)
    try:
        db = client[database] if database else client.get_default_database()
    except pymongo.errors.ConfigurationError:
        raise PipelineError(f"{mask_url(url)}: say which database to export to "
                            "(--database, or a database in the URL)") from None
    where = f"collection {db.name}.{name}"
    export_id = uuid.uuid4().hex
    target = db[name]
    try:
        try:
            for batch in _batches(rows.assign(export_id=export_id)):
                target.insert_many(batch, ordered=True)
        except BaseException:
            target.delete_many({"export_id": export_id})
            raise
        if mode == "replace":
            target.delete_many({"export_id": {"$ne": export_id}})
    except PyMongoError as exc:
        raise _failure(url, where, exc) from None
    finally:
        client.close()
    return len(rows)
