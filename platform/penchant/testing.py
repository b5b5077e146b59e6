"""The conformance kit: check a component of any kind against the plugin contract.

Like scikit-learn's ``check_estimator``, for plugin authors to run on their own
components::

    from penchant.testing import check_component

    check_component(MyModel, {"epochs": 2})  # raises ConformanceError listing every failure

or, one pytest test per check::

    from penchant.testing import conformance_cases

    @pytest.mark.parametrize("case", conformance_cases([MyModel], {MyModel: {"epochs": 2}}))
    def test_conformance(case):
        case()

Every kind is checked for: the class contract, a parameter schema that accepts its own
defaults and rejects bad values (naming the key), and a round trip through a pipeline file.
Then, by kind: a source returns canonical events; a preprocessor keeps the schema and never
adds users or items (one that renames them, ``renames``, keeps them one-to-one); a feature
extractor keeps the given indexes and adds blocks with the right row counts; a model fits
on a tiny generated dataset within a time budget, scores every item finitely, excludes seen
items through :func:`penchant.ranking.top_k`, saves and loads to identical scores and is
deterministic under a seed; a recommender returns ranked lists without seen items and
restores its state.

The kit needs no installed plugins: the pipeline round trip uses stand-in components
defined here, so it works the same in a third party's test environment.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from penchant import hookimpl
from penchant.components import (
    BASES,
    Component,
    Context,
    FeatureExtractor,
    Model,
    Recommender,
    Source,
    Validation,
)
from penchant.data import EVENT_COLUMNS, Dataset, Events, Features, Recommendations
from penchant.errors import PipelineError, PluginError
from penchant.params import Param
from penchant.plugins import REGISTRATION_HOOKS, Registry

__all__ = [
    "CheckFailed",
    "CheckSkipped",
    "ConformanceError",
    "check_component",
    "conformance_cases",
    "iter_checks",
    "run_checks",
    "tiny_dataset",
    "tiny_features",
]

#: Seconds one fit of a model on the tiny dataset may take (pass small parameters).
FIT_BUDGET_S = 60.0
#: dtype of each canonical event column, as ``str(dtype)``.
CANONICAL_DTYPES = {"user": "category", "item": "category", "time": "datetime64[ns, UTC]",
                    "event": "category", "value": "float64", "row": "int64"}
NOW = pd.Timestamp("2024-06-01", tz="UTC")


class ConformanceError(PluginError):
    """A component failed one or more conformance checks; ``failures`` holds
    ``(check name, reason)`` pairs."""

    def __init__(self, cls: type, failures: list[tuple[str, str]]) -> None:
        self.cls = cls
        self.failures = failures
        label = f"{getattr(cls, 'kind', '?')} {getattr(cls, 'name', '?')!r} " \
                f"({getattr(cls, '__qualname__', cls)})"
        lines = [f"{label} fails {len(failures)} conformance check(s):"]
        lines += [f"  - {name}: {reason}" for name, reason in failures]
        super().__init__("\n".join(lines))


class CheckFailed(AssertionError):
    """Raised by a check: the component breaks the contract (the message says how)."""


class CheckSkipped(Exception):
    """Raised by a check that cannot run (no params for a source, a failed prerequisite)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "passed", "failed" or "skipped"
    reason: str = ""


# -- tiny generated data ------------------------------------------------------------------

def tiny_frame(users: int = 32, items: int = 24, blocks: int = 4, seed: int = 0
               ) -> pd.DataFrame:
    """Events in canonical columns: user u views 5 items of block u % blocks and one from
    anywhere, buys two of them later (with a price, sometimes missing), and one row is
    an exact duplicate. Every user and most items have at least 5 events."""
    rng = np.random.default_rng(seed)
    width = items // blocks
    rows = []
    for u in range(users):
        block = np.arange((u % blocks) * width, (u % blocks + 1) * width)
        chosen = list(rng.choice(block, size=min(5, width), replace=False))
        chosen += [int(rng.integers(items))]
        for i in dict.fromkeys(int(c) for c in chosen):
            day = int(rng.integers(10, 300))
            rows.append((f"u{u}", f"i{i}", NOW - pd.Timedelta(days=day), "view", np.nan))
        for i in chosen[:2]:
            day = int(rng.integers(1, 10))
            price = np.nan if rng.random() < 0.2 else float(rng.integers(5, 50))
            rows.append((f"u{u}", f"i{i}", NOW - pd.Timedelta(days=day), "purchase", price))
    rows.append(rows[0])
    return pd.DataFrame(rows, columns=["user", "item", "time", "event", "value"])


def tiny_dataset(seed: int = 0) -> Dataset:
    """:func:`tiny_frame` as a Dataset, with an items side table (category, price) and a
    users side table (age, region), indexed by id as sources provide them."""
    events = Events.from_frame(tiny_frame(seed=seed))
    item_ids = sorted(events.frame["item"].astype("string").unique(), key=lambda s: int(s[1:]))
    user_ids = sorted(events.frame["user"].astype("string").unique(), key=lambda s: int(s[1:]))
    items = pd.DataFrame({"category": [f"c{int(i[1:]) % 4}" for i in item_ids],
                          "price": [float(5 + int(i[1:])) for i in item_ids]},
                         index=pd.Index(item_ids, dtype="string", name="item"))
    users = pd.DataFrame({"age": [20 + int(u[1:]) % 40 for u in user_ids],
                          "region": [("north", "south", "east")[int(u[1:]) % 3]
                                     for u in user_ids]},
                         index=pd.Index(user_ids, dtype="string", name="user"))
    return Dataset(events, items=items, users=users, provenance=("penchant.testing",))


def tiny_features(seed: int = 0) -> Features:
    """Features over :func:`tiny_dataset` with ``matrix`` = the binary history and small
    user and item side blocks, as models see them after extraction."""
    dataset = tiny_dataset(seed)
    features = Features.start(dataset, dataset.events.end + pd.Timedelta(days=1))
    features.matrix = features.history.astype(np.float32)
    rng = np.random.default_rng(seed)
    features.user_side["conformance"] = rng.normal(size=(features.shape[0], 2)).astype(
        np.float32)
    features.item_side["conformance"] = rng.normal(size=(features.shape[1], 2)).astype(
        np.float32)
    return features


def tiny_validation(features: Features) -> Validation:
    """A validation cut at the 0.8 quantile of event times, over the same indexes."""
    frame = features.dataset.events.frame
    cut = frame["time"].quantile(0.8)
    before = Dataset(features.dataset.events.select(frame["time"] < cut),
                     features.dataset.items, features.dataset.users)
    val = Features.start(before, cut, users=features.users, items=features.items)
    val.matrix = val.history.astype(np.float32)
    val.user_side, val.item_side = dict(features.user_side), dict(features.item_side)
    targets = ((features.history - val.history) > 0).astype(np.float32).tocsr()
    return Validation(val, targets, k=5)


# -- stand-ins for a minimal pipeline -----------------------------------------------------

class _StubSource(Source):
    name = "conformance-source"
    description = "Stand-in source of penchant.testing: the tiny generated dataset."

    def available_columns(self) -> list[str]:
        return ["user", "item", "time", "event", "value"]

    def load(self, ctx: Context) -> Dataset:
        return tiny_dataset(ctx.seed)


class _StubFeatures(FeatureExtractor):
    name = "conformance-features"
    description = "Stand-in extractor of penchant.testing: matrix = the binary history."

    def extract(self, features: Features, ctx: Context) -> Features:
        features.matrix = features.history.astype(np.float32)
        return features


class _StubModel(Model):
    """Distinct users per item plus a small per-user variation: enough for recommenders."""

    name = "conformance-model"
    description = "Stand-in model of penchant.testing: item popularity with per-user noise."

    def fit(self, features: Features, validation: Validation | None, ctx: Context) -> None:
        self.popularity = np.asarray(features.history.sum(axis=0), dtype=np.float32).ravel()

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        wobble = np.sin(np.add.outer(rows, np.arange(len(self.popularity))) * 0.7)
        return (self.popularity[None, :] + 0.1 * wobble).astype(np.float32)

    def state(self) -> dict[str, Any]:
        import torch

        return {"popularity": torch.from_numpy(self.popularity)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.popularity = state["popularity"].numpy()


class _StubRecommender(Recommender):
    name = "conformance-recommender"
    description = "Stand-in recommender of penchant.testing: top-k without seen items."

    def recommend(self, model: Model, features: Features, rows: np.ndarray, k: int,
                  ctx: Context) -> Recommendations:
        from penchant.ranking import top_k

        return top_k(model.score, features, rows, k, ctx)


_STUBS = {"source": _StubSource, "features": _StubFeatures, "model": _StubModel,
          "recommender": _StubRecommender}
_STUB_PARAMS = {"source": {"columns": {"user": "user", "item": "item", "time": "time"}}}


def registry_for(cls: type[Component]) -> Registry:
    """A registry (no entry points) holding ``cls`` and the kit's stand-ins for the other
    kinds, so a minimal pipeline around ``cls`` resolves whatever is installed."""
    classes = {kind: [stub] for kind, stub in _STUBS.items()}
    classes.setdefault(cls.kind, [])
    if cls.kind in _STUBS and _STUBS[cls.kind].name == cls.name:
        classes[cls.kind] = []
    classes[cls.kind].append(cls)

    class _Plugin:
        pass

    plugin = _Plugin()
    for kind, hook_name in REGISTRATION_HOOKS.items():
        found = list(classes.get(kind, []))
        setattr(plugin, hook_name, hookimpl(lambda found=found: found))
    return Registry(plugins=[plugin], entry_points=False)


def minimal_pipeline(cls: type[Component], params: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest pipeline document with ``cls`` in its stage and stand-ins elsewhere."""
    doc: dict[str, Any] = {
        "pipeline": {"name": "conformance", "seed": 0},
        "source": {"plugin": _StubSource.name, **_STUB_PARAMS["source"]},
        "features": [{"plugin": _StubFeatures.name}],
        "model": {"plugin": _StubModel.name},
        "recommender": {"plugin": _StubRecommender.name},
        "evaluation": {"baselines": []},
    }
    table = {"plugin": cls.name, **params}
    if cls.kind == "preprocessor":
        doc["preprocess"] = [table]
    elif cls.kind == "features":
        doc["features"] = [table]
    else:
        doc[cls.kind] = table
    return doc


# -- helpers ------------------------------------------------------------------------------

def _err(exc: BaseException) -> str:
    import traceback

    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}{where}"


class _Once:
    """A value computed on first use; an error is kept and re-raised as a skip for the
    checks that depend on it (the check that owns it reports the error itself)."""

    def __init__(self, make: Callable[[], Any], owner: str) -> None:
        self.make, self.owner = make, owner
        self.done, self.value, self.error = False, None, None

    def get(self, by: str) -> Any:
        if not self.done:
            self.done = True
            try:
                self.value = self.make()
            except (CheckFailed, CheckSkipped) as exc:
                self.error = exc
            except Exception as exc:
                self.error = CheckFailed(_err(exc))
        if self.error is not None:
            if by == self.owner or isinstance(self.error, CheckSkipped):
                raise type(self.error)(str(self.error))
            raise CheckSkipped(f"needs {self.owner}, which failed")
        return self.value


def _bad_values(param: Param) -> list[tuple[Any, str]]:
    """Values ``param`` must refuse, each with why."""
    wrong_type = {"int": ("not-a-number", "a string for an int"),
                  "float": ("not-a-number", "a string for a float"),
                  "bool": ("yes", "a string for a bool"),
                  "str": (12345, "a number for a string"),
                  "path": (12345, "a number for a path"),
                  "duration": ("forever", "'forever' for a duration"),
                  "timepoint": ("never", "'never' for a timepoint"),
                  "date": ("someday", "'someday' for a date"),
                  "list": ("not-a-list", "a string for a list"),
                  "table": ("not-a-table", "a string for a table")}
    out = [wrong_type[param.type]] if param.type in wrong_type else []
    number = param.type in ("int", "float") or (param.type == "list"
                                                and param.items in ("int", "float"))

    def typed(x: float) -> Any:
        kind = param.items if param.type == "list" else param.type
        x = int(np.floor(x)) if kind == "int" else float(x)
        return [x] if param.type == "list" else x

    if number and param.min is not None:
        out.append((typed(param.min - 1), f"below the minimum {param.min}"))
    if number and param.max is not None:
        out.append((typed(np.floor(param.max) + 1), f"above the maximum {param.max}"))
    if param.choices is not None and all(isinstance(c, str) for c in param.choices):
        bad = "not-one-of-the-choices"
        out.append(([bad] if param.type == "list" else bad, "not one of the choices"))
    return out


def _frame_problems(frame: pd.DataFrame, what: str) -> list[str]:
    problems = []
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        problems.append(f"{what} lack canonical column(s) {', '.join(missing)}")
    for col, dtype in CANONICAL_DTYPES.items():
        if col in frame.columns and str(frame[col].dtype) != dtype:
            problems.append(f"{what} column {col!r} is {frame[col].dtype}, expected {dtype}")
    return problems


def _ids(dataset: Dataset, col: str) -> set[str]:
    return set(dataset.events.frame[col].dropna().astype(str))


def _renaming_problems(before: Dataset, out: Dataset, col: str) -> list[str]:
    """What breaks a one-to-one renaming of ``col`` ids: more distinct ids than given, or
    events whose ids the side table no longer knows."""
    problems = []
    if len(_ids(out, col)) > len(_ids(before, col)):
        problems.append(f"renames {col}s but returned {len(_ids(out, col))} distinct ids "
                        f"from {len(_ids(before, col))}")
    side = f"{col}s"
    table_before, table_out = getattr(before, side), getattr(out, side)
    if table_before is not None and table_out is not None and \
            _ids(before, col) <= set(table_before.index.astype(str)):
        lost = _ids(out, col) - set(table_out.index.astype(str))
        if lost:
            problems.append(f"renamed {col}s in the events but not in the {side} side "
                            f"table alike: {_show(lost)}")
    return problems


def _show(values: Iterable[Any], limit: int = 5) -> str:
    values = sorted(map(str, values))
    return ", ".join(repr(v) for v in values[:limit]) + (" …" if len(values) > limit else "")


def _seen_pairs(recs: pd.DataFrame, features: Features) -> list[tuple[str, str]]:
    rows = features.users.get_indexer(recs["user"].astype("string"))
    cols = features.items.get_indexer(recs["item"].astype("string"))
    known = (rows >= 0) & (cols >= 0)
    hist = features.history.tocsr()
    hits = np.asarray(hist[rows[known], cols[known]]).ravel() > 0
    pairs = recs[known][hits]
    return list(zip(pairs["user"].astype(str), pairs["item"].astype(str), strict=True))


# -- the checks ---------------------------------------------------------------------------

def iter_checks(cls: type[Component], params: Mapping[str, Any] | None = None, *,
                fit_budget_s: float = FIT_BUDGET_S) -> Iterator[tuple[str, Callable[[], None]]]:
    """``(name, check)`` pairs for every check that applies to ``cls``'s kind. A check
    returns on success, raises :class:`CheckFailed` with the reason, or
    :class:`CheckSkipped`. Checks share their expensive steps (one fit), whatever order
    they run in."""
    given = dict(params or {})
    kind = getattr(cls, "kind", "")
    schema = cls.schema() if isinstance(cls, type) and issubclass(cls, Component) else ()
    required = [p.name for p in schema if isinstance(p, Param) and p.required
                and given.get(p.name) is None]

    def need_params() -> None:
        if required:
            hint = " (e.g. a path and the column mapping)" if kind == "source" else ""
            raise CheckSkipped(f"needs parameter(s) {', '.join(required)} from the caller"
                               f"{hint}: pass params={{...}}")

    def make() -> Component:
        need_params()
        try:
            return cls(dict(given))
        except Exception as exc:
            raise CheckFailed(f"{cls.__qualname__}({given!r}) raised {_err(exc)}") from exc

    instance = _Once(make, "params_defaults")

    def contract() -> None:
        base = BASES.get(kind)
        if not (isinstance(cls, type) and base is not None and issubclass(cls, base)):
            bases = ", ".join(f"penchant.{b.__name__}" for b in BASES.values())
            raise CheckFailed(f"kind {kind!r}: the class must subclass the matching base "
                              f"(one of {bases})")
        problems = cls.contract_problems()
        registry = registry_for(cls)
        problems += [str(f) for f in registry.failures]
        if problems:
            raise CheckFailed("; ".join(problems))

    def params_defaults() -> None:
        for p in schema:
            if not p.required and p.default is not None:
                try:
                    p.convert(p.default)
                except ValueError as exc:
                    raise CheckFailed(f"default of {p.name!r} ({p.default!r}) is refused by "
                                      f"its own schema: {exc}") from None
        obj = instance.get("params_defaults")
        for p in schema:
            if p.name not in obj.params:
                raise CheckFailed(f"instance params lack declared key {p.name!r}")
        if given:
            # Validated values must validate again to themselves (what saving relies on).
            again = cls(dict(obj.params))
            if dict(again.params) != dict(obj.params):
                raise CheckFailed(f"params change when validated twice: {dict(obj.params)!r}"
                                  f" → {dict(again.params)!r}")

    def params_reject_bad_values() -> None:
        need_params()
        problems = []
        for p in schema:
            for value, why in _bad_values(p):
                try:
                    cls({**given, p.name: value})
                except PipelineError as exc:
                    if repr(p.name) not in str(exc) and p.name not in str(exc):
                        problems.append(f"{p.name}={value!r} ({why}) raised PipelineError "
                                        f"without naming the key: {exc}")
                except Exception as exc:
                    problems.append(f"{p.name}={value!r} ({why}) raised {_err(exc)}, "
                                    "expected penchant.PipelineError naming the key")
                else:
                    problems.append(f"accepted {p.name}={value!r} ({why}) without raising "
                                    "PipelineError")
        key = "no_such_key_conformance"
        try:
            cls({**given, key: 1})
        except PipelineError as exc:
            if key not in str(exc):
                problems.append(f"an unknown key raised PipelineError without naming it: {exc}")
        except Exception as exc:
            problems.append(f"an unknown key raised {_err(exc)}, expected PipelineError")
        else:
            problems.append(f"accepted an unknown key {key!r}")
        if problems:
            raise CheckFailed("; ".join(problems))

    def pipeline_round_trip() -> None:
        from penchant.pipeline import load_pipeline, save_pipeline

        expected = dict(instance.get("pipeline_round_trip").params)
        registry = registry_for(cls)
        stage = {"preprocessor": "preprocess"}.get(kind, kind)
        with tempfile.TemporaryDirectory(prefix="penchant-conformance-") as tmp:
            path = Path(tmp) / "pipeline.toml"
            doc = minimal_pipeline(cls, given)
            for label in ("as written", "with defaults written out"):
                try:
                    save_pipeline(doc, path)
                    pipeline = load_pipeline(path, registry)
                    obj = pipeline.create(pipeline.stages[stage][0], registry)
                    doc = pipeline.resolved_doc(registry)  # what the second pass saves
                except Exception as exc:
                    raise CheckFailed(f"pipeline file {label}: {_err(exc)}") from exc
                if type(obj) is not cls:
                    raise CheckFailed(f"pipeline file {label}: plugin {cls.name!r} built a "
                                      f"{type(obj).__qualname__}, not {cls.__qualname__}")
                if dict(obj.params) != expected:
                    diff = {k: (expected.get(k), obj.params.get(k))
                            for k in sorted(set(expected) | set(obj.params))
                            if expected.get(k) != obj.params.get(k)}
                    raise CheckFailed(f"pipeline file {label}: params came back different "
                                      f"(key: (expected, got)) {diff!r}")

    checks: list[tuple[str, Callable[[], None]]] = [
        ("contract", contract),
        ("params_defaults", params_defaults),
        ("params_reject_bad_values", params_reject_bad_values),
        ("pipeline_round_trip", pipeline_round_trip),
    ]
    maker = {"source": _source_checks, "preprocessor": _preprocessor_checks,
             "features": _feature_checks, "model": _model_checks,
             "recommender": _recommender_checks}.get(kind)
    if maker is not None:
        checks += maker(cls, given, instance, fit_budget_s)
    yield from checks


def _source_checks(cls: type[Component], given: dict[str, Any], instance: _Once,
                   budget: float) -> list[tuple[str, Callable[[], None]]]:
    def source_canonical_events() -> None:
        source = instance.get("source_canonical_events")
        columns = source.available_columns()
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise CheckFailed(f"available_columns() returned {columns!r}, expected a list "
                              "of column names")
        unmapped = [c for c in source.params.columns.values() if c not in columns]
        if unmapped:
            raise CheckFailed(f"available_columns() lacks mapped column(s) {_show(unmapped)}"
                              f"; it returned {columns!r}")
        dataset = source.load(Context())
        if not isinstance(dataset, Dataset):
            raise CheckFailed(f"load() returned {type(dataset).__qualname__}, expected a "
                              "penchant.Dataset")
        if not isinstance(dataset.events, Events):
            raise CheckFailed(f"load() returned events of type "
                              f"{type(dataset.events).__qualname__}, expected penchant.Events")
        problems = _frame_problems(dataset.events.frame, "events")
        for side in ("items", "users"):
            table = getattr(dataset, side)
            if table is not None and not isinstance(table, pd.DataFrame):
                problems.append(f"{side} side table is {type(table).__qualname__}, expected "
                                "a pandas DataFrame indexed by id")
        if problems:
            raise CheckFailed("; ".join(problems))
        if len(dataset.events) == 0:
            raise CheckFailed("load() returned no events for the given params")

    return [("source_canonical_events", source_canonical_events)]


def _preprocessor_checks(cls: type[Component], given: dict[str, Any], instance: _Once,
                         budget: float) -> list[tuple[str, Callable[[], None]]]:
    before = tiny_dataset()

    def apply() -> Dataset:
        obj = instance.get("preprocessor_keeps_schema")
        out = obj.apply(tiny_dataset(), Context())
        if not isinstance(out, Dataset):
            raise CheckFailed(f"apply() returned {type(out).__qualname__}, expected a "
                              "penchant.Dataset")
        return out

    result = _Once(apply, "preprocessor_keeps_schema")

    def preprocessor_keeps_schema() -> None:
        out = result.get("preprocessor_keeps_schema")
        problems = _frame_problems(out.events.frame, "events after apply()")
        for side in ("items", "users"):
            if getattr(before, side) is not None and getattr(out, side) is None:
                problems.append(f"dropped the {side} side table")
        if problems:
            raise CheckFailed("; ".join(problems))

    def preprocessor_adds_no_ids() -> None:
        out = result.get("preprocessor_adds_no_ids")
        problems = []
        renames = getattr(cls, "renames", ())
        for col in ("user", "item"):
            if col in renames:
                problems += _renaming_problems(before, out, col)
                continue
            invented = _ids(out, col) - _ids(before, col)
            if invented:
                problems.append(f"added {col}(s) not in its input: {_show(invented)}")
        if len(out.events) > len(before.events):
            problems.append(f"returned {len(out.events)} events from {len(before.events)}")
        if problems:
            raise CheckFailed("; ".join(problems))

    return [("preprocessor_keeps_schema", preprocessor_keeps_schema),
            ("preprocessor_adds_no_ids", preprocessor_adds_no_ids)]


def _feature_checks(cls: type[Component], given: dict[str, Any], instance: _Once,
                    budget: float) -> list[tuple[str, Callable[[], None]]]:
    dataset = tiny_dataset()
    frame = dataset.events.frame
    # Reversed order plus ids without events: what a fold-in or a fixed catalogue gives.
    users = pd.Index([*reversed(pd.unique(frame["user"].astype("string"))),
                      "conformance-new-user"], dtype="string")
    items = pd.Index([*reversed(pd.unique(frame["item"].astype("string"))),
                      "conformance-new-item"], dtype="string")

    def extract() -> tuple[Features, Features]:
        obj = instance.get("features_keep_indexes")
        start = Features.start(dataset, dataset.events.end + pd.Timedelta(days=1),
                               users=users.copy(), items=items.copy())
        blank = Features.start(dataset, start.now, users=users.copy(), items=items.copy())
        out = obj.extract(start, Context())
        if not isinstance(out, Features):
            raise CheckFailed(f"extract() returned {type(out).__qualname__}, expected "
                              "penchant.Features")
        return blank, out

    result = _Once(extract, "features_keep_indexes")

    def features_keep_indexes() -> None:
        _, out = result.get("features_keep_indexes")
        for what, want, got in (("users", users, out.users), ("items", items, out.items)):
            if not pd.Index(got).astype("string").equals(want):
                raise CheckFailed(f"changed the {what} index or its order: first ids "
                                  f"{list(got[:3])}, expected {list(want[:3])}")

    def features_add_blocks() -> None:
        blank, out = result.get("features_add_blocks")
        n_users, n_items = len(users), len(items)
        added, problems = [], []
        if out.matrix is not None:
            added.append("matrix")
            if not sp.issparse(out.matrix):
                problems.append(f"matrix is {type(out.matrix).__qualname__}, expected a "
                                "scipy.sparse matrix")
            elif out.matrix.shape != (n_users, n_items):
                problems.append(f"matrix has shape {out.matrix.shape}, expected "
                                f"({n_users}, {n_items})")
        for side, n in (("user_side", n_users), ("item_side", n_items)):
            for key, block in getattr(out, side).items():
                added.append(f"{side}[{key!r}]")
                shape = getattr(block, "shape", None)
                if shape is None or len(shape) != 2 or shape[0] != n:
                    problems.append(f"{side}[{key!r}] has shape {shape}, expected ({n}, …)")
                elif not np.isfinite(np.asarray(block, dtype=np.float64)).all():
                    problems.append(f"{side}[{key!r}] holds non-finite values")
        added += [f"extra[{k!r}]" for k in set(out.extra) - set(blank.extra)]
        if out.history is None or out.history.shape != (n_users, n_items):
            problems.append("history was removed or reshaped")
        if not added:
            problems.append("added nothing: no matrix, side block or extra")
        if problems:
            raise CheckFailed("; ".join(problems))

    return [("features_keep_indexes", features_keep_indexes),
            ("features_add_blocks", features_add_blocks)]


def _save_load(model: Model, items: pd.Index, registry: Registry) -> Model:
    from penchant.artifacts import load_model, save_model

    with tempfile.TemporaryDirectory(prefix="penchant-conformance-") as tmp:
        path = Path(tmp) / "model.pt"
        save_model(model, items, path)
        loaded, loaded_items = load_model(path, registry)
    if not loaded_items.equals(pd.Index(items, dtype="string")):
        raise CheckFailed("the loaded catalogue differs from the saved one")
    return loaded


def _compare(a: np.ndarray, b: np.ndarray, what: str, exact: bool = False) -> None:
    if a.shape != b.shape:
        raise CheckFailed(f"{what}: shapes {a.shape} and {b.shape} differ")
    # NaNs are model_scores' business; here only agreement counts.
    same = np.array_equal(a, b, equal_nan=True) if exact else \
        np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
    if not same:
        diff = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))
        raise CheckFailed(f"{what}: scores differ (max absolute difference {diff:.3g})")


def _model_checks(cls: type[Component], given: dict[str, Any], instance: _Once,
                  budget: float) -> list[tuple[str, Callable[[], None]]]:
    features = tiny_features()
    everyone = np.arange(features.shape[0])
    some = np.array([2, 0, 5])

    def fitted() -> tuple[Model, np.ndarray]:
        model = instance.get("model_fits")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="penchant-conformance-") as tmp:
            model.fit(features, None, Context(seed=0, work_dir=tmp))
        took = time.perf_counter() - started
        if took > budget:
            raise CheckFailed(f"fit took {took:.1f} s on {features.shape[0]} users × "
                              f"{features.shape[1]} items, over the {budget:g} s budget "
                              "(pass smaller params)")
        scores = np.asarray(model.score(features, everyone))
        return model, scores

    fit = _Once(fitted, "model_fits")

    def model_fits() -> None:
        fit.get("model_fits")

    def model_scores() -> None:
        model, scores = fit.get("model_scores")
        n_items = features.shape[1]
        for rows, full in ((everyone, scores), (some, None)):
            s = np.asarray(full if full is not None else model.score(features, rows))
            if s.shape != (len(rows), n_items):
                raise CheckFailed(f"score returned shape {s.shape}, expected "
                                  f"({len(rows)}, {n_items})")
            if not np.issubdtype(s.dtype, np.number):
                raise CheckFailed(f"score returned dtype {s.dtype}, expected numbers")
            bad = ~np.isfinite(s)
            if bad.any():
                raise CheckFailed(f"score returned {int(bad.sum())} non-finite value(s) "
                                  f"(NaN or inf) of {s.size}")
        _compare(np.asarray(model.score(features, some)), scores[some],
                 "scores of rows [2, 0, 5] against the same rows scored with everyone")

    def model_excludes_seen() -> None:
        from penchant.ranking import top_k

        model, _ = fit.get("model_excludes_seen")
        k = 5
        recs = top_k(model.score, features, everyone, k, Context()).frame
        if recs.empty:
            raise CheckFailed("top_k listed nothing from the model's scores")
        seen = _seen_pairs(recs, features)
        if seen:
            raise CheckFailed(f"top_k listed {len(seen)} seen item(s), e.g. {seen[:3]}")
        short = recs.groupby("user").size()
        short = short[short < k]
        if len(short):
            raise CheckFailed(f"{len(short)} user(s) got fewer than {k} items: the model "
                              "scored unseen items -inf")

    def model_save_load() -> None:
        model, scores = fit.get("model_save_load")
        loaded = _save_load(model, features.items, registry_for(cls))
        if dict(loaded.params) != dict(model.params):
            raise CheckFailed(f"params came back as {dict(loaded.params)!r}, saved "
                              f"{dict(model.params)!r}")
        _compare(np.asarray(loaded.score(features, everyone)), scores,
                 "the loaded model against the saved one", exact=True)

    def model_deterministic() -> None:
        _, scores = fit.get("model_deterministic")
        again = cls(dict(given))
        with tempfile.TemporaryDirectory(prefix="penchant-conformance-") as tmp:
            again.fit(features, None, Context(seed=0, work_dir=tmp))
        _compare(np.asarray(again.score(features, everyone)), scores,
                 "two fits with Context(seed=0)")

    return [("model_fits", model_fits), ("model_scores", model_scores),
            ("model_excludes_seen", model_excludes_seen),
            ("model_save_load", model_save_load),
            ("model_deterministic", model_deterministic)]


def _recommender_checks(cls: type[Component], given: dict[str, Any], instance: _Once,
                        budget: float) -> list[tuple[str, Callable[[], None]]]:
    features = tiny_features()
    rows = np.arange(features.shape[0])[::2]
    k = 5

    def run() -> tuple[Recommender, Model, Recommendations]:
        rec = instance.get("recommender_lists")
        model = _StubModel({})
        model.fit(features, None, Context())
        rec.fit(model, features, tiny_validation(features), Context(seed=0))
        out = rec.recommend(model, features, rows, k, Context())
        if not isinstance(out, Recommendations):
            raise CheckFailed(f"recommend() returned {type(out).__qualname__}, expected "
                              "penchant.Recommendations")
        return rec, model, out

    result = _Once(run, "recommender_lists")

    def recommender_lists() -> None:
        _, _, out = result.get("recommender_lists")
        frame = out.frame
        if list(frame.columns) != list(Recommendations.COLUMNS):
            raise CheckFailed(f"columns are {list(frame.columns)}, expected "
                              f"{list(Recommendations.COLUMNS)}")
        if frame.empty:
            raise CheckFailed("recommend() listed nothing")
        asked = set(features.users[rows].astype(str))
        strangers = set(frame["user"].astype(str)) - asked
        if strangers:
            raise CheckFailed(f"listed users that were not asked for: {_show(strangers)}")
        for user, group in frame.groupby("user", sort=False, observed=True):
            ranks = group["rank"].tolist()
            if sorted(ranks) != list(range(1, len(ranks) + 1)) or len(ranks) > k:
                raise CheckFailed(f"user {user!r} got ranks {ranks}, expected 1..{k}")
            if group["item"].duplicated().any():
                raise CheckFailed(f"user {user!r} got an item twice")
            ordered = group.sort_values("rank")["score"].to_numpy(dtype=np.float64)
            if (np.diff(ordered) > 1e-6).any():
                raise CheckFailed(f"user {user!r}: scores rise with rank: {ordered.tolist()}")
        missing = asked - set(frame["user"].astype(str))
        if missing:
            raise CheckFailed(f"no list for {len(missing)} user(s), e.g. {_show(missing, 3)}")

    def recommender_excludes_seen() -> None:
        rec, _, out = result.get("recommender_excludes_seen")
        if not rec.params.get("exclude_seen", True):
            raise CheckSkipped("exclude_seen is off in the given params")
        seen = _seen_pairs(out.frame, features)
        if seen:
            raise CheckFailed(f"listed {len(seen)} seen item(s), e.g. {seen[:3]}")

    def recommender_state_round_trip() -> None:
        import torch

        rec, model, out = result.get("recommender_state_round_trip")
        buffer = io.BytesIO()
        try:
            torch.save(rec.state(), buffer)
            buffer.seek(0)
            state = torch.load(buffer, weights_only=True)
        except Exception as exc:
            raise CheckFailed(f"state() does not save and load with weights_only=True: "
                              f"{_err(exc)}") from exc
        fresh = cls(dict(given))
        fresh.load_state(state)
        again = fresh.recommend(model, features, rows, k, Context()).frame
        try:
            pd.testing.assert_frame_equal(again.reset_index(drop=True),
                                          out.frame.reset_index(drop=True))
        except AssertionError as exc:
            raise CheckFailed("a fresh instance given load_state(state()) recommends "
                              f"differently: {str(exc).splitlines()[0]}") from None

    return [("recommender_lists", recommender_lists),
            ("recommender_excludes_seen", recommender_excludes_seen),
            ("recommender_state_round_trip", recommender_state_round_trip)]


# -- running ------------------------------------------------------------------------------

def run_checks(cls: type[Component], params: Mapping[str, Any] | None = None, *,
               fit_budget_s: float = FIT_BUDGET_S) -> list[CheckResult]:
    """Every applicable check, run in order; never raises for a failing component."""
    results = []
    for name, check in iter_checks(cls, params, fit_budget_s=fit_budget_s):
        try:
            check()
        except CheckSkipped as exc:
            results.append(CheckResult(name, "skipped", str(exc)))
        except CheckFailed as exc:
            results.append(CheckResult(name, "failed", str(exc)))
        except Exception as exc:
            results.append(CheckResult(name, "failed", f"raised {_err(exc)}"))
        else:
            results.append(CheckResult(name, "passed"))
    return results


def check_component(cls: type[Component], params: Mapping[str, Any] | None = None, *,
                    fit_budget_s: float = FIT_BUDGET_S) -> None:
    """Run every check that applies to ``cls``; raise :class:`ConformanceError` listing
    each failed check by name with its reason. Skipped checks (a source without params)
    do not fail; :func:`run_checks` lists them."""
    failed = [(r.name, r.reason) for r in run_checks(cls, params, fit_budget_s=fit_budget_s)
              if r.status == "failed"]
    if failed:
        raise ConformanceError(cls, failed)


@dataclass(frozen=True)
class ConformanceCase:
    """One check of one class, callable from a pytest test: failures raise
    :class:`ConformanceError`, skips call ``pytest.skip``."""

    cls: type[Component]
    name: str
    check: Callable[[], None]

    def __call__(self) -> None:
        try:
            self.check()
        except CheckSkipped as exc:
            import pytest

            pytest.skip(f"{self.name}: {exc}")
        except CheckFailed as exc:
            raise ConformanceError(self.cls, [(self.name, str(exc))]) from None
        except Exception as exc:
            raise ConformanceError(self.cls, [(self.name, f"raised {_err(exc)}")]) from exc

    def __repr__(self) -> str:
        return f"{self.cls.name}-{self.name}"


def conformance_cases(classes: Iterable[type[Component]],
                      params: Mapping[Any, Mapping[str, Any]] | None = None, *,
                      fit_budget_s: float = FIT_BUDGET_S) -> list[Any]:
    """``pytest.param`` per (class, check), with ids like ``vae-model_scores``, for
    ``@pytest.mark.parametrize("case", conformance_cases([...]))`` and ``case()`` in the
    test. ``params`` maps a class (or its name) to the params to check it with."""
    import pytest

    params = params or {}
    out = []
    for cls in classes:
        given = params.get(cls, params.get(getattr(cls, "name", None)))
        for name, check in iter_checks(cls, given, fit_budget_s=fit_budget_s):
            out.append(pytest.param(ConformanceCase(cls, name, check),
                                    id=f"{cls.kind}-{cls.name}-{name}"))
    return out
