"""Tables of the run store. One database holds every run and the feedback on its lists."""

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
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

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

#: Feedback event times keep microseconds on every backend (MySQL's DATETIME drops them
#: unless told), so a stored key reads back equal to the one written.
_EVENT_TIME = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")

#: What shoppers did with a run's recommendations (see :mod:`penchant.feedback`). The
#: natural key (run, user, item, kind, time) is unique, so importing or replaying the same
#: events again stores nothing twice.
feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("user", String(200), nullable=False),
    Column("item", String(200), nullable=False),
    #: impression | click | add-to-cart | purchase | dismiss | thumbs-up | thumbs-down
    Column("kind", String(20), nullable=False),
    #: When it happened, in UTC.
    Column("time", _EVENT_TIME, nullable=False),
    #: The position the item was shown at (1 = first), when known.
    Column("rank", Integer),
    Column("note", Text),
    #: What recorded it: "import FILE", "replay of run N", …
    Column("origin", String(200)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    #: Time before user: feedback arrives roughly in time order, so a batch adds to the
    #: end of this index instead of to a page per user, and the index also serves
    #: lookups by run and time range.
    UniqueConstraint("run_id", "time", "user", "item", "kind", name="uq_feedback_event"),
)
