"""How fast a trained ``vae`` recommends: one user at a time, and in batches of users.

For each catalogue size the script generates synthetic interactions (power-law item
popularity, ``--events-per-user`` events per user, every item seen at least once so the
catalogue is exactly ``--items``), writes them to a Parquet file and runs a small pipeline
through :class:`penchant.runner.Runner` (``interactions`` features, ``vae`` for one epoch
on ``--device``, the CPU by default: the scoring speed is measured, not quality). A fresh
subprocess then loads the run with :class:`penchant.trained.TrainedRun`, as the CLI and the
app do, on the same device, and times

- ``one-user``: ``TrainedRun.recommend(user, k)`` for single users, after a warm-up: a
  lookup in the lists the run stored for every user (``recommend_k`` deep);
- ``one-user, model``: the same users asked for ``k + 1`` items, past the stored depth, so
  the model scores each one (the cost of a list nobody precomputed);
- ``batch``: ``model.score(features, rows)`` + ``penchant.ranking.top_k`` for batches of
  ``--batch`` users (``score`` alone is timed too, to show how the batch time divides).

    python benchmarks/bench_recommend.py [--items 10000 100000] [--users 3000] [--k 20]
                                         [--requests 1000] [--batch 1000] [--profile]
                                         [--device cuda]

Every row is measured in the same process, one after the other, so its peak RSS is that
process's peak so far (the loaded run plus every earlier row), as ``ru_maxrss`` reports it.
Torch and the BLAS libraries use ``--threads`` threads (default 1).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import COLUMNS, T0, YEAR, peak_kib, run_child, thread_env

#: The issue's targets, at 10,000 items: (path, figure, comparison, bound, text).
TARGETS = {
    "one-user": ("p50_ms", "<=", 1.0, "one-user top-k p50 <= 1 ms"),
    "batch": ("users_per_s", ">=", 50_000.0, "batch scoring >= 50,000 users/s"),
}
TARGET_ITEMS = 10_000


def generate(n_users: int, n_items: int, per_user: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``per_user`` events per user over items drawn with Zipf-like popularity (p ∝ 1/rank),
    plus one event per item in the first half of the year, so every item is in the
    training catalogue; times spread over one year."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1)
    popular = rng.permutation(n_items)  # which item ids are popular is arbitrary
    n = n_users * per_user
    users = np.concatenate([np.repeat(np.arange(n_users, dtype=np.int64), per_user),
                            rng.integers(0, n_users, n_items, dtype=np.int64)])
    items = np.concatenate([popular[rng.choice(n_items, n, p=weights / weights.sum())],
                            np.arange(n_items)]).astype(np.int64)
    times = np.concatenate([T0 + rng.integers(0, YEAR, n),
                            T0 + rng.integers(0, YEAR // 2, n_items)]).astype(np.int64)
    kinds = rng.choice(np.array(["view", "cart", "purchase"]), len(users), p=[0.8, 0.15, 0.05])
    return {"user_id": users, "item_id": items, "timestamp": times, "event_type": kinds}


def pipeline_doc(path: Path, k: int, device: str) -> dict[str, Any]:
    return {
        "pipeline": {"name": "bench-recommend", "seed": 0},
        "source": {"plugin": "parquet", "path": str(path), "columns": COLUMNS,
                   "time_unit": "s"},
        "features": [{"plugin": "interactions",
                      "weights": {"view": 1.0, "cart": 2.0, "purchase": 4.0}}],
        "model": {"plugin": "vae", "epochs": 1, "patience": 0, "device": device},
        "recommender": {"plugin": "top-k", "exclude_seen": True},
        "evaluation": {"cutoff": 0.9, "horizons": ["30d"], "k": [k], "baselines": [],
                       "validation": 0.0, "recommend_k": k},
    }


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a subprocess: generate, write, run the pipeline; the run's id."""
    import pandas as pd

    from penchant.pipeline import build_pipeline
    from penchant.plugins import default_registry
    from penchant.runner import Runner
    from penchant.store import RunStore

    folder = Path(spec["folder"])
    started = time.perf_counter()
    frame = pd.DataFrame(generate(spec["users"], spec["items"], spec["per_user"]))
    data = folder / "events.parquet"
    frame.to_parquet(data, index=False)
    generated = time.perf_counter() - started
    registry = default_registry()
    pipeline = build_pipeline(pipeline_doc(data, spec["k"], spec["device"]), registry,
                              folder / "pipeline.toml")
    store = RunStore(spec["store"])
    started = time.perf_counter()
    result = Runner(pipeline, registry, store, out_dir=folder / "run",
                    device=spec["device"]).run()
    return {"run_id": result.run.id, "events": len(frame), "generate_s": generated,
            "run_s": time.perf_counter() - started,
            "features": result.summary.get("stages", {}).get("features", {})}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a subprocess: load the run as the CLI does, then time both paths."""
    import torch

    from penchant import Context
    from penchant.ranking import top_k
    from penchant.store import RunStore
    from penchant.trained import TrainedRun

    torch.set_num_threads(spec["threads"])
    rng = np.random.default_rng(1)
    baseline = _peak_mib()
    started = time.perf_counter()
    trained = TrainedRun(spec["run_id"], RunStore(spec["store"]))
    load_s = time.perf_counter() - started
    users = trained.users
    k = spec["k"]
    rows: list[dict[str, Any]] = []

    # (a) one user per request, the CLI's and the app's path.
    for user in users[rng.integers(0, len(users), spec["warmup"])]:
        trained.recommend(user, k)
    asked = users[rng.integers(0, len(users), spec["requests"])]
    for label, depth in (("one-user", k), ("one-user, model", k + 1)):
        times = []
        for user in asked:
            t = time.perf_counter()
            trained.recommend(user, depth)
            times.append(time.perf_counter() - t)
        p50, p99 = percentiles(times)
        rows.append({"path": label, "p50_ms": p50, "p99_ms": p99,
                     "users_per_s": len(times) / sum(times), "peak_mib": _peak_mib()})

    # (b) batches of users: score every item, exclude seen, take the top k.
    model, features, ctx = trained.model, trained.features, Context()
    n = spec["batch"]
    batches = [rng.integers(0, len(users), n) for _ in range(spec["batches"])]
    top_k(model.score, features, batches[0], k, ctx)  # warm-up
    for label, work in (("batch", lambda b: top_k(model.score, features, b, k, ctx)),
                        ("batch score() only", lambda b: model.score(features, b))):
        times = []
        for batch in batches:
            t = time.perf_counter()
            work(batch)
            times.append(time.perf_counter() - t)
        p50, p99 = percentiles(times)
        rows.append({"path": label, "p50_ms": p50, "p99_ms": p99,
                     "users_per_s": n * len(times) / sum(times), "peak_mib": _peak_mib()})

    profile = None
    if spec["profile"]:
        profiler = cProfile.Profile()
        profiler.enable()
        for user in asked[:spec["profile_requests"]]:
            trained.recommend(user, k + 1)  # the model's path: a lookup has nothing to see
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        out.write(f"--- one-user recommend by the model, {spec['profile_requests']} requests, "
                  "by own time (tottime) ---\n")
        stats.sort_stats("tottime").print_stats(spec["profile_lines"])
        out.write("--- by cumulative time ---\n")
        stats.sort_stats("cumulative").print_stats(spec["profile_lines"])
        profile = out.getvalue()
    return {"items": int(features.shape[1]), "users": int(features.shape[0]),
            "load_s": load_s, "baseline_mib": baseline, "rows": rows, "profile": profile}


def _peak_mib() -> float:
    return peak_kib() / 1024


def child(role: str, spec: dict[str, Any]) -> dict[str, Any]:
    return run_child([sys.executable, __file__, f"--{role}", json.dumps(spec)],
                     f"{role} child ({spec['items']} items)",
                     thread_env(spec["threads"], PENCHANT_HOME=spec["folder"]))


def verdict(path: str, items: int, row: dict[str, Any]) -> str:
    if path not in TARGETS or items != TARGET_ITEMS:
        return ""
    figure, op, bound, text = TARGETS[path]
    met = row[figure] <= bound if op == "<=" else row[figure] >= bound
    return f"{text}: {'met' if met else 'NOT MET'}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--users", type=int, default=3_000,
                        help="users in the generated population (default 3,000)")
    parser.add_argument("--events-per-user", type=int, default=50)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1_000,
                        help="timed one-user requests (default 1,000)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1_000, help="users per batch")
    parser.add_argument("--batches", type=int, default=5, help="timed batches")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch / OpenMP / BLAS threads (default 1)")
    parser.add_argument("--device", default="cpu",
                        help="where the model trains and scores, e.g. cuda (the stored run "
                             "loads there too)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the one-user path and print its top lines")
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--profile-lines", type=int, default=15)
    parser.add_argument("--folder", type=Path, default=None,
                        help="keep data, run store and runs here (default: a temp folder)")
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        print(json.dumps(train(json.loads(args.train))))
        return
    if args.measure:
        result = measure(json.loads(args.measure))
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench-recommend-") as tmp:
        root = (args.folder or Path(tmp)).resolve()
        print(f"vae, 1 epoch, {args.device}, {args.threads} thread(s); {args.users:,} users x "
              f"{args.events_per_user} events (power-law items) + one event per item; "
              f"k = {args.k}; one-user: {args.requests:,} requests after {args.warmup} "
              f"warm-up; batch: {args.batches} x {args.batch:,} users")
        results = []
        for n_items in args.items:
            folder = root / f"items-{n_items}"
            folder.mkdir(parents=True, exist_ok=True)
            spec = {"folder": str(folder), "store": f"sqlite:///{folder / 'runs.sqlite'}",
                    "items": n_items, "users": args.users, "per_user": args.events_per_user,
                    "k": args.k, "threads": args.threads, "device": args.device}
            trained = child("train", spec)
            print(f"\n{n_items:,} items: {trained['events']:,} events generated in "
                  f"{trained['generate_s']:.1f} s; run {trained['run_id']} (load, features, "
                  f"1 epoch, recommend, evaluate, write) {trained['run_s']:.1f} s; "
                  f"features {trained['features']}")
            result = child("measure", {
                **spec, "run_id": trained["run_id"], "requests": args.requests,
                "warmup": args.warmup, "batch": args.batch, "batches": args.batches,
                "profile": args.profile, "profile_requests": args.profile_requests,
                "profile_lines": args.profile_lines})
            print(f"TrainedRun loaded in {result['load_s']:.1f} s; peak RSS before loading "
                  f"{result['baseline_mib']:,.0f} MiB")
            if result["profile"]:
                print(result["profile"])
            results.append(result)

        print(f"\n{'items':>8}  {'path':<19} {'p50 ms':>9} {'p99 ms':>9} {'users/s':>10} "
              f"{'peak RSS MiB':>12}  target")
        for result in results:
            for row in result["rows"]:
                print(f"{result['items']:>8,}  {row['path']:<19} {row['p50_ms']:>9.2f} "
                      f"{row['p99_ms']:>9.2f} {row['users_per_s']:>10,.0f} "
                      f"{row['peak_mib']:>12,.0f}  "
                      f"{verdict(row['path'], result['items'], row)}")
        print("\nbatch p50/p99 are per batch of users; one-user users/s is 1 / mean latency.")
        print("Targets (issue #8, at 10,000 items): " +
              "; ".join(text for *_, text in TARGETS.values()) + ".")


if __name__ == "__main__":
    main()
