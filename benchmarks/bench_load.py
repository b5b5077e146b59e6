"""How fast sources load events, and how much memory loading takes.

Generates N synthetic events (int64 ids, epoch-second int64 times, a three-valued event type)
once per storage format, then loads them with the matching source in a fresh subprocess per
(case, chunk size), so each peak RSS is that load's alone. The peak just before the load
starts ("baseline") is what the interpreter and libraries cost by themselves.

    python benchmarks/bench_load.py [--events 10000000] [--folder DIR]
                                    [--chunk-sizes 100000 0] [--cases parquet sql]

A chunk size of 0 means one chunk as large as the data: the figure streaming is measured
against (a Parquet file is still read a row group at a time, 1M rows here, by its nature).
Cases whose source is not installed (``sql`` before its module exists) are skipped with a
note. Add a case by writing a writer and an entry in ``CASES``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    COLUMNS,
    EVENT_TYPES,
    T0,
    WRITE_CHUNK,
    YEAR,
    mib,
    peak_kib,
    run_child,
    write_parquet,
)


def generate(n: int, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """The same events, chunk by chunk, whatever the format: times rise through one year."""
    rng = np.random.default_rng(seed)
    users, items = max(n // 20, 1), max(n // 50, 1)
    for start in range(0, n, WRITE_CHUNK):
        size = min(WRITE_CHUNK, n - start)
        index = np.arange(start, start + size, dtype=np.int64)
        yield {
            "user_id": rng.integers(0, users, size, dtype=np.int64),
            "item_id": rng.integers(0, items, size, dtype=np.int64),
            "timestamp": T0 + index * YEAR // n + rng.integers(0, 60, size),
            "event_type": rng.choice(np.arange(3, dtype=np.int8), size, p=[0.8, 0.15, 0.05]),
        }


def raw_bytes(n: int) -> int:
    """The events as plain arrays: three int64 columns and a one-byte event code."""
    return n * (8 * 3 + 1)


def write_parquet_file(folder: Path, n: int) -> Path:
    return write_parquet(folder / "events.parquet", generate(n))


def write_sqlite(folder: Path, n: int) -> Path:
    """A table ``events`` written with executemany in chunks, never the whole log at once."""
    path = folder / "events.sqlite"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
                   "item_id INTEGER NOT NULL, timestamp INTEGER NOT NULL, event_type TEXT)")
        for chunk in generate(n):
            kinds = np.asarray(EVENT_TYPES, dtype=object)[chunk["event_type"]]
            db.executemany("INSERT INTO events (user_id, item_id, timestamp, event_type) "
                           "VALUES (?, ?, ?, ?)",
                           zip(chunk["user_id"].tolist(), chunk["item_id"].tolist(),
                               chunk["timestamp"].tolist(), kinds.tolist(), strict=True))
    return path


@dataclass(frozen=True)
class Case:
    """A storage format: how to write the events, and the pipeline source that reads them."""

    plugin: str
    module: str
    writer: Callable[[Path, int], Path]
    params: Callable[[Path], dict[str, Any]]


CASES: dict[str, Case] = {
    "parquet": Case("parquet", "penchant_plugins.sources.parquet", write_parquet_file,
                    lambda path: {"path": str(path), "columns": COLUMNS, "time_unit": "s"}),
    "sql": Case("sql", "penchant_plugins.sources.sql", write_sqlite,
                lambda path: {"url": f"sqlite:///{path}", "table": "events",
                              "columns": COLUMNS, "time_unit": "s"}),
}


def child(spec: dict[str, Any]) -> None:
    """Runs in the subprocess: import everything, note the peak so far, load, report."""
    from penchant import Context
    from penchant.plugins import Registry

    cls = Registry().get("source", spec["plugin"])
    source = cls(spec["params"])
    out: dict[str, Any] = {"baseline_kib": peak_kib()}
    started = time.perf_counter()
    events = source.load(Context()).events
    out["seconds"] = time.perf_counter() - started
    out["peak_kib"] = peak_kib()
    out["rows"] = len(events)
    out["events_bytes"] = int(events.frame.memory_usage(deep=True).sum())
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--folder", type=Path, help="where data files go (default: a temp "
                        "folder, removed afterwards)")
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[100_000, 0],
                        help="chunk sizes to load with; 0 = one chunk of all the events")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    with tempfile.TemporaryDirectory(prefix="penchant-bench-") as temp:
        folder = args.folder or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        bench(args.events, folder, args.cases, args.chunk_sizes)


def bench(n: int, folder: Path, cases: list[str], chunk_sizes: list[int]) -> None:
    print(f"{n:,} events; raw columns in memory (3 x int64 + 1-byte type): "
          f"{mib(raw_bytes(n))} MiB")
    header = (f"{'case':<8} {'chunk':>10} {'rows/s':>12} {'load s':>8} {'peak MiB':>9} "
              f"{'baseline':>9} {'above':>7} {'events MiB':>10}")
    rows = []
    for name in cases:
        case = CASES[name]
        if find_spec(case.module) is None:
            print(f"{name}: skipped ({case.module} is not installed)")
            continue
        started = time.perf_counter()
        path = case.writer(folder, n)
        print(f"{name}: wrote {path.name}, {mib(path.stat().st_size)} MiB on disk, in "
              f"{time.perf_counter() - started:.1f} s")
        for size in chunk_sizes:
            params = {**case.params(path), "chunk_size": size or max(n, 1)}
            spec = {"plugin": case.plugin, "params": params}
            got = run_child([sys.executable, __file__, "--child", json.dumps(spec)],
                            f"loading with {case.plugin}")
            if got["rows"] != n:
                raise SystemExit(f"{name}: loaded {got['rows']} of {n} events")
            above = got["peak_kib"] - got["baseline_kib"]
            rows.append(f"{name:<8} {size or 'all':>10} {n / got['seconds']:>12,.0f} "
                        f"{got['seconds']:>8.2f} {mib(got['peak_kib'] * 1024):>9} "
                        f"{mib(got['baseline_kib'] * 1024):>9} {mib(above * 1024):>7} "
                        f"{mib(got['events_bytes']):>10}")
    if rows:
        print(header, *rows, sep="\n")


if __name__ == "__main__":
    main()
