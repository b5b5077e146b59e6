"""The ``mongodb`` source: events (and side tables) from MongoDB collections.

Documents are read from one cursor in ``_id`` order, so a document's ordinal (``row``) is the
same from run to run and a bad one is named by its ``_id``, which the user can look up. Only
the mapped fields travel: the projection, the user's ``filter`` and, where the stored times
allow it, the ``since``/``until`` window go to the server. The window is pushed down only for
the type the times are stored as (BSON dates or epoch numbers, judged from one document):
comparing text on the server would not match what the builder parses, and the builder keeps
the exact window anyway. Documents whose time is missing, null or text still come back, so
they are reported as bad rows rather than silently left on the server.

Nested fields are mapped by dotted path (``time = "event.ts"``) and walked per document;
BSON dates are UTC whatever ``time_unit`` says, ObjectIds and other BSON types become text.
pymongo is imported lazily: the source registers (and says what to install) without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from penchant import (
    EPOCH_MS_FROM,
    DataError,
    Dataset,
    Events,
    Param,
    PipelineError,
    PluginError,
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

#: Documents whose fields make up :meth:`MongoSource.available_columns`.
SAMPLE = 100
#: Query operators that run JavaScript on the server: a filter is data, never code.
_CODE_OPERATORS = ("$where", "$function", "$accumulator")
#: What MongoDB forbids in a database name; collection names may not hold "$" or NUL, nor
#: start with "system." (the server's own collections).
_BAD_DATABASE = set('/\\. "$*<>:|?\0')
_SCHEMES = ("mongodb://", "mongodb+srv://")
_AUTH_CODES = {13, 18}  # Unauthorized, AuthenticationFailed


def _pymongo() -> Any:
    try:
        import pymongo
    except ImportError:
        raise PluginError("the mongodb source needs pymongo: pip install 'penchant[mongodb]' "
                          "(or pip install pymongo)") from None
    return pymongo


class MongoSource(Source):
    """Events from one MongoDB collection, read in ``_id`` order in chunks."""

    name = "mongodb"
    description = ("Events (and item/user tables) from MongoDB collections; nested fields "
                   "mapped by dotted path")
    params = (
        Param("uri", "str", required=True, secret=True,
              help="connection string, e.g. \"mongodb://shop:${env:SHOP_MONGO_PASSWORD}@db:"
                   "27017\", or the whole of it from the environment: \"${env:SHOP_MONGO_URI}\""),
        Param("database", "str", required=True, help="database holding the collections"),
        Param("collection", "str", required=True, help="collection of event documents"),
        Param("filter", "str", None,
              help="a query document as JSON, run on the server, e.g. "
                   "'{\"country\": \"FR\"}' (MongoDB extended JSON such as {\"$oid\": …} "
                   "allowed)"),
        Param("chunk_size", "int", 50_000, min=1,
              help="documents fetched and checked at a time; lower it to use less memory"),
        Param("timeout_ms", "int", 5000, min=1,
              help="how long to look for a reachable server before giving up (ms)"),
    )

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: Any = None) -> None:
        super().__init__(params, where, base_dir)
        self.where = where or f"[{self.name}]"
        uri = self.params.uri
        # An empty URI is the pipeline validator's stand-in for "${env:NAME}": not checked.
        if uri and not uri.startswith(_SCHEMES):
            raise PipelineError(f"{self.where}: key 'uri' must be a MongoDB connection string "
                                f"(mongodb://… or mongodb+srv://…), got {mask_url(uri)!r}")
        self.query = self._parse_filter(self.params["filter"])
        check_side_table_specs(self.params, self.where, "table",
                               "collections of the same database", "{kind}")
        self._check_names()

    def _check_names(self) -> None:
        """Names that the server would read as something else (an operator, a system
        collection, another database) are refused before anything is sent."""
        p = self.params
        if p.database and (_BAD_DATABASE & set(p.database)):
            raise PipelineError(f"{self.where}: key 'database': {p.database!r} is not a "
                                "database name (no spaces, dots, slashes, $ or quotes)")
        tables = {"collection": p.collection} | {
            f"{kind}.table": p[kind]["table"] for kind in ("items", "users") if p[kind]}
        for key, name in tables.items():
            if "$" in name or "\0" in name or name.startswith("system."):
                raise PipelineError(f"{self.where}: key {key!r}: {name!r} is not a collection "
                                    "name (no $, not system.…)")
        for key, path in p.columns.items():
            if any(not part or part.startswith("$") or "\0" in part
                   for part in path.split(".")):
                raise PipelineError(f"{self.where}: key 'columns.{key}': {path!r} is not a "
                                    "field path (dotted names, none empty or starting "
                                    "with $)")

    def _parse_filter(self, text: str | None) -> dict[str, Any]:
        # Empty is also the validator's stand-in for an env reference: no filter.
        if text is None or not text.strip():
            return {}
        _pymongo()
        from bson import json_util
        try:
            query = json_util.loads(text)
        except Exception as exc:  # JSON syntax, or extended JSON bson refuses ({"$oid": 1})
            raise PipelineError(f"{self.where}: key 'filter' is not a valid JSON document: "
                                f"{exc}") from None
        if not isinstance(query, dict):
            raise PipelineError(f"{self.where}: key 'filter' must be a JSON object, e.g. "
                                f"'{{\"country\": \"FR\"}}', got {json.dumps(text)}")
        code = _code_operator(query)
        if code:
            raise PipelineError(f"{self.where}: key 'filter' uses {code}, which runs "
                                "JavaScript on the server; write the condition with query "
                                "operators ($eq, $in, $expr …)")
        return query

    # -- naming and connecting --------------------------------------------------------------

    def describe_origin(self) -> str:
        return self._origin(self.params.collection)

    def _origin(self, collection: str) -> str:
        return f"{mask_url(self.params.uri)} {self.params.database}.{collection}"

    def _scrub(self, text: str) -> str:
        """The last line of defence: drivers may quote the URI or its parts back."""
        uri = self.params.uri
        text = text.replace(uri, mask_url(uri)) if uri else text
        return scrub(text, [url_password(uri) or ""])

    def _message(self, exc: BaseException) -> str:
        text = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
        return self._scrub(" ".join(text.split()))[:500]

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """A client that reached the server, and pymongo's errors as the user's to fix.

        Chained causes are dropped (``from None``): a traceback printed somewhere else must
        not carry a driver message with the password in it.
        """
        pymongo = _pymongo()
        errors = pymongo.errors
        timeout = self.params.timeout_ms
        origin = self.describe_origin()
        try:
            client = pymongo.MongoClient(self.params.uri, serverSelectionTimeoutMS=timeout,
                                         connectTimeoutMS=timeout, appname="penchant")
        except (errors.PyMongoError, ValueError, TypeError) as exc:
            raise PipelineError(f"{self.where}: key 'uri' ({mask_url(self.params.uri)}) is "
                                f"not a usable MongoDB connection string: "
                                f"{self._message(exc)}") from None
        try:
            try:
                client.admin.command("ping")
            except errors.OperationFailure as exc:
                raise DataError(f"{origin}: the server refused the login (check the user and "
                                f"password in `uri`): {self._message(exc)}") from None
            except errors.PyMongoError as exc:
                raise DataError(f"{origin}: cannot reach the server within timeout_ms = "
                                f"{timeout}: {self._message(exc)}") from None
            except Exception as exc:  # a driver failure mid-handshake is a failed connection
                raise DataError(f"{origin}: cannot connect to the server "
                                f"({type(exc).__name__}: {self._message(exc)})") from None
            try:
                yield client
            except errors.OperationFailure as exc:
                raise DataError(self._refusal(exc)) from None
            except errors.PyMongoError as exc:
                raise DataError(f"{origin}: {type(exc).__name__}: {self._message(exc)}"
                                ) from None
        finally:
            client.close()

    def _refusal(self, exc: Any) -> str:
        origin = self.describe_origin()
        if getattr(exc, "code", None) in _AUTH_CODES:
            return (f"{origin}: the user in `uri` may not read database "
                    f"{self.params.database!r}: {self._message(exc)}")
        if self.query:
            return (f"{origin}: the server refused the query; check key 'filter' "
                    f"({self.params['filter']}): {self._message(exc)}")
        return f"{origin}: the server refused the query: {self._message(exc)}"

    # -- fields -----------------------------------------------------------------------------

    def available_columns(self) -> list[str]:
        with self._connect() as client:
            return self._fields(client[self.params.database][self.params.collection])

    def _fields(self, collection: Any) -> list[str]:
        """Dotted paths of every field in the first documents the read will see (the whole
        collection's when ``filter`` matches none, so a mapping can still be checked)."""
        sample = list(collection.find(self.query, limit=SAMPLE))
        if not sample and self.query:
            sample = list(collection.find({}, limit=SAMPLE))
        if not sample:
            raise DataError(self._empty(collection.database, self.params.collection))
        paths: dict[str, None] = {}
        for doc in sample:
            _collect_paths(doc, "", paths)
        return list(paths)

    def _empty(self, database: Any, name: str) -> str:
        origin = self._origin(name)
        names = sorted(database.list_collection_names())
        if name not in names:
            there = ", ".join(map(repr, names)) if names else "none"
            return (f"{origin}: no collection {name!r} in database {self.params.database!r} "
                    f"(its collections: {there})")
        return f"{origin}: the collection holds no documents"

    def _check_mapping(self, fields: list[str]) -> None:
        missing = [f"columns.{key} = {path!r}" for key, path in self.params.columns.items()
                   if path not in fields]
        if missing:
            raise DataError(f"{self.describe_origin()}: no field for {'; '.join(missing)}; "
                            f"the first {SAMPLE} documents have "
                            f"{', '.join(map(repr, fields))}")

    # -- events -----------------------------------------------------------------------------

    def load(self, ctx: Context) -> Dataset:
        with self._connect() as client:
            database = client[self.params.database]
            collection = database[self.params.collection]
            self._check_mapping(self._fields(collection))
            events = self._read_events(collection, ctx)
            items = self._side_table(database, "items")
            users = self._side_table(database, "users")
        return Dataset(events, items=items, users=users,
                       provenance=(f"mongodb: {len(events)} events from "
                                   f"{self.describe_origin()}",))

    def sample(self, ctx: Context, rows: int) -> Dataset:
        """The first ``rows`` documents in ``_id`` order (within the window), and the side
        tables."""
        with self._connect() as client:
            database = client[self.params.database]
            collection = database[self.params.collection]
            self._check_mapping(self._fields(collection))
            events = self._read_events(collection, ctx, limit=max(rows, 0))
            return Dataset(events, items=self._side_table(database, "items"),
                           users=self._side_table(database, "users"))

    def count(self) -> int | None:
        with self._connect() as client:
            collection = client[self.params.database][self.params.collection]
            window = self._window_filter(collection)
            return int(collection.count_documents(_all_of(self.query, window)))

    def _read_events(self, collection: Any, ctx: Context, limit: int | None = None
                     ) -> Events:
        unit = self.params.time_unit
        query = _all_of(self.query, self._window_filter(collection))
        total = self._count(collection, query)
        builder = self.events_builder(ctx, self.describe_origin(), row_name="_id",
                                      total=total if limit is None else min(total, limit),
                                      time_unit=unit)
        if limit == 0:  # pymongo reads a limit of 0 as "no limit"
            return builder.finish()
        columns = self.params.columns
        getters = {key: _getter(path) for key, path in columns.items()}
        size = self.params.chunk_size if limit is None else min(self.params.chunk_size, limit)
        done = 0
        with collection.find(query, _projection(columns.values()), batch_size=size,
                             limit=limit or 0).sort("_id", 1) as cursor:
            while docs := list(islice(cursor, size)):
                raw, labels = self._canonical(docs, getters, unit, first_row=done + 1)
                builder.add(raw, labels=labels, consumed=len(docs))
                done += len(docs)
        return builder.finish()

    def _count(self, collection: Any, query: dict[str, Any]) -> int:
        """The progress total: a guess is enough, so a count the server refuses is 0."""
        errors = _pymongo().errors
        try:
            if query:
                return int(collection.count_documents(query, maxTimeMS=self.params.timeout_ms))
            return int(collection.estimated_document_count())
        except errors.OperationFailure:
            return 0

    def _window_filter(self, collection: Any) -> dict[str, Any] | None:
        """The window as a query on the type the times are stored as, if it can be one.

        One document's time decides the type. Values of the pushed type outside the window
        stay on the server; missing, null and text times come back to be checked.
        """
        unit = self.params.time_unit
        since, until = self.window()
        if since is None and until is None:
            return None
        path = self.params.columns["time"]
        probe = _all_of(self.query, {path: {"$exists": True, "$ne": None}})
        doc = collection.find_one(probe, _projection([path]), sort=[("_id", 1)])
        sample = _getter(path)(doc) if doc is not None else None
        if isinstance(sample, datetime):
            bound: Callable[[pd.Timestamp], Any] = lambda t: t.to_pydatetime()  # noqa: E731
        elif isinstance(sample, int | float) and not isinstance(sample, bool) and unit != "iso":
            in_ms = unit == "ms" or (unit == "auto" and abs(sample) > EPOCH_MS_FROM)
            scale = 1e6 if in_ms else 1e9
            bound = lambda t: t.value / scale  # noqa: E731
        else:
            return None
        window = {}
        if since is not None:
            window["$gte"] = bound(since)
        if until is not None:
            window["$lt"] = bound(until)
        # {path: {"$in": [None]}} is {path: None} (null or missing); some servers that speak
        # the protocol match only missing fields with the latter inside an $or.
        return {"$or": [{path: window}, {path: {"$in": [None]}},
                              {path: {"$type": "string"}}]}

    def _canonical(self, docs: list[dict[str, Any]],
                   getters: dict[str, Callable[[Any], Any]], unit: str,
                   first_row: int) -> tuple[pd.DataFrame, list[str]]:
        """One chunk under canonical names, and each document's ``_id`` as text."""
        labels = [_text(doc.get("_id")) or "" for doc in docs]
        frame: dict[str, Any] = {}
        for key, get in getters.items():
            values = [get(doc) for doc in docs]
            self._check_values(key, values, labels)
            if key == "time":
                frame[key] = _times(values, unit)
            elif key == "value":
                frame[key] = pd.Series([_number(v) for v in values], dtype=object)
            else:
                frame[key] = pd.Series([_text(v) for v in values], dtype=object)
        frame["row"] = np.arange(first_row, first_row + len(docs), dtype="int64")
        return pd.DataFrame(frame), labels

    def _check_values(self, key: str, values: list[Any], labels: list[str]) -> None:
        """A document or an array where a value belongs means the mapping points one level
        too high: every document is likely alike, so this stops whatever ``on_error`` says."""
        for value, label in zip(values, labels, strict=True):
            if isinstance(value, dict | list):
                path = self.params.columns[key]
                what, hint = ("a document", f"{path}.<field>") if isinstance(value, dict) \
                    else ("an array", f"{path}.0")
                raise DataError(f"{self.describe_origin()}: field {path!r} (columns.{key}) "
                                f"holds {what}, not a value, in _id {label}; map a field "
                                f"inside it, e.g. {key} = {hint!r}")

    # -- side tables ------------------------------------------------------------------------

    def _side_table(self, database: Any, kind: str) -> pd.DataFrame | None:
        spec = self.params[kind]
        if spec is None:
            return None
        name = spec["table"]
        id_field = spec.get("id", self.params.columns[SIDE_TABLE_IDS[kind]])
        records = [_flatten(doc) for doc in database[name].find().sort("_id", 1)]
        if not records:
            raise DataError(self._empty(database, name))
        table = pd.DataFrame.from_records(records)
        if id_field != "_id":
            table = table.drop(columns="_id", errors="ignore")
        for column in table.columns:
            series = table[column]
            if pd.api.types.is_datetime64_dtype(series) and series.dt.tz is None:
                table[column] = series.dt.tz_localize("UTC")  # BSON dates are UTC
        return index_by_id(table, id_field, SIDE_TABLE_IDS[kind], self._origin(name),
                           first_row=1, row_name="document")


# -- documents to values ----------------------------------------------------------------------

_MISSING = object()


def _code_operator(value: Any) -> str | None:
    """The first operator in a query document that runs code on the server, if any."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in _CODE_OPERATORS:
                return key
            if found := _code_operator(inner):
                return found
    elif isinstance(value, list):
        return next(filter(None, map(_code_operator, value)), None)
    return None


def _getter(path: str) -> Callable[[Any], Any]:
    """A function reading ``path`` from a document: the key itself when present (a flat
    field with a dot in its name, or a projection returned flattened), else the walk."""
    parts = path.split(".")

    def get(doc: Any) -> Any:
        value = doc.get(path, _MISSING)
        if value is not _MISSING:
            return value
        value = doc
        for part in parts:
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return None
        return value

    return get


def _projection(paths: Any) -> dict[str, int]:
    """Mapped paths only; a path inside another mapped one is dropped (servers refuse
    projections whose paths collide)."""
    unique = sorted(set(paths))
    return {p: 1 for p in unique if not any(p.startswith(q + ".") for q in unique)}


def _all_of(*queries: dict[str, Any] | None) -> dict[str, Any]:
    parts = [q for q in queries if q]
    return {} if not parts else parts[0] if len(parts) == 1 else {"$and": parts}


def _collect_paths(doc: dict[str, Any], prefix: str, out: dict[str, None]) -> None:
    for key, value in doc.items():
        path = f"{prefix}{key}"
        out.setdefault(path)
        if isinstance(value, dict):
            _collect_paths(value, f"{path}.", out)


def _flatten(doc: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    out = {} if out is None else out
    for key, value in doc.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """Python scalars as they are; other BSON types (ObjectId, Decimal128, UUID) as text."""
    if value is None or isinstance(value, str | int | float | datetime | list):
        return value
    if hasattr(value, "to_decimal"):  # Decimal128
        return float(value.to_decimal())
    return str(value)


def _text(value: Any) -> str | None:
    """An id or event type as text, the way a CSV export would write it (3.0 → "3")."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str):
        return float(value) if isinstance(value, bool) else value
    if hasattr(value, "to_decimal"):  # Decimal128
        return float(value.to_decimal())
    return str(value)  # reported as not a number


def _times(values: list[Any], unit: str) -> pd.Series:
    """BSON dates (naive UTC) are times whatever ``time_unit`` says; anything else is left
    for the builder to parse. In a chunk that mixes dates with other values, the dates are
    written the way ``unit`` reads them."""
    dates = [isinstance(v, datetime) for v in values]
    if any(dates):
        if all(d or v is None for d, v in zip(dates, values, strict=True)):
            try:
                return pd.Series(pd.to_datetime(values, utc=True))
            except (OverflowError, ValueError):  # outside pandas' range: reported as bad
                pass
        values = [_date_as(v, unit) if d else v for v, d in zip(values, dates, strict=True)]
    return pd.Series([v if v is None or isinstance(v, str | int | float) else str(v)
                      for v in values])


def _date_as(value: datetime, unit: str) -> Any:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if unit in ("s", "ms"):
        seconds = (aware - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
        return seconds * 1000 if unit == "ms" else seconds
    return aware.isoformat()
