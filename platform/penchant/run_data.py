"""A recorded run's pipeline, cutoff, lists, metrics file and source data, read again.

Replaying feedback and reporting on it need what a run saw: the run store keeps each run's
pipeline (secrets as ``${env:…}`` references) and the file it came from, so relative paths
resolve as they did; the data is loaded through the pipeline's own source component, the
code every run uses, never a copy of it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from penchant.components import Context
from penchant.data import Dataset
from penchant.errors import StoreError
from penchant.pipeline import Pipeline, build_pipeline
from penchant.plugins import Registry, default_registry
from penchant.significance import paired_runs
from penchant.store import RunRecord, RunStore


def run_metrics(store: RunStore, run_id: int) -> dict[str, Any]:
    """The run's whole ``metrics.json`` (with ``versus`` and ``interests``, which the
    store's ``metrics`` table leaves out or flattens), or ``{}`` when the file is gone."""
    path = store.artifacts(run_id).get("metrics")
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def user_metrics(store: RunStore, run_id: int) -> pd.DataFrame | None:
    """The run's ``user_metrics.csv`` (user, horizon, ``ndcg@k``…), or None for a run
    written before runs kept it, or whose file is gone."""
    path = store.artifacts(run_id).get("user_metrics")
    if not path or not Path(path).exists():
        return None
    return pd.read_csv(path, dtype={"user": "string", "horizon": "string"})


def paired_users(store: RunStore, first: int, second: int) -> dict[str, Any] | None:
    """Run ``second``'s NDCG over run ``first``'s with paired intervals over the users both
    evaluated (:func:`penchant.significance.paired_runs`); None when either run has no
    per-user metrics."""
    frames = [user_metrics(store, run_id) for run_id in (first, second)]
    if frames[0] is None or frames[1] is None:
        return None
    return paired_runs(frames[0], frames[1])


def stored_pipeline(store: RunStore, run_id: int, registry: Registry | None = None
                    ) -> Pipeline:
    """The pipeline the run used, with relative paths read from the folder of the file it
    was run from (or, for runs that did not record it, the run folder's copy)."""
    record = store.run(run_id)
    recorded = (record.summary or {}).get("pipeline_file")
    path = Path(recorded) if recorded else None
    if path is None and "pipeline" in store.artifacts(run_id):
        path = Path(store.artifacts(run_id)["pipeline"])
    return build_pipeline(tomllib.loads(record.pipeline), registry or default_registry(),
                          path)


def load_source(pipeline: Pipeline, registry: Registry | None = None) -> Dataset:
    """Everything the pipeline's source holds (an incremental source reads it all)."""
    source = pipeline.create(pipeline.one("source"), registry or default_registry())
    return source.load(Context(seed=pipeline.seed))


def cutoff(record: RunRecord) -> pd.Timestamp:
    """Where the run split training from test (UTC), from its summary."""
    text = (record.summary or {}).get("stages", {}).get("split", {}).get("cutoff")
    if not text:
        raise StoreError(f"run {record.id} ({record.status}) recorded no cutoff: it ended "
                         "before splitting its events")
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def shown_lists(store: RunStore, run_id: int) -> pd.DataFrame:
    """The run's recommendations as shown (``recommendations.csv``, ranks up to its
    ``recommend_k``): ``user, item, rank, score``."""
    record = store.run(run_id)
    path = store.artifacts(run_id).get("recommendations")
    if record.status != "finished" or path is None or not Path(path).is_file():
        raise StoreError(f"run {run_id} ({record.status}) has no recommendations.csv")
    frame = pd.read_csv(path, dtype={"user": "string", "item": "string"})
    depth = tomllib.loads(record.pipeline).get("evaluation", {}).get("recommend_k")
    if depth is not None:
        frame = frame[frame["rank"] <= int(depth)]
    return frame.reset_index(drop=True)
