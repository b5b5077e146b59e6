"""Tables of the run store. One database holds every run (and, later, feedback)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("model", String(100), nullable=False),
    #: running | finished | failed | interrupted | cancelled
    Column("status", String(20), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("pid", Integer),
    Column("host", String(200)),
    Column("out_dir", Text),
    #: The pipeline as TOML with ${env:…} references unresolved: never a secret.
    Column("pipeline", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("summary", JSON),
    Column("error", Text),
)

metrics = Table(
    "metrics", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    #: The pipeline's model or a baseline's name.
    Column("model", String(100), primary_key=True),
    Column("horizon", String(20), primary_key=True),
    Column("metric", String(50), primary_key=True),
    Column("value", Float),
)

losses = Table(
    "losses", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(100), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("term", String(50), primary_key=True),
    Column("value", Float),
)

artifacts = Table(
    "artifacts", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("path", Text, nullable=False),
)

#: Where an incremental source stopped reading: its high-water mark and the events read so
#: far (a Parquet file), keyed by a hash of what identifies the source's data. No URL or
#: credential is kept: the key is a hash, the mark a time value.
source_marks = Table(
    "source_marks", metadata,
    Column("key", String(64), primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="SET NULL")),
    Column("mark", JSON, nullable=False),
    Column("events_path", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("saved_at", DateTime(timezone=True), nullable=False),
)
