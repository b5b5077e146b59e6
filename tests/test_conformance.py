"""The conformance kit (penchant.testing): every built-in component passes it, and broken
components are reported precisely, by check name and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import penchant
from penchant import Context, Dataset, Features, Model, Param, ParamValues, Preprocessor
from penchant.plugins import Registry
from penchant.testing import (
    ConformanceError,
    check_component,
    conformance_cases,
    iter_checks,
    run_checks,
    tiny_frame,
)

#: Small enough that every torch model fits the tiny dataset in a second or two.
SMALL: dict[str, Any] = {"epochs": 2, "hidden": 16, "latent": 8, "batch_size": 16,
                         "device": "cpu", "g_hidden": 16, "d_hidden": 16, "state": 8,
                         "embedding": 8, "n_windows": 4}
#: Required parameters the kit cannot guess (sources are checked separately, with a file).
REQUIRED: dict[str, dict[str, Any]] = {"fill-missing": {"columns": {"value": "median"}},
                                     "drop-columns": {"columns": ["users.age"]},
                                     "pseudonymize": {"key": "conformance-kit-key-0123"}}

BUILTINS = [info.cls for info in Registry().all()]


def small_params(cls: type) -> dict[str, Any]:
    keys = {p.name for p in cls.schema()}
    return {**{k: v for k, v in SMALL.items() if k in keys}, **REQUIRED.get(cls.name, {})}


def test_every_kind_is_built_in() -> None:
    assert {cls.kind for cls in BUILTINS} == set(penchant.components.KINDS)


@pytest.mark.parametrize("case", conformance_cases(
    [c for c in BUILTINS if c.kind != "source"],
    {c: small_params(c) for c in BUILTINS}))
def test_builtin_passes(case) -> None:
    case()


def kit_frame() -> pd.DataFrame:
    """The kit's tiny dataset under the column names a shop's export might use."""
    frame = tiny_frame().rename(columns={"user": "user_id", "item": "item_id",
                                         "time": "ts", "event": "kind"})
    frame["ts"] = frame["ts"].map(lambda t: t.isoformat())
    return frame


KIT_COLUMNS = {"user": "user_id", "item": "item_id", "time": "ts", "event": "kind",
               "value": "value"}


def csv_params(folder: Path) -> dict[str, Any]:
    path = folder / "events.csv"
    kit_frame().to_csv(path, index=False)
    return {"path": str(path), "columns": KIT_COLUMNS}


def parquet_params(folder: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "events.parquet"
    pq.write_table(pa.Table.from_pandas(kit_frame(), preserve_index=False), path)
    return {"path": str(path), "columns": KIT_COLUMNS}


def sql_params(folder: Path) -> dict[str, Any]:
    import sqlite3

    path = folder / "events.db"
    with sqlite3.connect(path) as conn:
        kit_frame().to_sql("events", conn, index=False)
    return {"url": f"sqlite:///{path}", "table": "events", "columns": KIT_COLUMNS}


#: Each built-in source's parameters over the kit's dataset, written into ``folder``. A
#: source that needs a server runs the kit in its own test module, with the server fixture.
SOURCE_PARAMS: dict[str, Callable[[Path], dict[str, Any]] | None] = {"csv": csv_params,
                                                                     "mongodb": None,
                                                                     "parquet": parquet_params,
                                                                     "sql": sql_params}


@pytest.mark.parametrize("cls", [c for c in BUILTINS if c.kind == "source"],
                         ids=lambda c: c.name)
def test_builtin_sources_pass(cls, tmp_path: Path) -> None:
    assert cls.name in SOURCE_PARAMS, f"give the {cls.name} source params for the kit"
    if SOURCE_PARAMS[cls.name] is None:
        pytest.skip(f"{cls.name} runs the kit in its own module, against a server")
    results = run_checks(cls, SOURCE_PARAMS[cls.name](tmp_path))
    assert [r for r in results if r.status != "passed"] == []


def test_a_source_without_params_is_skipped_with_the_reason() -> None:
    csv = Registry().get("source", "csv")
    results = {r.name: r for r in run_checks(csv)}
    assert results["contract"].status == "passed"
    assert results["source_canonical_events"].status == "skipped"
    assert "columns, path" in results["source_canonical_events"].reason
    check_component(csv)  # skips are not failures


def test_iter_checks_names_the_checks_of_each_kind() -> None:
    names = [name for name, _ in iter_checks(Registry().get("model", "popularity"))]
    assert names == ["contract", "params_defaults", "params_reject_bad_values",
                     "pipeline_round_trip", "model_fits", "model_scores",
                     "model_excludes_seen", "model_save_load", "model_deterministic"]


# -- broken components ----------------------------------------------------------------------

class _Base(Model):
    description = "A deliberately broken model."

    def fit(self, features: Features, validation: Any, ctx: Context) -> None:
        self.n = features.shape[1]
        self.rng = np.random.default_rng(ctx.seed)
        self.w = self.rng.random(self.n).astype(np.float32)

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.w, (len(rows), 1))

    def state(self) -> dict[str, Any]:
        import torch

        return {"w": torch.from_numpy(self.w)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.w = state["w"].numpy()


class WrongShape(_Base):
    name = "wrong-shape"

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        return super().score(features, rows)[:, :-1]


class NaNScores(_Base):
    name = "nan-scores"

    def score(self, features: Features, rows: np.ndarray) -> np.ndarray:
        s = super().score(features, rows)
        s[:, 0] = np.nan
        return s


class Unseeded(_Base):
    name = "unseeded"

    def fit(self, features: Features, validation: Any, ctx: Context) -> None:
        self.w = np.random.default_rng().random(features.shape[1]).astype(np.float32)


class Inventor(Preprocessor):
    name = "inventor"
    description = "Adds a user from nowhere."

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        frame = dataset.events.frame
        ghost = pd.DataFrame({"user": ["ghost"], "item": [str(frame["item"].iloc[0])],
                              "time": [frame["time"].iloc[0]]})
        both = pd.concat([frame[["user", "item", "time"]].astype({"user": "string",
                                                                   "item": "string"}),
                          ghost], ignore_index=True)
        return dataset.with_events(penchant.Events.from_frame(both))


class AcceptsAnything(Preprocessor):
    name = "accepts-anything"
    description = "Declares a schema but never validates against it."
    params = (Param("alpha", "float", 1.0, min=0, max=10),
              Param("mode", "str", "fast", choices=("fast", "slow")))

    def __init__(self, params: Any = None, where: Any = None, base_dir: Any = None) -> None:
        self.params = ParamValues({"alpha": 1.0, "mode": "fast", **(params or {})})

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        return dataset


class BadName(Preprocessor):
    name = "Bad Name"
    description = ""

    def apply(self, dataset: Dataset, ctx: Context) -> Dataset:
        return dataset


def failures(cls: type, params: dict[str, Any] | None = None) -> dict[str, str]:
    with pytest.raises(ConformanceError) as info:
        check_component(cls, params)
    assert isinstance(info.value, penchant.PluginError)
    assert cls.name in str(info.value)
    return dict(info.value.failures)


def test_wrong_shape_is_reported_with_both_shapes() -> None:
    found = failures(WrongShape)
    assert found["model_scores"] == "score returned shape (32, 23), expected (32, 24)"
    assert "model_excludes_seen" in found
    assert "model_fits" not in found and "model_deterministic" not in found


def test_nan_scores_are_reported() -> None:
    found = failures(NaNScores)
    assert set(found) == {"model_scores", "model_excludes_seen"}
    assert "32 non-finite value(s)" in found["model_scores"]
    assert "returned NaN scores" in found["model_excludes_seen"]  # the host says so too


def test_an_unseeded_model_is_not_deterministic() -> None:
    found = failures(Unseeded)
    assert set(found) == {"model_deterministic"}
    assert "two fits with Context(seed=0)" in found["model_deterministic"]


def test_a_preprocessor_that_invents_a_user_is_reported() -> None:
    found = failures(Inventor)
    assert set(found) == {"preprocessor_adds_no_ids"}
    assert "added user(s) not in its input: 'ghost'" in found["preprocessor_adds_no_ids"]


def test_a_schema_that_accepts_everything_is_reported() -> None:
    found = failures(AcceptsAnything)
    reason = found["params_reject_bad_values"]
    for bad in ("alpha='not-a-number'", "alpha=-1.0 (below the minimum 0)",
                "alpha=11.0 (above the maximum 10)", "mode='not-one-of-the-choices'",
                "mode=12345", "unknown key 'no_such_key_conformance'"):
        assert bad in reason


def test_a_broken_contract_is_reported() -> None:
    found = failures(BadName)
    assert "name 'Bad Name' must be lower-case" in found["contract"]
    assert "description is empty" in found["contract"]


def test_one_pytest_case_per_check_raises_only_its_failure() -> None:
    cases = {p.id: p.values[0] for p in conformance_cases([NaNScores])}
    cases["model-nan-scores-model_fits"]()
    with pytest.raises(ConformanceError, match="model_scores: score returned"):
        cases["model-nan-scores-model_scores"]()


class Reorders(penchant.FeatureExtractor):
    name = "reorders"
    description = "Sorts the users index and adds nothing."

    def extract(self, features: Features, ctx: Context) -> Features:
        features.users = features.users.sort_values()
        return features


class ListsSeen(penchant.Recommender):
    name = "lists-seen"
    description = "Recommends what users already have."

    def recommend(self, model: Model, features: Features, rows: np.ndarray, k: int,
                  ctx: Context) -> penchant.Recommendations:
        history, out = features.history.tocsr(), []
        for r in rows:
            for rank, i in enumerate(history[r].indices[:k], start=1):
                out.append((features.users[r], features.items[i], rank, 1.0 / rank))
        return penchant.Recommendations(pd.DataFrame(out, columns=["user", "item", "rank",
                                                                   "score"]))


def test_an_extractor_that_reorders_and_adds_nothing_is_reported() -> None:
    found = failures(Reorders)
    assert found["features_keep_indexes"].startswith("changed the users index or its order")
    assert found["features_add_blocks"] == "added nothing: no matrix, side block or extra"


def test_a_recommender_that_lists_seen_items_is_reported() -> None:
    found = failures(ListsSeen)
    assert set(found) == {"recommender_excludes_seen"}
    assert found["recommender_excludes_seen"].startswith("listed 80 seen item(s)")
