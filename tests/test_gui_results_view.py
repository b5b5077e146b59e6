"""The results view: a finished run's metrics by horizon and its interest forecasts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_pipeline
from penchant.interests import PERSISTENCE, RECENCY
from penchant.pipeline import load_pipeline
from penchant.plugins import default_registry
from penchant.runner import Runner
from penchant.store import RunStore
from penchant_gui.results_view import ResultsView, interest_frame
from test_feedback import run_pipeline

pytestmark = pytest.mark.gui


def metrics_json(store: RunStore, run_id: int) -> dict:
    return json.loads(Path(store.artifacts(run_id)["metrics"]).read_text())


def test_no_runs_says_so(qtbot, store: RunStore) -> None:
    view = ResultsView(store)
    qtbot.addWidget(view)
    assert view.stack.currentWidget() is view.placeholder
    assert "No finished runs" in view.placeholder.text()


def test_table_and_plot_hold_each_models_values(qtbot, shop: Path, tmp_path: Path,
                                                store: RunStore) -> None:
    registry = default_registry()  # a 2-epoch vae with the default baselines
    first = Runner(load_pipeline(write_pipeline(shop, tmp_path, epochs=2), registry),
                   registry, store, tmp_path / "out").run().run.id
    view = ResultsView(store)
    qtbot.addWidget(view)
    assert view.run_id == first and view.run_combo.count() == 1
    results = metrics_json(store, first)["results"]
    frame = view.table_model.frame
    assert list(frame["model"]) == ["vae", "vae", "popularity", "popularity",
                                    "recent-popularity", "recent-popularity"]
    for row in frame.to_dict("records"):
        for metric in ("ndcg@10", "recall@10"):
            assert row[metric] == pytest.approx(results[row["model"]][row["horizon"]][metric])
    # Each baseline's row says how the run's model compares with it, interval included.
    versus = metrics_json(store, first)["versus"]["ratios"]
    compared = "vae ÷ it"
    assert ("vae ÷ it: the ratio of their ndcg@10, with its 95 % interval over resampled "
            "users") in view.summary_label.text()
    for row in frame.to_dict("records"):
        if row["model"] == "vae":
            assert row[compared] == ""
        else:
            cell = versus[row["model"]][row["horizon"]]
            assert row[compared] == (f"{cell['ratio']:.2f}× "
                                     f"({cell['low']:.2f}–{cell['high']:.2f})")
    for metric in [view.metric_combo.itemText(i) for i in range(view.metric_combo.count())]:
        view.metric_combo.setCurrentText(metric)
        assert set(view.plotted) == set(results)
        for name, (xs, ys) in view.plotted.items():
            assert xs == [7.0, 30.0]
            assert ys == pytest.approx([results[name][h][metric] for h in ("7d", "30d")])
    assert not view.interest_pane.showing_content
    assert "interests = true" in view.interest_pane.message.text()
    assert "evolution" in view.interest_pane.message.text()


def test_an_evolution_run_shows_its_interest_forecasts(qtbot, shop: Path, tmp_path: Path,
                                                       store: RunStore) -> None:
    registry = default_registry()
    plain = run_pipeline(shop, tmp_path / "a", store).run.id
    path = write_pipeline(shop, tmp_path, epochs=2, extra="interests = true\n")
    overrides = ["model.plugin=evolution", "model.hidden=16", "model.latent=4",
                 "model.state=8", "model.n_windows=4"]
    evo = Runner(load_pipeline(path, registry, overrides), registry, store,
                 tmp_path / "out").run().run.id
    view = ResultsView(store)
    qtbot.addWidget(view)
    assert view.run_id == evo, "the newest finished run comes first"
    assert view.interest_pane.showing_content
    scored = metrics_json(store, evo)["interests"]
    frame = view.interest_model.frame
    assert list(frame["forecaster"][:3]) == ["evolution", PERSISTENCE, RECENCY]
    for row in frame.to_dict("records"):
        assert row["JS divergence"] == pytest.approx(scored[row["forecaster"]][row["horizon"]]
                                                     ["js"])
    assert view.interest_plotted["evolution"][1] == pytest.approx(
        [scored["evolution"][h]["js"] for h in ("7d", "30d")])
    view.interest_metric_combo.setCurrentIndex(1)
    assert view.interest_plotted[PERSISTENCE][1] == pytest.approx(
        [scored[PERSISTENCE][h]["top3"] for h in ("7d", "30d")])
    view.resize(1300, 850)
    view.show()
    view.grab().save("/tmp/results_view.png")
    view.show_run(plain)
    assert view.run_combo.currentData() == plain
    assert not view.interest_pane.showing_content


def test_interest_frame_compares_with_persistence() -> None:
    interests = {"evolution": {"7d": {"js": 0.4, "top3": 0.6, "users": 10.0}},
                 PERSISTENCE: {"7d": {"js": 0.5, "top3": 0.5, "users": 10.0}},
                 RECENCY: {"7d": {"js": None, "top3": 0.5, "users": 10.0}}}
    frame = interest_frame(interests, "evolution")
    assert list(frame["forecaster"]) == ["evolution", PERSISTENCE, RECENCY]
    assert frame["JS vs persistence"][0] == pytest.approx(-0.2)
    assert frame["JS vs persistence"].isna()[1:].all()
