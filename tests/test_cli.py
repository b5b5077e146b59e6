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
    versus = printed[printed.index("ndcg@10 of vae ÷ each baseline"):].split("\n\n")[0]

    assert main(["runs", "list"]) == 0
    listing = capsys.readouterr().out
    assert "test-shop" in listing and "finished" in listing

    assert main(["runs", "show", "1", "--pipeline"]) == 0
    shown = capsys.readouterr().out
    assert "run 1: test-shop (vae)" in shown and "[model]" in shown
    assert versus in shown  # the intervals come back from the run's metrics.json

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


@pytest.mark.parametrize("argv", [["run"], ["plugins"], ["recommend", "1"],
                                  ["run", "p.toml", "--nproc", "0"],
                                  ["run", "p.toml", "--nproc", "-2"],
                                  ["run", "p.toml", "--nproc", "two"]])
def test_usage_errors_exit_with_argparse_code(argv, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    if "--nproc" in argv:
        assert "is not a number of processes (1 or more)" in capsys.readouterr().err


def test_generate_demo_shop_writes_a_runnable_shop(tmp_path, capsys) -> None:
    out = tmp_path / "shop"
    assert main(["generate", "demo-shop", str(out), "--users", "60", "--items", "60",
                 "--months", "3", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    for name in ("events.csv.gz", "items.csv", "users.csv", "interests.csv.gz"):
        assert (out / name).exists() and name in printed


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_log() -> None:
    import io

    from penchant.progress import ProgressPrinter

    tty, log = io.StringIO(), io.StringIO()
    for stream, is_tty in ((tty, True), (log, False)):
        printer = ProgressPrinter(stream, tty=is_tty)
        for done in range(1, 4):
            printer.penchant_on_progress("train", done, 3)
        printer.penchant_on_stage_end("train", 1.5, {"best_epoch": 2})
    assert "\r" in tty.getvalue() and "[" in tty.getvalue() and "eta" in tty.getvalue()
    assert "\r" not in log.getvalue()
    assert "train: 3/3" in log.getvalue() and "train done in 1.5s (best_epoch 2)" in log.getvalue()


def test_metrics_table_shows_interest_forecasts_when_scored() -> None:
    from penchant.report import metrics_table

    metrics = {"cutoff": "2025-01-01", "horizons": ["30d"], "model": "evolution",
               "results": {"evolution": {"30d": {"ndcg@20": 0.2, "users": 4}}},
               "interests": {"evolution": {"30d": {"js": 0.41, "top3": 0.52}},
                             "persistence": {"30d": {"js": 0.47, "top3": 0.48}}}}
    text = metrics_table(metrics)
    assert "30d js" in text and "0.4100" in text and "persistence" in text
    assert "interests" not in metrics_table({**metrics, "interests": {}})
