"""Recommending from a finished run, to users it trained on or to new users by history.

A new user is *folded in*: their history goes through the run's own feature extractors
over the model's catalogue, and the trained model scores it. Nothing is retrained, so a
shop can serve a visitor the model has never seen. Either kind of user can also have each
recommendation explained (:mod:`penchant.explain`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from penchant import run_data
from penchant.artifacts import load_checkpoint, load_features
from penchant.components import Context
from penchant.data import Dataset, Events, Features
from penchant.errors import DataError, StoreError
from penchant.explain import Explanation, explain_recommendations
from penchant.plugins import Registry, default_registry
from penchant.runner import extract_features
from penchant.store import RunStore


class TrainedRun:
    def __init__(self, run_id: int, store: RunStore | None = None,
                 registry: Registry | None = None) -> None:
        self.store = store or RunStore()
        self.registry = registry or default_registry()
        record = self.store.run(run_id)
        if record.status != "finished":
            raise StoreError(f"run {run_id} is {record.status}; only finished runs can "
                             "recommend")
        paths = self.store.artifacts(run_id)
        missing = [name for name in ("model", "features", "pipeline")
                   if name not in paths or not Path(paths[name]).exists()]
        if missing:
            raise StoreError(f"run {run_id}: artifact(s) {', '.join(missing)} are missing "
                             f"from {record.out_dir}")
        self.run_id = run_id
        # Relative paths (the source's files) resolve as when the run was made.
        self.pipeline = run_data.stored_pipeline(self.store, run_id, self.registry)
        self.model, self.items, recommender_state = load_checkpoint(Path(paths["model"]),
                                                                    self.registry)
        stored = load_features(Path(paths["features"]))
        empty = Dataset(Events.concat([]))
        self.features = Features(users=stored["users"], items=stored["items"],
                                 now=stored["now"], dataset=empty, matrix=stored["matrix"],
                                 history=stored["history"], idle_days=stored["idle_days"])
        self.recommender = self.pipeline.create(self.pipeline.one("recommender"),
                                                self.registry)
        self.recommender.load_state(recommender_state)
        #: Each catalogue item's category ("" for none), when the run saved the column
        #: the pipeline names (``[evaluation] category``); None otherwise.
        saved = stored.get("item_category_column") == self.pipeline.evaluation.category
        self.categories: np.ndarray | None = stored["item_category"] if saved else None
        self._stored_lists: tuple[pd.DataFrame, dict[str, tuple[int, int]]] | None = None

    @property
    def users(self) -> pd.Index:
        return self.features.users

    def recommend(self, user: str, k: int = 10) -> pd.DataFrame:
        """Top-k for a user the run trained on.

        The run ranked every user when it finished (``recommendations.csv``, as deep as
        its ``recommend_k``); while ``k`` is within that depth the list is looked up there,
        so serving a known user costs microseconds, not a pass through the model. Deeper
        lists are scored by the model."""
        if k <= self.pipeline.evaluation.recommend_k:
            lists, offsets = self._lists()
            span = offsets.get(str(user))
            if span is not None:
                start, end = span
                return lists.iloc[start:min(end, start + k)].reset_index(drop=True)
        return self._recommend(self.features, self._row(user), k)

    def _lists(self) -> tuple[pd.DataFrame, dict[str, tuple[int, int]]]:
        """The run's stored lists and where each user's rows are, read once."""
        if self._stored_lists is None:
            lists = run_data.shown_lists(self.store, self.run_id)
            users = lists["user"].to_numpy()
            starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
            ends = np.r_[starts[1:], len(users)]
            self._stored_lists = (lists, {str(users[s]): (int(s), int(e))
                                          for s, e in zip(starts, ends, strict=True)})
        return self._stored_lists

    def explain(self, user: str, k: int = 10, top: int = 5) -> list[Explanation]:
        """``recommend(user, k)`` with why: the ``top`` history items behind each item and
        the categories they come from."""
        row = self._row(user)
        return self._explain(self.features, row, self._recommend(self.features, row, k), top)

    def recommend_history(self, history: pd.DataFrame, k: int = 10, user: str = "new",
                          now: pd.Timestamp | None = None) -> pd.DataFrame:
        """Top-k for a user given only their history: columns ``item`` and optionally
        ``time`` (default: now), ``event``, ``value``. Items outside the model's catalogue
        are ignored."""
        return self._recommend(self._fold_in(history, user, now), 0, k)

    def explain_history(self, history: pd.DataFrame, k: int = 10, top: int = 5,
                        user: str = "new", now: pd.Timestamp | None = None
                        ) -> list[Explanation]:
        """``recommend_history`` with why, as :meth:`explain`."""
        features = self._fold_in(history, user, now)
        return self._explain(features, 0, self._recommend(features, 0, k), top)

    def _row(self, user: str) -> int:
        row = self.features.users.get_indexer([str(user)])[0]
        if row < 0:
            raise DataError(f"user {user!r} has no history in run {self.run_id}; pass their "
                            "history to recommend_history() instead")
        return int(row)

    def _recommend(self, features: Features, row: int, k: int) -> pd.DataFrame:
        recs = self.recommender.recommend(self.model, features, np.array([row]), k, Context())
        return recs.frame.reset_index(drop=True)

    def _explain(self, features: Features, row: int, recs: pd.DataFrame,
                 top: int) -> list[Explanation]:
        # Similarity needs the run's whole training matrix, also for a folded-in user.
        return explain_recommendations(self.model, features, row, recs, self.features.matrix,
                                       self.categories, top)

    def fold_in(self, history: pd.DataFrame, now: pd.Timestamp | None = None,
                users: pd.Index | None = None) -> Features:
        """Features for many users at once, built from ``history`` (columns ``user``,
        ``item`` and optionally ``time``, ``event``, ``value``) by the run's own extractors
        over the model's catalogue, as of ``now`` (default: the run's cutoff). One row per
        user of ``users`` (default: those in the history, in order of appearance); a user
        without events gets an empty row."""
        if "item" not in history.columns:
            raise DataError("history needs an 'item' column")
        if "user" not in history.columns:
            raise DataError("history needs a 'user' column")
        now = now if now is not None else self.features.now
        frame = history.copy()
        frame["user"] = frame["user"].astype(str)
        if "time" not in frame.columns:
            frame["time"] = now
        if users is None:
            users = pd.Index(pd.unique(frame["user"]), dtype="string")
        events = Events.from_frame(frame)
        if len(events):  # no events at all: every user's row is empty
            events.check("history")
            now = max(now, events.end)
        return extract_features(self.pipeline, self.registry, Dataset(events), now,
                                Context(), pd.Index(users, dtype="string"), self.items)

    def _fold_in(self, history: pd.DataFrame, user: str,
                 now: pd.Timestamp | None) -> Features:
        """One-row features for ``history``, built by the run's own extractors."""
        if "item" not in history.columns:
            raise DataError("history needs an 'item' column")
        return self.fold_in(history.assign(user=user), now, pd.Index([user], dtype="string"))
