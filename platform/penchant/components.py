"""Base classes of the five component kinds.

A plugin registers subclasses of these. Each class says who it is (``name``,
``description``), what it accepts (``params``, a tuple of :class:`~penchant.params.Param`)
and implements one or two methods. The host builds instances with validated parameters and
calls them in pipeline order; components never call each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from penchant.data import (
    OPTIONAL_MAPPING,
    REQUIRED_MAPPING,
    Dataset,
    Features,
    Recommendations,
)
from penchant.increments import Increments
from penchant.loading import ON_ERROR, EventsBuilder, utc_or_none
from penchant.metrics import ndcg_from_scores
from penchant.params import Param, ParamValues, validate

KINDS = ("source", "preprocessor", "features", "model", "recommender")
_COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass
class Context:
    """What a running component may use from the host, without importing the runner.

    ``report`` collects figures a stage wants recorded with the run (rows dropped, …);
    ``progress`` and ``log`` reach the observer hooks; ``check_cancelled`` raises when the
    user stopped the run, so long loops call it between steps; ``features_at`` rebuilds
    the features as of an earlier cut.
    """

    seed: int = 0
    device: str = "auto"
    work_dir: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda message: None
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None
    epoch_end: Callable[[int, dict[str, float], dict[str, float]], None] = (
        lambda epoch, losses, metrics: None)
    check_cancelled: Callable[[], None] = lambda: None
    #: The pipeline's features as they stood at an earlier time (same user and item
    #: indexes): what models that learn "what comes next" train from. None outside a run.
    features_at: Callable[[pd.Timestamp], Features] | None = None
    #: What incremental sources read in earlier runs (see :mod:`penchant.increments`).
    #: None outside a run: a source then reads everything.
    increments: Increments | None = None


class Component:
    """Common to every kind: identity, parameters, and construction from validated values."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        raw = dict(params or {})
        self.params: ParamValues = validate(self.schema(), raw, where or f"[{self.name}]")
        #: Folder that relative paths are read against: the pipeline file's folder.
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()

    def resolve_path(self, path: str | Path) -> Path:
        return (self.base_dir / Path(path).expanduser()).resolve()

    @classmethod
    def schema(cls) -> tuple[Param, ...]:
        """Every parameter this component accepts (base-class ones included)."""
        return cls.params

    @classmethod
    def contract_problems(cls) -> list[str]:
        """Why the host must refuse this class (empty when it keeps the contract)."""
        problems = []
        if cls.kind not in KINDS:
            problems.append(f"kind {cls.kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(cls.name, str) or not _COMPONENT_NAME.match(cls.name):
            problems.append(f"name {cls.name!r} must be lower-case letters, digits and dashes")
        if not cls.description:
            problems.append("description is empty")
        seen = set()
        for p in cls.schema():
            if not isinstance(p, Param):
                problems.append(f"parameter {p!r} is not a penchant.Param")
                continue
            if p.name in seen:
                problems.append(f"parameter {p.name!r} is declared twice")
            seen.add(p.name)
            problems.extend(f"parameter {p.name!r}: {x}" for x in p.contract_problems())
        return problems


class Source(Component):
    """Reads events (and optional item/user side tables) from somewhere.

    Every source shares the column mapping and time parsing parameters below; a subclass
    adds its own (a path, a URL…) in ``params``.
    """

    kind = "source"
    common_params: ClassVar[tuple[Param, ...]] = (
        Param("columns", "table", items="str", required=True,
              keys=REQUIRED_MAPPING + OPTIONAL_MAPPING,
              help="source column for each of user, item, time (required), event, value"),
        Param("time_unit", "str", "auto", choices=("auto", "s", "ms", "iso"),
              help="how times are written: epoch seconds/milliseconds, ISO 8601, or guess"),
        Param("items", "table", items="str", keys=("path", "table", "id"),
              help="item side table, e.g. { path = \"items.csv\", id = \"item_id\" }"),
        Param("users", "table", items="str", keys=("path", "table", "id"),
              help="user side table, e.g. { path = \"users.csv\", id = \"user_id\" }"),
        Param("since", "date", None,
              help="keep events at or after this time (ISO date; UTC unless it says)"),
        Param("until", "date", None, help="keep events before this time (ISO date)"),
        Param("on_error", "str", "stop", choices=ON_ERROR,
              help="rows with a null id, a bad time or a value that is not a number: "
                   "stop the run naming them, or drop them and record which"),
    )

    @classmethod
    def schema(cls) -> tuple[Param, ...]:
        return cls.common_params + cls.params

    def __init__(self, params: ParamValues | dict[str, Any] | None = None,
                 where: str | None = None, base_dir: str | Path | None = None) -> None:
        super().__init__(params, where, base_dir)
        missing = [c for c in REQUIRED_MAPPING if c not in self.params.columns]
        if missing:
            from penchant.errors import PipelineError

            raise PipelineError(f"{where or self.name}: key 'columns' must map "
                                f"{', '.join(missing)}, e.g. columns = {{ user = \"user_id\", "
                                "item = \"item_id\", time = \"timestamp\" }")

    def available_columns(self) -> list[str]:
        """Column names the events table has, read cheaply (a header, a schema)."""
        raise NotImplementedError

    def describe_origin(self) -> str:
        """Where the data comes from, for messages (a path, a masked URL)."""
        return self.name

    def load(self, ctx: Context) -> Dataset:
        """Read everything, mapped to canonical columns (see :class:`~penchant.data.Events`)."""
        raise NotImplementedError

    def sample(self, ctx: Context, rows: int) -> Dataset:
        """The first ``rows`` events with the side tables, for a look before a long run
        (``penchant sources test``, the app's preview, where preprocessors run on it). This
        default reads everything; a source that can stop early overrides it."""
        dataset = self.load(ctx)
        return dataset.with_events(dataset.events.select(np.arange(len(dataset.events)) < rows))

    def count(self) -> int | None:
        """How many rows a load would read, before checks; None when the source cannot
        say without reading them all. A source that pushes ``since``/``until`` down counts
        within them."""
        return None

    def events_builder(self, ctx: Context, origin: str, *, row_name: str = "row",
                       total: int = 0, time_unit: str | None = None) -> EventsBuilder:
        """Where ``load`` puts its chunks: checked against ``on_error`` and kept to the
        ``since``/``until`` window, whatever the source pushed down itself. ``time_unit``
        overrides the parameter once a source has settled what ``"auto"`` means."""
        since, until = self.window()
        return EventsBuilder(origin, ctx, time_unit=time_unit or self.params.time_unit,
                             on_error=self.params.on_error, since=since, until=until,
                             row_name=row_name, total=total)

    def window(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """``since``/``until`` as UTC timestamps (None when unset)."""
        return utc_or_none(self.params.since), utc_or_none(self.params.until)


class Preprocessor(Component):
    """Takes a dataset and returns a cleaned or filtered one; never invents users or items.

    A step that replaces ids one-to-one (pseudonyms) names those columns in ``renames``:
    its output then holds new ids by design, and the conformance kit checks the renaming
    instead (no more distinct ids than given, the side table renamed alike).
    """

    kind = "preprocessor"
    renames: ClassVar[tuple[str, ...]] = ()

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        raise NotImplementedError


class FeatureExtractor(Component):
    """Adds to :class:`~penchant.data.Features` (matrix, side blocks, extras).

    Extractors only read ``features.dataset`` (events before ``features.now``) and keep the
    given ``users``/``items`` order, so the same extractor serves training and the fold-in
    of a user the model never saw.
    """

    kind = "features"

    def extract(self, features: Features, ctx: Context) -> Features:
        raise NotImplementedError


@dataclass
class Validation:
    """A temporal hold-out inside the training period, for early stopping.

    ``features`` are built from events before the validation cut (same indexes as
    training); ``targets`` mark what each user did after it that they had not done before.
    """

    features: Features
    targets: sp.csr_matrix
    k: int = 20
    #: Score at most this many users (the same seeded sample every time; 0: all of them):
    #: on millions of users an epoch's check would otherwise cost as much as the epoch.
    max_users: int = 0

    def users(self) -> np.ndarray:
        """Rows that can be scored: users with history before the cut and targets after."""
        rows = np.flatnonzero((np.diff(self.targets.indptr) > 0)
                              & (np.diff(self.features.history.indptr) > 0))
        if 0 < self.max_users < len(rows):
            rows = np.sort(np.random.default_rng(0).choice(rows, self.max_users,
                                                           replace=False))
        return rows

    def ndcg(self, score: Callable[[Features, np.ndarray], np.ndarray],
             batch_size: int = 2048) -> float:
        """Mean NDCG@k over :meth:`users` of what ``score`` ranks first among each user's
        unseen items (NaN when no user can be scored), a batch of users at a time so the
        dense scores never span every user."""
        rows = self.users()
        per_user = [np.zeros(0)]
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            scores = np.asarray(score(self.features, batch), dtype=np.float32)
            scores[self.features.history[batch].nonzero()] = -np.inf
            per_user.append(ndcg_from_scores(scores, self.targets[batch], self.k))
        per_user = np.concatenate(per_user)
        return float(np.nanmean(per_user)) if len(per_user) else float("nan")


class Model(Component):
    """Learns from features and scores every item for some users.

    ``state`` must hold only tensors, arrays, numbers, strings and containers of them, so a
    checkpoint loads with ``torch.load(weights_only=True)``.

    ``explain`` is optional: a model that can say which of a user's history items made an
    item's score overrides it and names how in ``explanation_method`` (``"exact"``,
    ``"gradient × input"``…). Without it the host explains by item similarity
    (:mod:`penchant.explain`), so every model's recommendations come with reasons.

    ``embed`` is optional too: a model with a latent space (a VAE's encoder mean, an
    autoencoder's hidden layer) returns each user's point in it, which the host projects to
    draw how users' interests move (:mod:`penchant.latent`). Without it there is no such
    plot.
    """

    kind = "model"
    #: How this model's ``explain`` attributes scores, shown with every explanation.
    explanation_method: ClassVar[str] = ""

    def fit(self, features: Features, validation: Validation | None, ctx: Context) -> None:
        raise NotImplementedError

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        """Scores (len(rows) × n_items, higher is better) for users at ``rows``."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def explain(self, features: Features, row: int,
                items: np.ndarray) -> sp.spmatrix | np.ndarray | None:
        """Why the user at ``row`` gets ``items`` (column indexes): a ``len(items) × n_items``
        matrix (sparse or dense) whose row i holds each history item's contribution to the
        score of ``items[i]``, non-zero only for items in the user's history. None (this
        default) leaves it to the host's item-similarity explanation; a model whose scores
        do not come from the user's history returns all zeros rather than invent reasons."""
        return None

    def embed(self, features: Features, rows: np.ndarray) -> np.ndarray | None:
        """The users at ``rows`` as points of the model's latent space: a ``len(rows) × d``
        float array (a VAE's encoder mean, an autoencoder's hidden layer), computed without
        randomness. None (this default) for a model without one (popularity, EASE…)."""
        return None


class Recommender(Component):
    """Turns a model's scores into ranked lists.

    A recommender that learns something of its own (blend weights, item statistics)
    overrides ``fit`` and keeps it in ``state`` so a stored run recommends the same way.
    """

    kind = "recommender"

    def fit(self, model: Model, features: Features, validation: Validation | None,
            ctx: Context) -> None:
        """Learn from ``model``'s scores on ``validation`` (a model that has not seen the
        validation window) and from ``features`` (the whole training period)."""

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``fit`` learnt."""

    def recommend(self, model: Model, features: Features, rows: np.ndarray, k: int,
                  ctx: Context) -> Recommendations:
        raise NotImplementedError


BASES: dict[str, type[Component]] = {
    "source": Source,
    "preprocessor": Preprocessor,
    "features": FeatureExtractor,
    "model": Model,
    "recommender": Recommender,
}


def empty_recommendations() -> Recommendations:
    return Recommendations(pd.DataFrame({"user": pd.Series(dtype="string"),
                                         "item": pd.Series(dtype="string"),
                                         "rank": pd.Series(dtype="int64"),
                                         "score": pd.Series(dtype="float32")}))
