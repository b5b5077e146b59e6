"""How users move through a finished run's latent space, projected to 2-D for a plot.

A model with a latent space (:meth:`penchant.components.Model.embed`: a VAE's encoder mean,
an autoencoder's hidden layer) places each user by their history. Folding in each sampled
user's history as it stood at successive window ends (:meth:`penchant.trained.TrainedRun.
fold_in`, the run's own extractors) and embedding it gives a path per user; one PCA over
every point puts all paths on the same two axes, so they can be compared.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from penchant import run_data
from penchant.components import Context
from penchant.params import parse_duration
from penchant.trained import TrainedRun

COLUMNS = ["user", "window_end", "x", "y"]


def has_latent_space(trained: TrainedRun) -> bool:
    """Whether the run's model implements ``embed`` (tried on one trained user)."""
    if len(trained.users) == 0:
        return False
    return trained.model.embed(trained.features, np.arange(1)) is not None


def source_events(trained: TrainedRun) -> pd.DataFrame:
    """The run's events read again through its source and preprocessors, before its
    cutoff: what its features were built from."""
    pipeline = trained.pipeline
    dataset = run_data.load_source(pipeline, trained.registry)
    for spec in pipeline.stages["preprocess"]:
        dataset = pipeline.create(spec, trained.registry).apply(
            dataset, Context(seed=pipeline.seed))
    frame = dataset.events.frame
    return frame[frame["time"] < trained.features.now]


def project(points: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """PCA by SVD: ``points`` centred and projected on their first ``dims`` principal
    axes (zero columns where the space has fewer), and the variance along each. Each axis
    is signed so its largest loading is positive, so the picture does not flip between
    runs of the same model."""
    centred = points - points.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:dims]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    out = np.zeros((len(points), dims))
    out[:, :len(axes)] = centred @ axes.T
    variance = np.zeros(dims)
    variance[:len(axes)] = singular[:dims] ** 2 / max(len(points) - 1, 1)
    return out, variance


def latent_trajectories(trained: TrainedRun, users: Iterable[str], windows: int = 6,
                        step: str = "30d", events: pd.DataFrame | None = None
                        ) -> pd.DataFrame:
    """Each of ``users``' point in the model's latent space as of ``windows`` window ends
    ``step`` apart, the last at the run's cutoff, projected with one PCA to 2-D: columns
    ``user, window_end, x, y``, one row per user and window end (oldest first per user).
    A user without events by a window end is embedded from an empty history.

    ``events`` (canonical columns ``user, item, time`` and optionally ``event, value``)
    saves reading the run's source again (:func:`source_events`). Empty when the model has
    no latent space (no ``embed``) or there are no users."""
    users = pd.Index([str(u) for u in users], dtype="string").unique()
    if len(users) == 0 or not has_latent_space(trained):
        return pd.DataFrame(columns=COLUMNS)
    cutoff = trained.features.now
    frame = source_events(trained) if events is None else events
    frame = frame[frame["user"].astype(str).isin(set(users)) & (frame["time"] < cutoff)]
    length = parse_duration(step)
    ends = [cutoff - length * i for i in reversed(range(windows))]
    rows = np.arange(len(users))
    points = []
    for end in ends:
        features = trained.fold_in(frame[frame["time"] < end], end, users)
        points.append(np.asarray(trained.model.embed(features, rows), dtype=np.float64))
    xy, _ = project(np.vstack(points))
    out = pd.DataFrame({"user": np.tile(users.to_numpy(dtype=object), len(ends)),
                        "window_end": np.repeat(pd.DatetimeIndex(ends), len(users)),
                        "x": xy[:, 0], "y": xy[:, 1]})
    out["user"] = out["user"].astype("string")
    return out.sort_values(["user", "window_end"], kind="stable").reset_index(drop=True)
