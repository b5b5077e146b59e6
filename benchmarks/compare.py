"""Every model, with and without the time-aware options, on every dataset.

Prints (and with --out writes) the markdown tables of docs/results.md: NDCG@10, NDCG@20
and Recall@20 per horizon, and training seconds, under the temporal protocol. Datasets
whose files are absent (../shared/data) are skipped with a note.

Below each dataset's table, for every ``--pairs`` entry whose two variants were run, the
first's NDCG@20 over the second's, seed by seed, with its paired 95 % interval over the
evaluated users (the same users in both runs; :mod:`penchant.significance`).

With several ``--cutoffs`` (quantiles of event times) every variant and seed is run from
each, as ``penchant backtest`` does, and its figures pool every (cutoff, user)
evaluation; the paired intervals then resample users whole.

    python benchmarks/compare.py [--datasets ml-100k ...] [--models vae ease ...]
                                 [--seeds 0 1 2] [--pairs vae:time/ease:plain ...]
                                 [--cutoffs 0.6 0.7 0.8] [--variants time]
                                 [--light-users 3] [--set recommender.window=90d]
                                 [--out docs/results.md]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from penchant.errors import PenchantError
from penchant.metrics import ListHits
from penchant.pipeline import apply_overrides, build_pipeline, read_document
from penchant.plugins import default_registry
from penchant.report import LIGHT, ratio_cell
from penchant.runner import Runner
from penchant.significance import paired_ratio
from penchant.store import RunStore

HERE = Path(__file__).resolve().parent
DATASETS = {
    "demo-shop": HERE / "pipelines" / "demo-shop.toml",
    "ml-100k": HERE / "pipelines" / "ml-100k.toml",
    "amazon-mi": HERE / "pipelines" / "amazon-mi.toml",
}
#: The decay half-life that suits each dataset's pace (ml-100k users rate in bursts).
HALF_LIFE = {"demo-shop": "60d", "ml-100k": "14d", "amazon-mi": "60d"}
TRAINING = {"epochs": 50, "batch_size": 64, "patience": 5}
MODELS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "recent-popularity": {},
    "itemknn": {},
    "ease": {},
    "vae": TRAINING,
    "dae": TRAINING,
    "cdae": TRAINING,
    # Adversarial validation curves are noisy: a short patience stops CFGAN far too early.
    "cfgan": {**TRAINING, "epochs": 100, "patience": 0},
    "cvae": TRAINING,
}
SIDE_FEATURES = [{"plugin": "user-features"}, {"plugin": "behaviour-features"},
                 {"plugin": "item-features"}]
METRICS = ("ndcg@10", "ndcg@20", "recall@20")
#: The default pipeline ("vae" with the time options) against the bars of issue #10.
PAIRS = ["vae:time/ease:plain", "vae:time/recent-popularity:plain"]
PAIRED_K = 20


def variant_doc(base: dict[str, Any], dataset: str, model: str, timed: bool) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc["model"] = {"plugin": model, **MODELS[model]}
    doc["evaluation"]["baselines"] = []
    if model == "cvae":
        doc["features"] = doc["features"] + SIDE_FEATURES
    doc["features"][0].pop("half_life", None)
    doc["recommender"] = {"plugin": "top-k"}
    if timed:
        doc["features"][0]["half_life"] = HALF_LIFE[dataset]
        doc["recommender"] = {"plugin": "hybrid"}
    return doc


def available(dataset: str, model: str) -> bool:
    return model != "cvae" or dataset == "demo-shop"  # the others have no side tables


def run_one(path: Path, doc: dict[str, Any], seed: int, cutoffs: Sequence[float],
            store: RunStore, work: Path) -> tuple[dict[str, Any], float, dict[str, ListHits]]:
    """The model's results pooled over ``cutoffs`` (one run from each), its training
    seconds (mean over the runs) and its hits per horizon (every run's rows)."""
    registry = default_registry()
    seconds, parts = [], []
    for cutoff in cutoffs:
        doc = copy.deepcopy(doc)
        doc["pipeline"]["seed"] = seed
        doc["evaluation"]["cutoff"] = cutoff
        pipeline = build_pipeline(doc, registry, path)
        result = Runner(pipeline, registry, store, work).run()
        seconds.append(result.summary["stages"]["train"]["seconds"])
        hits = result.hits[pipeline.one("model").plugin]
        if result.light_users is not None:
            hits |= {f"{h}{LIGHT}": hits[h].subset(result.light_users) for h in list(hits)}
        parts.append(hits)
    ks = doc["evaluation"].get("k", [10, 20])
    hits = {h: ListHits.concat([p[h] for p in parts]) for h in parts[0]}
    return ({h: by_h.averages(ks) for h, by_h in hits.items()}, statistics.fmean(seconds),
            hits)


def paired_rows(pairs: list[str], kept: dict[str, list[dict[str, ListHits]]],
                seeds: list[int], horizons: list[str]) -> list[str]:
    """One markdown row per pair and seed, ratio (interval) per horizon, and with several
    seeds one for their mean: each user's NDCG averaged over the seeds (every seed
    evaluates the same users), the figure the bars are stated in."""
    rows = []
    for pair in pairs:
        first, second = pair.split("/")
        if first not in kept or second not in kept:
            continue
        labelled = [(str(seed), {h: a[h].ndcg(PAIRED_K) for h in horizons},
                     {h: b[h].ndcg(PAIRED_K) for h in horizons})
                    for seed, a, b in zip(seeds, kept[first], kept[second], strict=False)]
        if len(labelled) > 1:
            labelled.append(("mean", *({h: np.mean([x[i][h] for x in labelled], axis=0)
                                        for h in horizons} for i in (1, 2))))
        users = {h: np.asarray(kept[first][0][h].users) for h in horizons}
        for label, a, b in labelled:
            cells = [ratio_cell(paired_ratio(a[h], b[h], 0.95, 2000, seed=0, groups=users[h]))
                     .replace("×", "") for h in horizons]
            rows.append(f"| {first} ÷ {second} | {label} | " + " | ".join(cells) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--pairs", nargs="*", default=PAIRS,
                        help="MODEL:plain|time/MODEL:plain|time pairs to set against each "
                             "other with paired intervals (default: the default pipeline "
                             "against plain EASE and plain recent popularity)")
    parser.add_argument("--cutoffs", nargs="+", type=float, default=[0.8],
                        help="quantiles of event times to run every variant from, pooled "
                             "(default: 0.8, the protocol's one cutoff)")
    parser.add_argument("--variants", nargs="+", choices=("plain", "time"),
                        default=["plain", "time"], help="which options to run each model with")
    parser.add_argument("--light-users", type=int, metavar="N",
                        help="also pair the variants over users with at most N training "
                             "events ([evaluation] light_users)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key in every variant's pipeline, as penchant run "
                             "--set does (e.g. evaluation.validation=0.2; hybrid keys such as "
                             "recommender.window=90d exist in the time variant only: add "
                             "--variants time)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        apply_overrides({}, args.set)
    except PenchantError as exc:
        parser.error(str(exc))
    cutoffs = "" if args.cutoffs == [0.8] else f" --cutoffs {' '.join(map(str, args.cutoffs))}"
    cutoffs += "".join(f" --set {kv}" for kv in args.set)
    lines = [f"Measured {date.today()} with `python benchmarks/compare.py "
             f"--seeds {' '.join(map(str, args.seeds))}{cutoffs}` on 2 CPU cores; mean over seeds "
             "(± spread = max − min). \"time\" = interactions decayed with the dataset's "
             "half-life and the hybrid recommender.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(f"sqlite:///{tmp}/runs.sqlite")
        for dataset in args.datasets:
            path = DATASETS[dataset]
            try:
                base = read_document(path)
                build_pipeline(base, default_registry(), path)
            except PenchantError as exc:
                lines += [f"## {dataset}", "", f"skipped: {exc}", ""]
                continue
            horizons = base.get("evaluation", {}).get("horizons", ["7d", "30d", "90d"])
            header = ["model", "options"] + [f"{h} {m}" for h in horizons for m in METRICS]
            rows = []
            kept: dict[str, list[dict[str, ListHits]]] = {}
            for model in args.models:
                if not available(dataset, model):
                    continue
                for timed in [v == "time" for v in args.variants]:
                    runs = []
                    doc = apply_overrides(variant_doc(base, dataset, model, timed), args.set)
                    if args.light_users is not None:
                        doc["evaluation"]["light_users"] = args.light_users
                    for seed in args.seeds:
                        started = time.perf_counter()
                        try:
                            runs.append(run_one(path, doc, seed, args.cutoffs, store,
                                                Path(tmp) / "run"))
                        except PenchantError as exc:
                            print(f"{dataset} {model}: {exc}", file=sys.stderr)
                            break
                        print(f"{dataset} {model} {'time' if timed else 'plain'} seed {seed}: "
                              f"{time.perf_counter() - started:.0f}s", file=sys.stderr)
                    if runs:
                        rows.append(_row(model, timed, horizons, runs))
                        kept[f"{model}:{'time' if timed else 'plain'}"] = [h for *_, h in runs]
            table = ["| " + " | ".join([*header, "train s"]) + " |",
                     "|" + "---|" * (len(header) + 1), *rows]
            compared = horizons + ([f"{h}{LIGHT}" for h in horizons]
                                   if args.light_users is not None else [])
            paired = paired_rows(args.pairs, kept, args.seeds, compared)
            if paired:
                table += ["", f"NDCG@{PAIRED_K} ratio (95 % paired interval over the "
                          "evaluated users):", "",
                          "| pair | seed | " + " | ".join(compared) + " |",
                          "|" + "---|" * (len(compared) + 2), *paired, "", _evaluated(kept)]
            lines += [f"## {dataset}", "", *table, ""]
            print("\n".join(table), flush=True)
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


def _evaluated(kept: dict[str, list[dict[str, ListHits]]]) -> str:
    """How many users each horizon's means rest on (and evaluations, when cutoffs pool)."""
    cells = []
    for h, hits in next(iter(kept.values()))[0].items():
        users = len(set(hits.users))
        extra = f" ({len(hits.users)} evaluations)" if len(hits.users) > users else ""
        cells.append(f"{h} {users} users{extra}")
    return "Evaluated: " + ", ".join(cells) + "."


def _row(model: str, timed: bool, horizons: list[str],
         runs: list[tuple[dict[str, Any], float, dict[str, ListHits]]]) -> str:
    cells = [model, "time" if timed else "plain"]
    for h in horizons:
        for m in METRICS:
            values = [r[h][m] for r, *_ in runs if r[h].get(m) is not None]
            if not values:
                cells.append("-")
                continue
            mean = statistics.fmean(values)
            spread = max(values) - min(values)
            cells.append(f"{mean:.4f}" + (f" ±{spread:.3f}" if len(values) > 1 else ""))
    cells.append(f"{statistics.fmean(s for _, s, _ in runs):.1f}")
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    sys.exit(main())
