"""Interests as distributions over item categories, their baselines, and how forecasts score.

A shopper's *interest distribution* is the share of their (categorised) events that fell in
each category of the items side table (``[evaluation] category``, default ``category``).
Evaluation asks, for each horizon ``h``: given everything before the cutoff, how well does a
forecast match the categories the user actually touched in ``[cutoff, cutoff + h)``?

Conventions (tested against hand-computed values):

- *Actual distribution*: the user's events in the window counted per category, unweighted
  (every view, cart and purchase is one touch), normalised to sum to 1. Events on items
  without a category are left out.
- *Evaluated users* for a horizon: users with training history that holds at least one
  categorised event (so persistence is defined) **and** at least one categorised event in
  the window. Everyone else has nothing to compare and is skipped, as in ranking metrics.
- *Jensen-Shannon divergence* with base-2 logarithms, so it lies in [0, 1]: 0 for identical
  distributions, 1 for disjoint ones. A forecast row that sums to 0 counts as uniform.
- *Top-3 overlap*: ``|F ∩ T| / min(3, |T|)`` where ``F`` holds the forecast's (up to) three
  largest categories with positive share and ``T`` the actual top three — every category
  whose actual share reaches the third largest, so ties in a short window are not broken
  arbitrarily (``T`` is all touched categories when there are three or fewer).
- *Persistence*: the user's training distribution (all events before the cutoff).
- *Recency-weighted persistence*: the same with each event weighted by
  ``0.5 ** (age / half_life)``, age measured back from the cutoff.

Models that forecast interests implement :class:`InterestModel` (structural: no base class
needed): ``forecast_interests`` for the metrics and ``interest_trajectory`` for the long table
(``trajectories.csv``) an app draws from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from penchant.data import Dataset, Events, Features
from penchant.errors import DataError
from penchant.params import parse_duration

#: Columns of an interest trajectory, one value per row (long format).
#: ``kind`` is ``observed`` (category shares of a past window), ``latent`` (the model's
#: state in a past window, ``name`` = a coordinate the model chooses, e.g. ``pc1``), or
#: ``forecast`` (category shares for ``[now, now + horizon)``; the persistence baselines,
#: the same at every horizon, have horizon ""); ``window`` counts past windows back from
#: ``now`` (-1 is the last one) and is 0 for forecasts; ``model`` names what produced the
#: row ("" for data). Shares that are 0 (observed) or tiny (forecasts) are left out.
TRAJECTORY_COLUMNS = ("user", "model", "kind", "window", "start", "end", "horizon", "name",
                      "value")

#: Windows of the trajectory the host writes for a model that cannot forecast interests.
DEFAULT_WINDOW = "30d"
DEFAULT_N_WINDOWS = 12

PERSISTENCE = "persistence"
RECENCY = "recency-weighted"


@runtime_checkable
class InterestModel(Protocol):
    """A model that forecasts each user's category distribution (structural protocol)."""

    def interest_categories(self) -> list[str]:
        """Category names, in the column order of the forecasts."""
        ...

    def forecast_interests(self, features: Features, rows: np.ndarray,
                           horizons: Sequence[str]) -> dict[str, np.ndarray]:
        """Horizon (as given, e.g. ``"90d"``) → ``len(rows) × n_categories`` array whose
        rows are distributions: the forecast share of each category in ``[now, now + h)``."""
        ...

    def interest_trajectory(self, features: Features, rows: np.ndarray,
                            horizons: Sequence[str] = ("7d", "30d", "90d")) -> pd.DataFrame:
        """Past windows (observed shares, latent states) and forecasts per horizon, as a
        frame with :data:`TRAJECTORY_COLUMNS`."""
        ...


# -- categories ------------------------------------------------------------------------


@dataclass(frozen=True)
class Categories:
    """Category names (column order of every share matrix) and each item's category code."""

    names: pd.Index
    codes_by_item: pd.Series

    @classmethod
    def from_items(cls, items: pd.DataFrame | None, column: str = "category",
                   where: str = "[evaluation] key 'category'") -> Categories:
        if items is None:
            raise DataError(
                f"{where}: interests need the items side table's {column!r} column, but "
                "the dataset has no items side table; add items = { path = \"items.csv\", "
                "id = \"item_id\" } to [source], or set [evaluation] interests = false")
        if column not in items.columns:
            shown = ", ".join(map(repr, map(str, items.columns))) or "none"
            raise DataError(f"{where}: the items side table has no column {column!r}; its "
                            f"columns are: {shown}. Name the category column there.")
        values = items[column].astype("string").str.strip()
        values.index = pd.Index(items.index.astype(str), dtype="string")
        values = values[values.notna() & (values != "")]
        values = values[~values.index.duplicated(keep="first")]
        if len(values) == 0:
            raise DataError(f"{where}: column {column!r} of the items side table is empty")
        names = pd.Index(sorted(values.unique()), dtype="string")
        return cls(names, pd.Series(names.get_indexer(values), index=values.index))

    @classmethod
    def from_dataset(cls, dataset: Dataset, column: str = "category",
                     where: str = "[evaluation] key 'category'") -> Categories:
        return cls.from_items(dataset.items, column, where)

    def __len__(self) -> int:
        return len(self.names)

    def codes(self, items: Sequence[str] | pd.Index | pd.Series) -> np.ndarray:
        """Category code of each item; -1 for items without one."""
        index = pd.Index(pd.Series(items, dtype="string"))
        return self.codes_by_item.reindex(index).fillna(-1).to_numpy(dtype=np.int64)


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent), working on distinct values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = index.get_indexer(pd.Index(values.cat.categories.astype(str)))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, lookup[codes] if len(lookup) else -1, -1)
    return index.get_indexer(pd.Index(values.astype("string")))


def event_categories(frame: pd.DataFrame, categories: Categories) -> np.ndarray:
    """Category code of each event's item (-1 where the item has none)."""
    items = frame["item"]
    if isinstance(items.dtype, pd.CategoricalDtype):
        lookup = categories.codes(items.cat.categories.astype(str))
        codes = items.cat.codes.to_numpy()
        return np.where(codes >= 0, lookup[codes] if len(lookup) else -1, -1)
    return categories.codes(items.astype("string"))


def event_weights(frame: pd.DataFrame, weights: Mapping[str, float] | None = None,
                  default_weight: float = 1.0, now: pd.Timestamp | None = None,
                  half_life: str | timedelta | None = None) -> np.ndarray:
    """Per-event weight: by event type (``weights``, others ``default_weight``; every event
    1 when ``weights`` is None) times ``0.5 ** (age / half_life)`` with age back from
    ``now`` when a half-life is given."""
    if weights is None:
        out = np.ones(len(frame), dtype=np.float64)
    else:
        table = {str(k): float(v) for k, v in weights.items()}
        kinds = frame["event"]
        if not isinstance(kinds.dtype, pd.CategoricalDtype):
            kinds = kinds.astype("string").astype("category")
        # one lookup per event type, then taken by code (a null's -1 takes the default)
        per_kind = np.append(pd.Series(kinds.cat.categories.astype("string")).map(table)
                             .astype("float64").fillna(default_weight).to_numpy(),
                             default_weight)
        out = per_kind[kinds.cat.codes.to_numpy()]
    if half_life is not None:
        if now is None:
            raise ValueError("a half-life needs the time ages are measured from (now)")
        seconds = (parse_duration(half_life) if isinstance(half_life, str)
                   else half_life).total_seconds()
        age = (now - frame["time"]).dt.total_seconds().to_numpy(dtype=np.float64)
        out = out * np.power(0.5, np.clip(age, 0, None) / seconds)
    return out


def category_counts(events: Events | pd.DataFrame, users: pd.Index, categories: Categories,
                    weights: np.ndarray | None = None, start: pd.Timestamp | None = None,
                    end: pd.Timestamp | None = None) -> np.ndarray:
    """``len(users) × n_categories`` sums of (weighted) events in ``[start, end)``."""
    frame = events.frame if isinstance(events, Events) else events
    w = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= (frame["time"] >= start).to_numpy()
    if end is not None:
        keep &= (frame["time"] < end).to_numpy()
    rows = _positions(frame["user"], users)
    cats = event_categories(frame, categories)
    keep &= (rows >= 0) & (cats >= 0)
    out = np.zeros((len(users), len(categories)), dtype=np.float64)
    np.add.at(out, (rows[keep], cats[keep]), w[keep])
    return out


def shares(counts: np.ndarray) -> np.ndarray:
    """Rows normalised to sum to 1; rows without anything stay 0."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def persistence(train: Events, users: pd.Index, categories: Categories) -> np.ndarray:
    """Each user's training distribution."""
    return shares(category_counts(train, users, categories))


def recency_persistence(train: Events, users: pd.Index, categories: Categories,
                        now: pd.Timestamp, half_life: str | timedelta) -> np.ndarray:
    """Each user's training distribution with events halved every ``half_life`` of age."""
    w = event_weights(train.frame, None, now=now, half_life=half_life)
    return shares(category_counts(train, users, categories, w))


# -- metrics ---------------------------------------------------------------------------


def _as_distributions(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
    total = p.sum(axis=-1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[-1]) if p.shape[-1] else p
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row Jensen-Shannon divergence, base 2 (in [0, 1])."""
    p, q = _as_distributions(np.atleast_2d(p)), _as_distributions(np.atleast_2d(q))
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=a > 0)
        return (a * np.log2(ratio)).sum(axis=1)

    return np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0)


def top3_overlap(forecast: np.ndarray, actual: np.ndarray, k: int = 3) -> np.ndarray:
    """Per-row ``|F ∩ T| / min(k, |T|)`` (see the module docstring); NaN where the actual
    row is empty."""
    forecast, actual = np.atleast_2d(forecast), np.atleast_2d(actual)
    out = np.full(len(actual), np.nan)
    for i, (f, a) in enumerate(zip(forecast, actual, strict=True)):
        touched = np.flatnonzero(a > 0)
        if len(touched) == 0:
            continue
        if len(touched) > k:
            kth = np.sort(a[touched])[::-1][k - 1]
            touched = touched[a[touched] >= kth]
        order = np.argsort(-f, kind="stable")[:k]
        top = order[f[order] > 0]
        out[i] = len(np.intersect1d(top, touched)) / min(k, len(touched))
    return out


def score_forecast(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Mean JS divergence and top-3 overlap over the rows, and how many there were."""
    if len(actual) == 0:
        return {"js": float("nan"), "top3": float("nan"), "users": 0.0}
    return {"js": float(np.mean(js_divergence(forecast, actual))),
            "top3": float(np.nanmean(top3_overlap(forecast, actual))),
            "users": float(len(actual))}


def align(forecast: np.ndarray, names: Sequence[str], categories: Categories) -> np.ndarray:
    """A forecast over ``names`` as columns of ``categories`` (absent ones get 0)."""
    columns = categories.names.get_indexer(pd.Index([str(n) for n in names], dtype="string"))
    out = np.zeros((len(forecast), len(categories)), dtype=np.float64)
    keep = columns >= 0
    out[:, columns[keep]] = np.asarray(forecast, dtype=np.float64)[:, keep]
    return out


# -- evaluation and trajectories as a run does them -----------------------------------


@dataclass
class InterestReport:
    """What a run records: ``metrics[name][horizon] = {"js", "top3", "users"}``."""

    metrics: dict[str, dict[str, dict[str, float]]]
    evaluated: dict[str, np.ndarray]


def evaluate_interests(train: Events, test: Events, cutoff: pd.Timestamp, users: pd.Index,
                       categories: Categories, horizons: Sequence[str],
                       half_life: str | timedelta,
                       models: Mapping[str, Any] | None = None,
                       features: Features | None = None) -> InterestReport:
    """Score persistence, recency-weighted persistence and every model in ``models`` that
    implements :class:`InterestModel` (rows of ``features`` are ``users``)."""
    history = category_counts(train, users, categories)
    baselines = {PERSISTENCE: shares(history),
                 RECENCY: recency_persistence(train, users, categories, cutoff, half_life)}
    actual, evaluated = {}, {}
    for h in horizons:
        counts = category_counts(test, users, categories, start=cutoff,
                                 end=cutoff + parse_duration(h))
        evaluated[h] = np.flatnonzero((history.sum(axis=1) > 0) & (counts.sum(axis=1) > 0))
        actual[h] = shares(counts[evaluated[h]])
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    rows = np.unique(np.concatenate([np.asarray(v, dtype=np.int64)
                                     for v in evaluated.values()] or [np.zeros(0, int)]))
    for name, model in (models or {}).items():
        if not isinstance(model, InterestModel) or features is None:
            continue
        forecasts = model.forecast_interests(features, rows, list(horizons)) if len(rows) \
            else {h: np.zeros((0, len(categories))) for h in horizons}
        names = model.interest_categories()
        position = {r: i for i, r in enumerate(rows)}
        metrics[name] = {}
        for h in horizons:
            picked = forecasts[h][[position[r] for r in evaluated[h]]]
            metrics[name][h] = score_forecast(align(picked, names, categories), actual[h])
    for name, forecast in baselines.items():
        metrics[name] = {h: score_forecast(forecast[evaluated[h]], actual[h])
                         for h in horizons}
    return InterestReport(metrics, evaluated)


def window_edges(now: pd.Timestamp, window: str | timedelta, n_windows: int
                 ) -> pd.DatetimeIndex:
    """``n_windows + 1`` edges of equal windows ending at ``now``, oldest first."""
    length = parse_duration(window) if isinstance(window, str) else window
    return pd.DatetimeIndex([now - length * (n_windows - i) for i in range(n_windows + 1)])


def window_index(times: pd.Series, now: pd.Timestamp, window: str | timedelta,
                 n_windows: int) -> np.ndarray:
    """Window of each time (0 = oldest, n_windows - 1 = just before ``now``); -1 outside."""
    length = (parse_duration(window) if isinstance(window, str) else window).total_seconds()
    back = (now - times).dt.total_seconds().to_numpy(dtype=np.float64)
    idx = n_windows - 1 - np.floor(back / length)
    ok = (back > 0) & (idx >= 0) & np.isfinite(back)
    return np.where(ok, idx, -1).astype(np.int64)


def horizon_weights(horizon: str, window: str | timedelta) -> np.ndarray:
    """How much of each future window (1, 2, …) ``[now, now + horizon)`` covers."""
    length = (parse_duration(window) if isinstance(window, str) else window).total_seconds()
    span = parse_duration(horizon).total_seconds()
    n = max(1, math.ceil(span / length - 1e-9))
    return np.array([min(span, (k + 1) * length) - k * length for k in range(n)]) / length


def trajectory_frame(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [p for p in parts if len(p)]
    if not frames:
        return pd.DataFrame({c: [] for c in TRAJECTORY_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(TRAJECTORY_COLUMNS)]


def long_rows(users: Sequence[str], values: np.ndarray, names: Sequence[str], *,
              model: str, kind: str, window: np.ndarray | int = 0,
              start: Any = None, end: Any = None, horizon: str = "",
              keep: np.ndarray | None = None) -> pd.DataFrame:
    """Long rows from ``values[u, j]`` (user × name), dropping cells where ``keep`` is
    False; ``window``/``start``/``end`` may be per user (arrays) or shared."""
    values = np.asarray(values)
    keep = np.ones(values.shape, dtype=bool) if keep is None else keep
    u, j = np.nonzero(keep)

    def per_user(v: Any) -> Any:
        return np.asarray(v)[u] if isinstance(v, np.ndarray | pd.Index | list) else v

    return pd.DataFrame({"user": np.asarray(users, dtype=object)[u], "model": model,
                         "kind": kind, "window": per_user(window), "start": per_user(start),
                         "end": per_user(end), "horizon": horizon,
                         "name": np.asarray(names, dtype=object)[j], "value": values[u, j]})


def observed_trajectory(events: Events, users: pd.Index, categories: Categories,
                        now: pd.Timestamp, window: str = DEFAULT_WINDOW,
                        n_windows: int = DEFAULT_N_WINDOWS) -> pd.DataFrame:
    """Category shares of each user's past windows (non-zero shares only)."""
    frame = events.frame
    edges = window_edges(now, window, n_windows)
    idx = window_index(frame["time"], now, window, n_windows)
    rows = _positions(frame["user"], users)
    cats = event_categories(frame, categories)
    keep = (idx >= 0) & (rows >= 0) & (cats >= 0)
    counts = np.zeros((len(users), n_windows, len(categories)))
    np.add.at(counts, (rows[keep], idx[keep], cats[keep]), 1.0)
    parts = []
    for w in range(n_windows):
        s = shares(counts[:, w])
        parts.append(long_rows(users, s, categories.names, model="", kind="observed",
                               window=w - n_windows, start=edges[w], end=edges[w + 1],
                               keep=s > 0))
    return trajectory_frame(parts)


def interest_trajectories(train: Events, cutoff: pd.Timestamp, users: pd.Index,
                          categories: Categories, horizons: Sequence[str],
                          half_life: str | timedelta, model_name: str, model: Any,
                          features: Features) -> pd.DataFrame:
    """The run's ``trajectories.csv``: the model's own trajectory when it forecasts
    interests (else the observed windows), plus both baselines as forecasts."""
    rows = np.arange(len(users))
    if isinstance(model, InterestModel):
        own = model.interest_trajectory(features, rows, list(horizons))
    else:
        own = observed_trajectory(train, users, categories, cutoff)
    parts = [own]
    for name, forecast in ((PERSISTENCE, persistence(train, users, categories)),
                           (RECENCY, recency_persistence(train, users, categories, cutoff,
                                                         half_life))):
        parts.append(long_rows(users, forecast, categories.names, model=name,
                               kind="forecast", start=cutoff, end=None, horizon="",
                               keep=forecast > 0))
    return trajectory_frame(parts)
