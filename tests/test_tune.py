"""Hyper-parameter search: trials are runs that never see the test period."""

from __future__ import annotations

import tomllib

import pytest

from penchant.errors import PipelineError
from penchant.plugins import Registry
from penchant.store import RunStore
from penchant.tune import load_space, tune

SPACE = """
[parameters]
"model.epochs" = [1, 2]
"features.0.half_life" = ["14d", "60d"]

[search]
method = "grid"
metric = "ndcg@10"
horizon = "30d"
"""


def test_grid_search_records_every_trial_and_writes_the_best(pipeline_file, tmp_path) -> None:
    space_file = tmp_path / "space.toml"
    space_file.write_text(SPACE)
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    seen = []
    result = tune(pipeline_file, load_space(space_file), 4, Registry(), store,
                  tmp_path / "best.toml", tmp_path / "trials",
                  on_trial=lambda n, chosen, value: seen.append((chosen, value)))
    assert len(result.runs) == 4 and len(store.runs()) == 4
    assert {tuple(sorted(c.items())) for c, _ in seen} == {
        (("features.0.half_life", h), ("model.epochs", e)) for h in ("14d", "60d")
        for e in (1, 2)}
    assert result.best_value == max(v for _, v in seen)
    best = tomllib.loads(result.pipeline_path.read_text())
    assert best["model"]["epochs"] == result.best_params["model.epochs"]
    assert best["features"][0]["half_life"] == result.best_params["features.0.half_life"]
    assert "until" not in best.get("evaluation", {}), "the written pipeline is the real one"
    # every trial stopped at the real cutoff and scored inside the training period
    for run in store.runs():
        stages = run.summary["stages"]
        assert stages["until"]["events"] < stages["load"]["events"]
        assert stages["split"]["test_events"] < stages["until"]["events"]


@pytest.mark.parametrize("text, fragment", [
    ("[parameters]\n", "names nothing to search"),
    ('[parameters]\n"model.lr" = { low = 1, high = 0 }\n', "low must be below high"),
    ('[parameters]\n"model.lr" = 3\n', "expected a list of choices or a range table"),
    ('[parameters]\n"model.lr" = [1]\n[search]\nmethod = "anneal"\n', "key 'method'"),
    ('[params]\n', "unknown table(s) params"),
])
def test_bad_spaces_are_refused_with_the_key(tmp_path, text, fragment) -> None:
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(PipelineError) as info:
        load_space(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_trials_scored_on_several_inner_cutoffs_pool_their_evaluations(pipeline_file,
                                                                      tmp_path) -> None:
    space_file = tmp_path / "space.toml"
    space_file.write_text('[parameters]\n"model.epochs" = [1, 2]\n\n[search]\n'
                          'method = "grid"\nmetric = "ndcg@10"\nhorizon = "30d"\n'
                          "cutoffs = [0.75, 0.9]\n")
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    seen = []
    result = tune(pipeline_file, load_space(space_file), 2, Registry(), store,
                  tmp_path / "best.toml", tmp_path / "trials",
                  on_trial=lambda n, chosen, value: seen.append(value))
    assert len(result.runs) == 4, "each trial is one run per inner cutoff"
    records = [store.run(i) for i in result.runs]
    for first, second, value in zip(records[::2], records[1::2], seen, strict=True):
        cuts = [r.summary["stages"]["split"]["cutoff"] for r in (first, second)]
        assert cuts[0] < cuts[1]
        # The trial's score averages both runs' evaluations, weighted by their users.
        each = [store.metrics(r.id)["vae"]["30d"] for r in (first, second)]
        assert value == pytest.approx(
            sum(e["ndcg@10"] * e["users"] for e in each) / sum(e["users"] for e in each))
    assert result.best_value == max(seen)
    with pytest.raises(PipelineError, match="cutoffs"):
        space_file.write_text('[parameters]\n"model.epochs" = [1]\n[search]\ncutoffs = [1.5]\n')
        load_space(space_file)


def test_catalogue_coverage_can_be_the_metric(pipeline_file, tmp_path) -> None:
    """Coverage is not a per-user average, so pooling must carry it separately: a trial
    on one cutoff scores exactly its run's coverage."""
    space_file = tmp_path / "space.toml"
    space_file.write_text('[parameters]\n"model.epochs" = [1]\n\n[search]\n'
                          'metric = "coverage@10"\nhorizon = "30d"\n')
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    result = tune(pipeline_file, load_space(space_file), 1, Registry(), store,
                  tmp_path / "best.toml", tmp_path / "trials")
    (run,) = result.runs
    assert result.best_value == pytest.approx(store.metrics(run)["vae"]["30d"]["coverage@10"])
    assert 0 < result.best_value <= 1
