"""What the benchmark scripts share: the generated data's shape, peak memory, child runs.

Every script measures each case in a fresh subprocess so that a peak RSS belongs to that
case alone; this module holds the pieces of that pattern and nothing that imports
penchant, so a script can also run it under another virtual environment (the peers'
venv of ``bench_train.py``), where only numpy is certain to be installed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

T0 = 1_672_531_200  # 2023-01-01 UTC
YEAR = 365 * 86_400
DAY = 86_400
EVENT_TYPES = ("view", "cart", "purchase")
COLUMNS = {"user": "user_id", "item": "item_id", "time": "timestamp", "event": "event_type"}
#: Rows generated (and written) at a time, and so a Parquet file's row-group size.
WRITE_CHUNK = 1_000_000


def peak_kib() -> int:
    """Peak resident set of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def thread_env(threads: int, **extra: str) -> dict[str, str]:
    """The environment that holds torch's and every BLAS's pools to ``threads`` threads,
    set before the child starts because OpenMP reads it once, at import."""
    n = str(threads)
    return {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n, **extra}


def run_child(argv: Sequence[str], what: str,
              env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run one measured case in its own process; its report is the last line it prints,
    as JSON. A failure stops the benchmark with the child's own error."""
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            check=False, env=None if env is None else dict(env))
    if result.returncode:
        raise SystemExit(f"{what} failed:\n{result.stderr[-6000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def shop_events(n_users: int, n_items: int, n_events: int, seed: int = 0,
                max_per_user: int = 1_000, n_categories: int = 50) -> dict[str, np.ndarray]:
    """A year of shop events with the skews that decide a recommender's cost and the
    temporal protocol's meaning, unlike uniform ids:

    - activity per user is log-normal (a few heavy users, many light ones), capped at
      ``max_per_user`` so the longest history stays ML-20M-like (libraries that pad
      histories to the longest one pay for it);
    - each user is active over their own stretch of the year, so a time cut finds users
      who left, stayed and arrived;
    - item popularity is Zipf-like, and items launch through the year and fade with a
      four-month time constant, so what sells now differs from what sold in spring;
    - a user's events mostly fall in a favourite category, which changes halfway through
      their stretch: interests evolve;
    - event types are 80 % views, 15 % carts, 5 % purchases.

    Returns int64 ``user_id``, ``item_id``, ``timestamp`` (epoch seconds) and an int8
    ``event_type`` code into :data:`EVENT_TYPES`, sorted by time.
    """
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(0.0, 1.0, n_users)
    scale = n_events / raw.sum()
    for _ in range(8):  # capping loses events; raise the scale until the total fits
        counts = np.clip(np.rint(raw * scale), 1, max_per_user).astype(np.int64)
        scale *= n_events / max(int(counts.sum()), 1)
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    start = np.clip(rng.uniform(-0.3, 0.9, n_users), 0.0, None) * YEAR
    span = np.minimum(YEAR - start, rng.exponential(0.4 * YEAR, n_users) + 7 * DAY)
    offset = rng.random(len(users))
    times = (start[users] + offset * span[users]).astype(np.int64)
    favourite = rng.integers(0, n_categories, (2, n_users))
    category = np.where(offset < 0.5, favourite[0, users], favourite[1, users])
    category[rng.random(len(users)) < 0.4] = n_categories  # anywhere in the catalogue

    base = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.9)
    launch = rng.uniform(-1.0, 1.0, n_items) * YEAR
    item_category = np.arange(n_items) % n_categories
    week = times // (7 * DAY)
    items = np.empty(len(users), dtype=np.int64)
    key = week * (n_categories + 1) + category
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, bounds):
        if not len(group):
            continue
        w, c = divmod(int(key[group[0]]), n_categories + 1)
        pool = np.arange(n_items) if c == n_categories else np.flatnonzero(item_category == c)
        age = (w * 7 * DAY - launch[pool]) / (120 * DAY)
        weights = np.where(age >= 0, base[pool] * np.exp(-np.clip(age, 0, None)), 0.0)
        weights = weights if weights.sum() > 0 else base[pool]
        items[group] = pool[rng.choice(len(pool), len(group), p=weights / weights.sum())]
    kinds = rng.choice(np.arange(3, dtype=np.int8), len(users), p=[0.8, 0.15, 0.05])
    by_time = np.argsort(times, kind="stable")
    return {"user_id": users[by_time], "item_id": items[by_time],
            "timestamp": T0 + times[by_time], "event_type": kinds[by_time]}


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f}"


def chunks(columns: Mapping[str, np.ndarray], size: int = WRITE_CHUNK
           ) -> Iterator[dict[str, np.ndarray]]:
    """Equal columns cut into row ranges of ``size``: row groups of that size on write."""
    n = len(next(iter(columns.values())))
    for start in range(0, n, size):
        yield {name: values[start:start + size] for name, values in columns.items()}


def write_parquet(path: Path, parts: Iterable[Mapping[str, np.ndarray]]) -> Path:
    """Events (``user_id``, ``item_id``, ``timestamp`` int64, ``event_type`` an int8 code
    into :data:`EVENT_TYPES`) as one Parquet file, a row group per part, the event type
    dictionary-encoded as a shop's export would store it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = pa.array(EVENT_TYPES)
    schema = pa.schema([("user_id", pa.int64()), ("item_id", pa.int64()),
                        ("timestamp", pa.int64()),
                        ("event_type", pa.dictionary(pa.int8(), pa.string()))])
    with pq.ParquetWriter(path, schema) as writer:
        for part in parts:
            event = pa.DictionaryArray.from_arrays(pa.array(part["event_type"]), kinds)
            writer.write_table(pa.table({**{k: v for k, v in part.items()
                                            if k != "event_type"}, "event_type": event},
                                        schema=schema))
    return path
