"""Pipeline files: every mistake is refused up front with file, table, key and remedy."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from penchant.errors import PipelineError
from penchant.pipeline import apply_overrides, load_pipeline, resolve_env, save_pipeline
from penchant.plugins import Registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


def refused(path: Path, registry: Registry, overrides=()) -> str:
    with pytest.raises(PipelineError) as info:
        load_pipeline(path, registry, overrides)
    return str(info.value)


@pytest.mark.parametrize("override, fragments", [
    ("model.plugin=vaex", ["[model]", "no model named 'vaex'", "available:", "vae"]),
    ("model.epochz=3", ["[model]", "unknown key 'epochz'", "allowed keys:", "epochs"]),
    ("model.epochs='many'", ["[model]", "key 'epochs'", "expected an integer"]),
    ("model.dropout=1.5", ["[model]", "key 'dropout'", "above the maximum 0.99"]),
    ("evaluation.cutoff=2.0", ["[evaluation]", "key 'cutoff'", "strictly between 0 and 1"]),
    ("evaluation.horizons=['7 days']", ["[evaluation]", "key 'horizons'", "not a duration"]),
    ("evaluation.baselines=['nope']", ["[evaluation] key 'baselines'", "no model named"]),
    ("preprocess.0.keep='middle'", ["[preprocess[0]]", "key 'keep'"]),
    ("features.0.reduce='mean'", ["[features[0]]", "key 'reduce'", "'sum', 'max', 'log'"]),
    ("source.columns={user='u'}", ["[source]", "'columns' must map item, time"]),
])
def test_each_mistake_names_the_file_table_and_key(pipeline_file, registry, override,
                                                   fragments) -> None:
    message = refused(pipeline_file, registry, [override])
    assert str(pipeline_file) in message
    for fragment in fragments:
        assert fragment in message


def test_all_problems_are_reported_together(pipeline_file, registry) -> None:
    message = refused(pipeline_file, registry, ["model.epochs=0", "recommender.plugin=x",
                                                "pipeline.seed=-1"])
    assert len(message.splitlines()) == 3


def test_structure_errors(tmp_path, registry) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[source]\nplugin = "csv"\npath = "x"\ncolumns = {user="u", item="i", '
                    'time="t"}\n[modle]\nplugin = "vae"\n')
    message = refused(path, registry)
    assert "unknown table [modle]" in message
    assert "[model] is missing" in message
    assert "[features] is missing" in message
    path.write_text("[source\n")
    assert "not valid TOML" in refused(path, registry)
    assert "no such pipeline file" in refused(tmp_path / "absent.toml", registry)


def test_env_references_resolve_at_run_time_and_never_in_saved_files(
        pipeline_file, registry, tmp_path, monkeypatch) -> None:
    pipeline = load_pipeline(pipeline_file, registry, ["source.path='${env:SHOP_EVENTS}'"])
    with pytest.raises(PipelineError, match=r"\[source\].*SHOP_EVENTS is not set"):
        pipeline.create(pipeline.one("source"), registry)
    monkeypatch.setenv("SHOP_EVENTS", "/data/secret-location.csv")
    source = pipeline.create(pipeline.one("source"), registry)
    assert source.params.path == "/data/secret-location.csv"
    saved = save_pipeline(pipeline.resolved_doc(registry), tmp_path / "saved.toml")
    text = saved.read_text()
    assert "${env:SHOP_EVENTS}" in text and "secret-location" not in text


def test_resolve_env_inside_strings_and_tables(monkeypatch) -> None:
    monkeypatch.setenv("PW", "s3cret")
    value = resolve_env({"url": "mysql://shop:${env:PW}@db/shop", "n": 3}, "[source]")
    assert value == {"url": "mysql://shop:s3cret@db/shop", "n": 3}


def test_overrides_parse_toml_values_and_index_lists() -> None:
    doc = {"model": {"plugin": "vae"}, "preprocess": [{"plugin": "dedup"}]}
    out = apply_overrides(doc, ["model.epochs=20", "model.lr=1e-4", "model.name=x y",
                                "preprocess.0.keep=last", "evaluation.k=[5, 10]"])
    assert out["model"] == {"plugin": "vae", "epochs": 20, "lr": 1e-4, "name": "x y"}
    assert out["preprocess"][0]["keep"] == "last"
    assert out["evaluation"]["k"] == [5, 10]
    assert doc["model"] == {"plugin": "vae"}, "the original is untouched"
    grown = apply_overrides(doc, ["preprocess.1.plugin=k-core"])
    assert grown["preprocess"] == [{"plugin": "dedup"}, {"plugin": "k-core"}]
    for bad in ("epochs=3", "model.epochs", "preprocess.key=1", "preprocess.5.key=1"):
        with pytest.raises(PipelineError, match="--set"):
            apply_overrides(doc, [bad])


def test_save_and_load_round_trip(pipeline_file, registry, tmp_path) -> None:
    pipeline = load_pipeline(pipeline_file, registry)
    saved = save_pipeline(pipeline.doc, tmp_path / "copy.toml")
    assert tomllib.loads(saved.read_text()) == tomllib.loads(pipeline_file.read_text())
    again = load_pipeline(saved, registry)
    assert again.stages["model"][0].params == pipeline.stages["model"][0].params
