"""The ``penchant`` command, end to end in a subprocess-free way (``main(argv)``)."""

from __future__ import annotations

import json

import pytest

from penchant.cli import main


def test_run_prints_the_metrics_table_then_runs_and_recommend_work(pipeline_file, tmp_path,
                                                                   capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", str(pipeline_file), "--out", str(out), "--set", "model.epochs=2"]) == 0
    printed = capsys.readouterr().out
    assert "vae *" in printed and "popularity" in printed and "30d ndcg@10" in printed
    assert (out / "metrics.json").exists()

    assert main(["runs", "list"]) == 0
    listing = capsys.readouterr().out
    assert "test-shop" in listing and "finished" in listing

    assert main(["runs", "show", "1", "--pipeline"]) == 0
    shown = capsys.readouterr().out
    assert "run 1: test-shop (vae)" in shown and "[model]" in shown

    user = (out / "recommendations.csv").read_text().splitlines()[1].split(",")[0]
    assert main(["recommend", "1", "--user", user, "-k", "3", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in records] == [1, 2, 3]


def test_errors_are_one_clear_line_and_exit_code_2(pipeline_file, capsys) -> None:
    assert main(["run", str(pipeline_file), "--set", "model.plugin=nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no model named 'nope'" in err
    assert "Traceback" not in err
    assert main(["runs", "show", "42"]) == 2
    assert "run 42 is not in the run store" in capsys.readouterr().err


def test_plugins_list_and_info(capsys) -> None:
    assert main(["plugins", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("csv", "dedup", "drop-malformed", "fill-missing", "k-core", "interactions",
                 "vae", "popularity", "recent-popularity", "top-k"):
        assert name in listing
    assert main(["plugins", "info", "vae"]) == 0
    info = capsys.readouterr().out
    assert "beta_cap (float; default 0.2" in info and "epochs (int" in info


@pytest.mark.parametrize("argv", [["run"], ["plugins"], ["recommend", "1"]])
def test_usage_errors_exit_with_argparse_code(argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
