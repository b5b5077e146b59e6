"""Backtesting: one pipeline from several cutoffs, every run stored, results pooled."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from penchant.backtest import backtest
from penchant.cli import main
from penchant.errors import PipelineError
from penchant.plugins import Registry
from penchant.report import backtest_table


def test_each_cutoff_is_a_run_and_the_pooled_figures_average_every_evaluation(
        pipeline_file: Path, store, tmp_path: Path) -> None:
    result = backtest(pipeline_file, [0.8, 0.65], Registry(), store)
    assert [r.run.pipeline.evaluation.cutoff for r in result.runs] == [0.65, 0.8]
    assert all(store.run(r.run.id).status == "finished" for r in result.runs)
    assert [store.run(r.run.id).name for r in result.runs] == [
        "test-shop (backtest from 0.65)", "test-shop (backtest from 0.8)"]
    pooled = result.metrics
    assert pooled["model"] == "vae"
    assert pooled["horizons"] == ["7d", "30d", "7d light", "30d light"]
    assert [c["run"] for c in pooled["cutoffs"]] == [r.run.id for r in result.runs]
    for name in ("vae", "popularity", "recent-popularity"):
        for h in ("7d", "30d"):
            each = [r.metrics["results"][name][h] for r in result.runs]
            users = [e["users"] for e in each]
            cell = pooled["results"][name][h]
            assert cell["users"] == sum(users)
            assert max(users) <= cell["distinct_users"] <= sum(users)
            for metric in ("ndcg@10", "recall@10", "hr@5"):
                assert cell[metric] == pytest.approx(
                    np.average([e[metric] for e in each], weights=users))
            # each cutoff's lists cover a share of that day's catalogue: averaged
            assert cell["coverage@10"] == pytest.approx(np.mean([e["coverage@10"] for e in each]))
            light = [e for r in result.runs
                     if (e := r.metrics["light_users"]["results"][name][h])["users"]]
            cell = pooled["results"][name][f"{h} light"]
            assert 0 < cell["users"] == sum(e["users"] for e in light) < sum(users)
            assert cell["ndcg@10"] == pytest.approx(
                np.average([e["ndcg@10"] for e in light], weights=[e["users"] for e in light]))
    assert set(pooled["versus"]["ratios"]["popularity"]) == set(pooled["horizons"])
    # Users acting after both cutoffs are evaluated twice and resampled as one.
    versus = pooled["versus"]["ratios"]["popularity"]["30d"]
    results = pooled["results"]
    assert versus["ratio"] == pytest.approx(results["vae"]["30d"]["ndcg@10"]
                                            / results["popularity"]["30d"]["ndcg@10"])
    assert versus["users"] == results["vae"]["30d"]["distinct_users"]
    assert versus["evaluations"] == results["vae"]["30d"]["users"] > versus["users"]
    text = backtest_table(pooled)
    first = pooled["cutoffs"][0]
    assert f"{first['ndcg@10']['30d']:.4f} ({first['users']['30d']})" in text
    assert "ndcg@10 of vae ÷ each baseline" in text and "2 cutoffs" in text
    assert "light users only: ndcg@10 of vae" in text


@pytest.mark.parametrize(("cutoffs", "said"), [
    ([0.7], "at least two cutoffs"),
    ([0.7, 0.7], "0.7 given more than once"),
    ([0.7, 1.5], "[evaluation]: key 'cutoff': quantile 1.5"),
])
def test_bad_cutoffs_are_refused_before_any_run(pipeline_file: Path, store, cutoffs,
                                                said: str) -> None:
    with pytest.raises(PipelineError, match=re.escape(said)):
        backtest(pipeline_file, cutoffs, Registry(), store)
    assert store.runs() == []


def test_the_command_prints_each_cutoff_and_the_pooled_tables(pipeline_file: Path, capsys,
                                                              tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert main(["--store", url, "backtest", str(pipeline_file), "--cutoffs", "0.7", "0.8",
                 "--set", "model.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "ndcg@10 of vae from each cutoff" in out
    assert "pooled over the cutoffs' evaluations" in out
    assert "runs 1, 2 finished" in out
