"""End to end: ``penchant run`` on a generated shop, wall time per stage and peak memory.

The script generates a year of shop events (:func:`_common.shop_events`: log-normal user
activity, Zipf-like item popularity with items launching and fading, interests that move
between categories, 80/15/5 % views, carts and purchases), writes them to one Parquet
file, writes a pipeline like ``resources/pipelines/default.toml`` next to it, and runs
``penchant run`` on it as a subprocess, as a user would. It reports

- each stage's seconds, read from the run's summary in the run store (``stages``), and
  the peak RSS seen while the stage ran (the child's RSS sampled every 0.2 s, split at
  the "<stage> done" lines the run prints);
- the whole run's wall time and exact peak RSS (``wait4``'s ``ru_maxrss``); the wall
  time not in any stage is start-up (imports, plugin discovery, the source's column
  check) and the store's bookkeeping.

    python benchmarks/bench_end_to_end.py [--events 10000000] [--epochs 3] [--refit]
        [--validation 0.1] [--threads 2] [--folder DIR] [--profile]
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import COLUMNS, chunks, mib, shop_events, thread_env, write_parquet

FULL = {"users": 140_000, "items": 20_000, "events": 10_000_000}
#: The issue's targets for 10 million events.
TARGET_SECONDS = 600
TARGET_RSS_GIB = 4.0
SAMPLE_EVERY = 0.2


def pipeline_toml(data: Path, epochs: int, validation: float, batch_size: int,
                  refit: bool) -> str:
    """The default pipeline's shape on the generated file. EASE is left out of the
    baselines: its item×item Gram matrix is 20,000² float64 (3.2 GB) and its inversion
    alone would take most of the time budget on two cores."""
    return f"""\
[pipeline]
name = "bench-end-to-end"
seed = 0

[source]
plugin = "parquet"
path = "{data.name}"
columns = {{ user = "{COLUMNS['user']}", item = "{COLUMNS['item']}", \
time = "{COLUMNS['time']}", event = "{COLUMNS['event']}" }}
time_unit = "s"

[[preprocess]]
plugin = "drop-malformed"

[[preprocess]]
plugin = "dedup"

[[features]]
plugin = "interactions"
weights = {{ view = 1.0, cart = 2.0, purchase = 4.0 }}
reduce = "max"
half_life = "60d"

[model]
plugin = "vae"
epochs = {epochs}
batch_size = {batch_size}
patience = 0
device = "cpu"

[recommender]
plugin = "hybrid"
exclude_seen = true

[evaluation]
cutoff = 0.8
horizons = ["7d", "30d", "90d"]
k = [10, 20]
baselines = ["popularity", "recent-popularity"]
validation = {validation}
refit = {str(refit).lower()}
recommend_k = 20
"""


class RssWatch:
    """Samples a process's resident set while it runs and keeps the peak of each stretch
    between two marks, so each stage gets the peak seen while it ran."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.lock = threading.Lock()
        self.stretch_peak = 0
        self.last = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(SAMPLE_EVERY):
            try:
                text = self.status.read_text()
            except OSError:
                return
            kib = next((int(line.split()[1]) for line in text.splitlines()
                        if line.startswith("VmRSS:")), 0)
            with self.lock:
                self.last = kib
                self.stretch_peak = max(self.stretch_peak, kib)

    def mark(self) -> int:
        """The peak (KiB) since the last mark; starts the next stretch from the latest
        sample, so a stage shorter than the sampling interval gets the RSS it ran at."""
        with self.lock:
            peak, self.stretch_peak = self.stretch_peak, self.last
        return peak


def run_measured(argv: list[str], env: dict[str, str], log: Path
                 ) -> tuple[float, int, dict[str, int]]:
    """Run the pipeline; wall seconds, exact peak RSS (KiB) and the sampled peak per
    stage, by the "<stage> done in" lines the progress printer writes to stderr. The
    run's results (stdout) go next to the log, in ``.out``."""
    started = time.perf_counter()
    with log.with_suffix(".out").open("w") as results, log.open("w", buffering=1) as out:
        proc = subprocess.Popen(argv, env=env, stdout=results, stderr=subprocess.PIPE,
                                text=True, bufsize=1)
        watch = RssWatch(proc.pid)
        stage_peaks: dict[str, int] = {}
        assert proc.stderr is not None
        for line in proc.stderr:
            out.write(line)
            if " done in " in line and not line.startswith(" "):
                stage_peaks[line.split(" done in ")[0]] = watch.mark()
    _, status, usage = os.wait4(proc.pid, 0)
    watch.done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"penchant run failed ({proc.returncode}); its log: {log}\n"
                         + log.read_text()[-4000:])
    return wall, usage.ru_maxrss, stage_peaks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=FULL["events"])
    parser.add_argument("--users", type=int, default=None,
                        help="shoppers (default: 140,000 per 10 million events)")
    parser.add_argument("--items", type=int, default=FULL["items"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--validation", type=float, default=0.1,
                        help="the share of the training events held out for early stopping "
                             "and the hybrid's blend (0: none, one training)")
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=False,
                        help="train a second time on the whole training period after the "
                             "validation fit (the default pipeline's choice; doubles "
                             "training)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folder", type=Path, help="keep data, store and run here (default: "
                        "a temporary folder); the generated file is reused when present")
    parser.add_argument("--profile", action="store_true",
                        help="run under cProfile and print the top functions")
    parser.add_argument("--profile-lines", type=int, default=30)
    args = parser.parse_args(argv)
    users = args.users or max(1, round(FULL["users"] * args.events / FULL["events"]))
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        bench(args, users, (args.folder or Path(tmp)).resolve())


def bench(args: argparse.Namespace, users: int, folder: Path) -> None:
    from penchant.store import RunStore

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"events-{args.events}-{users}-{args.items}.parquet"
    if not data.exists():
        started = time.perf_counter()
        partial = data.with_suffix(".partial")
        write_parquet(partial, chunks(shop_events(users, args.items, args.events)))
        partial.rename(data)
        print(f"generated {args.events:,} events ({users:,} users, {args.items:,} items) "
              f"in {time.perf_counter() - started:.0f} s: {data.name}, "
              f"{mib(data.stat().st_size)} MiB")
    pipeline = folder / "pipeline.toml"
    pipeline.write_text(pipeline_toml(data, args.epochs, args.validation, args.batch_size,
                                           args.refit))
    store = f"sqlite:///{folder / 'runs.sqlite'}"
    run_dir = folder / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    command = ["-m", "penchant.cli", "--store", store, "run", str(pipeline), "--out",
               str(run_dir), "--device", "cpu"]
    profile = folder / "run.prof"
    prefix = ["-m", "cProfile", "-o", str(profile)] if args.profile else []
    print(f"penchant run: {args.events:,} events; vae {args.epochs} epoch(s), batch "
          f"{args.batch_size}, validation {args.validation:g}, refit {args.refit}; hybrid; "
          "baselines popularity, "
          f"recent-popularity; {args.threads} thread(s); log {folder / 'run.log'}", flush=True)
    wall, peak, stage_peaks = run_measured(
        [sys.executable, *prefix, *command],
        thread_env(args.threads, PENCHANT_HOME=str(folder)), folder / "run.log")
    record = RunStore(store).runs(limit=1)[0]
    report(record.summary.get("stages", {}), stage_peaks, wall, peak, args.events)
    if args.profile:
        stats = pstats.Stats(str(profile))
        print("\n--- the whole run, by cumulative time ---")
        stats.sort_stats("cumulative").print_stats(args.profile_lines)
        print("--- by own time (tottime) ---")
        stats.sort_stats("tottime").print_stats(args.profile_lines)


def report(stages: dict[str, Any], stage_peaks: dict[str, int], wall: float,
           peak_kib: int, events: int) -> None:
    print(f"\n{'stage':<28} {'seconds':>8} {'share':>6} {'peak RSS MiB':>13}  details")
    timed = 0.0
    for name, info in stages.items():
        if "seconds" not in info:
            continue
        timed += info["seconds"]
        details = ", ".join(f"{k} {v}" for k, v in info.items() if k != "seconds")
        sampled = stage_peaks.get(name)
        print(f"{name:<28} {info['seconds']:>8.1f} {info['seconds'] / wall:>6.0%} "
              f"{mib(sampled * 1024) if sampled else '':>13}  {details[:90]}")
    print(f"{'(start-up, bookkeeping)':<28} {wall - timed:>8.1f} {(wall - timed) / wall:>6.0%}")
    print(f"{'total':<28} {wall:>8.1f}   100% {mib(peak_kib * 1024):>13}  (exact peak)")
    if events < FULL["events"]:
        print(f"\nThe targets (≤ {TARGET_SECONDS / 60:.0f} minutes, ≤ {TARGET_RSS_GIB:g} GiB) "
              f"are for {FULL['events']:,} events; this run had {events:,}.")
        return
    print(f"\nTargets (issue #8, at 10 million events): ≤ {TARGET_SECONDS / 60:.0f} minutes "
          f"end to end: {'met' if wall <= TARGET_SECONDS else 'NOT MET'}; peak RSS ≤ "
          f"{TARGET_RSS_GIB:g} GiB: "
          f"{'met' if peak_kib <= TARGET_RSS_GIB * 2**20 else 'NOT MET'}.")


if __name__ == "__main__":
    main()
