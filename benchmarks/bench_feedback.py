"""How fast feedback is recorded: events per second through ``penchant.feedback``.

Generates N feedback events (impressions, clicks, add-to-carts, purchases of a run's lists:
``--users`` users, 20 items each, times over a month), checks them with
``feedback.check`` and stores them with ``feedback.record`` in batches of ``--batch`` rows,
one transaction each, into a fresh run store, as an import does. Then records the same
events again: every one is a duplicate, which is what re-running an import costs.

    python benchmarks/bench_feedback.py [--events 200000] [--batch 1000] [--store URL]
                                        [--profile]

The target is 10,000 events/s for ``record`` on a fresh SQLite store.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from penchant import feedback
from penchant.plugins import Registry
from penchant.store import RunStore

TARGET = 10_000
KINDS = ("impression", "click", "add-to-cart", "purchase")


def generate(n: int, seed: int = 0) -> pd.DataFrame:
    """Raw rows as a feedback file would hold them: text ids, ISO times, a kind, a rank."""
    rng = np.random.default_rng(seed)
    users = max(n // 20, 1)
    seconds = np.sort(rng.integers(0, 30 * 86_400, n))
    return pd.DataFrame({
        "user": [f"u{u:07d}" for u in rng.integers(0, users, n)],
        "item": [f"i{i:06d}" for i in rng.integers(0, 5_000, n)],
        "rank": rng.integers(1, 21, n),
        "time": pd.to_datetime(1_704_067_200 + seconds, unit="s", utc=True).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "kind": rng.choice(KINDS, n, p=[0.7, 0.2, 0.06, 0.04]),
    })


def timed(label: str, work, events: int) -> tuple[float, object]:
    started = time.perf_counter()
    value = work()
    seconds = time.perf_counter() - started
    print(f"{label:<28} {events / seconds:>12,.0f} events/s  {seconds:8.2f} s")
    return events / seconds, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000, help="rows per transaction")
    parser.add_argument("--store", help="run store URL (default: a fresh SQLite file)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the first recording and print the top functions")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="penchant-bench-feedback-") as tmp:
        store = RunStore(args.store or f"sqlite:///{Path(tmp) / 'runs.sqlite'}")
        run_id = store.start_run("bench", "none", "", {}, tmp)
        raw = generate(args.events)
        registry = Registry()  # the installed plugins, as an import has them
        print(f"{args.events:,} events, batches of {args.batch:,} rows, store "
              f"{store.engine.url.render_as_string(hide_password=True)}")
        _, checked = timed("check", lambda: feedback.check(raw, "bench", run_id=run_id),
                           args.events)

        def record() -> feedback.Recorded:
            return feedback.record(store, checked, "bench", registry=registry,
                                   batch=args.batch)

        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        rate, first = timed("record (new events)", record, args.events)
        if profiler:
            profiler.disable()
        _, again = timed("record again (duplicates)", record, args.events)
        assert first.stored == args.events - first.skipped and again.stored == 0, \
            (first, again)
        print(f"\nrecord: {rate:,.0f} events/s at {args.batch:,} per batch; target "
              f"{TARGET:,}: {'met' if rate >= TARGET else 'NOT met'}")
        if profiler:
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(20)
        store.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
