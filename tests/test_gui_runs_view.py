"""The runs view: the run store as a table, one run's details, runs compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from PySide6.QtCore import Qt

from penchant.store import RunStore
from penchant_gui.runs_view import RunsView, format_duration, metrics_frame

pytestmark = pytest.mark.gui

PIPELINE = '[pipeline]\nname = "{name}"\n\n[model]\nplugin = "{model}"\n'


def add_run(store: RunStore, name: str, model: str, status: str,
            ndcg: dict[str, float] | None = None, epochs: int = 0,
            error: str | None = None, folder: Path | None = None) -> int:
    """A run as the runner records it: metrics for the model and a baseline, and per-epoch
    loss terms with the validation metric (plus the epoch time, which is not plotted)."""
    run_id = store.start_run(name, model, PIPELINE.format(name=name, model=model),
                             {"model": {"plugin": model}}, str(folder or f"/tmp/runs/{name}"))
    for epoch in range(1, epochs + 1):
        store.add_losses(run_id, model, epoch, {"loss": 100.0 / epoch, "kl": 1.0 / epoch,
                                                "seconds": 0.5, "val_ndcg@20": 0.1 * epoch})
    if ndcg:
        store.add_metrics(run_id, {
            model: {h: {"ndcg@20": v, "ndcg@10": v / 2, "recall@20": 2 * v, "users": 40.0}
                    for h, v in ndcg.items()},
            "popularity": {h: {"ndcg@20": v / 3, "users": 40.0} for h, v in ndcg.items()}})
    store.finish_run(run_id, status, {"stages": {}}, error)
    return run_id


@pytest.fixture
def filled(tmp_path: Path) -> RunStore:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    add_run(store, "shop-vae", "vae", "finished", {"7d": 0.05, "30d": 0.30}, epochs=3)
    add_run(store, "shop-ease", "ease", "failed", error="Traceback…\nValueError: boom")
    add_run(store, "shop-vae", "vae", "cancelled", epochs=2)
    add_run(store, "shop-dae", "dae", "finished", {"7d": 0.2, "30d": 0.10}, epochs=4)
    return store


def column(view: RunsView, name: str, role: int = Qt.ItemDataRole.DisplayRole) -> list:
    """A column as shown, top to bottom (after sorting and filtering)."""
    index = list(view.model.frame.columns).index(name)
    return [view.proxy.index(row, index).data(role) for row in range(view.proxy.rowCount())]


def test_runs_are_listed_newest_first_with_key_metrics(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    assert column(view, "id") == ["4", "3", "2", "1"]
    assert column(view, "status") == ["finished", "cancelled", "failed", "finished"]
    assert list(view.model.frame.columns) == ["id", "name", "model", "status", "started",
                                              "duration", "ndcg@20 7d", "ndcg@20 30d"]
    assert column(view, "ndcg@20 7d") == ["0.2000", "", "", "0.0500"]
    assert view.count_label.text() == "4 runs"


def test_metric_and_duration_columns_sort_by_number(qtbot, filled: RunStore) -> None:
    from sqlalchemy import update

    from penchant.store import schema

    start = datetime(2025, 1, 1, tzinfo=UTC)
    with filled.engine.begin() as conn:  # 45 s against 12 min: "45s" > "12m 34s" as text
        for run_id, seconds in ((1, 45), (2, 754), (3, 9), (4, 3725)):
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(
                started_at=start, finished_at=start + timedelta(seconds=seconds)))
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.table.sortByColumn(6, Qt.SortOrder.DescendingOrder)
    assert column(view, "ndcg@20 7d")[:2] == ["0.2000", "0.0500"]
    assert column(view, "ndcg@20 30d", Qt.ItemDataRole.UserRole)[0] == pytest.approx(0.10)
    view.table.sortByColumn(5, Qt.SortOrder.AscendingOrder)
    assert column(view, "duration") == ["9s", "45s", "12m 34s", "1h 02m"]
    assert format_duration(90061) == "1d 1h"


def test_filter_text_and_status(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.filter_edit.setText("vae")
    assert column(view, "id") == ["3", "1"]
    view.filter_edit.setText("VAE fin")  # every word, any of name/model/status, any case
    assert column(view, "id") == ["1"]
    view.filter_edit.clear()
    view.status_combo.setCurrentText("failed")
    assert column(view, "name") == ["shop-ease"]
    assert view.count_label.text() == "1 of 4 runs shown"
    view.status_combo.setCurrentText("running")
    assert column(view, "id") == []
    view.status_combo.setCurrentText("all")
    assert len(column(view, "id")) == 4


def test_one_run_shows_metrics_and_loss_curves(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.select_runs([1])
    details = view.details
    assert view.pages.currentWidget() is details
    assert not view.compare_button.isEnabled()
    frame = details.metrics_model.frame
    assert list(frame["model"]) == ["vae", "popularity"]
    assert frame.loc[0, "7d ndcg@20"] == pytest.approx(0.05)
    assert frame.loc[1, "30d ndcg@20"] == pytest.approx(0.10)
    assert "7d recall@20" in frame.columns
    assert "evaluated 7d: 40 users" in details.users_label.text()
    assert set(details.curves.training_series) == {"vae loss", "vae kl"}
    assert details.loss_plot.points("vae loss") == 3, "the plot starts on the loss term"
    assert "vae kl" not in details.loss_plot.series
    details.curves.term_combo.setCurrentText("all terms")
    assert details.loss_plot.points("vae kl") == 3
    assert details.val_plot.points("vae val_ndcg@20") == 3
    assert details.val_plot.series["vae val_ndcg@20"][1] == pytest.approx([0.1, 0.2, 0.3])
    assert 'name = "shop-vae"' in details.pipeline_text.toPlainText()
    assert details.pipeline_text.isReadOnly()
    assert "finished" in details.header.text() and "/tmp/runs/shop-vae" in details.header.text()


def test_a_failed_run_shows_its_error_and_why_nothing_else(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.select_runs([2])
    details = view.details
    assert "ValueError: boom" in details.header.text()
    assert "#C0392B" in details.header.text()
    assert not details.metrics_pane.showing_content
    assert "failed before its evaluation" in details.metrics_pane.message.text()
    assert not details.curves.loss_pane.showing_content
    assert "boom" in view.model.data(view.model.index(2, 0), Qt.ItemDataRole.ToolTipRole)


def test_compare_overlays_runs(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.select_runs([1, 4])
    assert view.compare_button.isEnabled()
    assert "2 runs selected" in view.hint.text()
    qtbot.mouseClick(view.compare_button, Qt.MouseButton.LeftButton)
    comparison = view.comparison
    assert view.pages.currentWidget() is comparison
    frame = comparison.metrics_model.frame
    assert list(zip(frame["run"], frame["model"], strict=True)) == [
        (1, "vae"), (1, "popularity"), (4, "dae"), (4, "popularity")]
    assert frame.loc[2, "7d ndcg@20"] == pytest.approx(0.2)
    assert comparison.loss_plot.points("run 1 vae loss") == 3
    assert comparison.loss_plot.points("run 4 dae loss") == 4
    assert set(comparison.val_plot.series) == {"run 1 vae val_ndcg@20",
                                               "run 4 dae val_ndcg@20"}
    comparison.baselines_check.setChecked(False)
    assert list(comparison.metrics_model.frame["model"]) == ["vae", "dae"]
    view.select_runs([1])
    assert view.pages.currentWidget() is view.details


def test_two_runs_with_per_user_scores_compare_with_an_interval(qtbot, tmp_path: Path
                                                                ) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    for name, scores in (("before", [0.1, 0.2, 0.3]), ("after", [0.2, 0.4, 0.6])):
        folder = tmp_path / name
        folder.mkdir()
        run_id = add_run(store, name, "vae", "finished", {"7d": 0.2}, folder=folder)
        pd.DataFrame({"user": ["a", "b", "c"], "horizon": "7d", "ndcg@20": scores}).to_csv(
            folder / "user_metrics.csv", index=False)
        store.add_artifacts(run_id, {"user_metrics": str(folder / "user_metrics.csv")})
    add_run(store, "third", "vae", "finished", {"7d": 0.1})
    view = RunsView(store)
    qtbot.addWidget(view)
    view.select_runs([2, 1])
    view.compare()
    assert ("ndcg@20 of run 2 ÷ run 1, 95 % interval over the users both evaluated: "
            "7d 2.00× (2.00–2.00)") in view.comparison.header.text()
    view.select_runs([1, 2, 3])  # three runs: no pairing
    view.compare()
    assert "÷" not in view.comparison.header.text()


def test_open_pipeline_emits_the_stored_toml(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.select_runs([4])
    with qtbot.waitSignal(view.open_pipeline, timeout=1000) as signal:
        qtbot.mouseClick(view.details.open_button, Qt.MouseButton.LeftButton)
    assert signal.args == [filled.run(4).pipeline, "run 4: shop-dae"]


def test_refresh_shows_new_runs_and_keeps_the_selection(qtbot, filled: RunStore) -> None:
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.select_runs([1])
    add_run(filled, "shop-cdae", "cdae", "finished", {"7d": 0.4})
    view.refresh()
    assert column(view, "id")[0] == "5"
    assert view.selected_ids() == [1]
    assert view.pages.currentWidget() is view.details


def test_an_empty_store_shows_a_placeholder(qtbot, store: RunStore) -> None:
    view = RunsView(store)
    qtbot.addWidget(view)
    assert view.stack.currentWidget() is view.placeholder
    assert "No runs yet" in view.placeholder.text()
    assert not view.filter_edit.isEnabled()
    add_run(store, "first", "vae", "finished", {"7d": 0.1})
    view.refresh()
    assert view.stack.currentWidget() is not view.placeholder


def test_light_user_rows_follow_the_others() -> None:
    metrics = {"vae": {"7d": {"ndcg@20": 0.2}, "7d light": {"ndcg@20": 0.1}},
               "popularity": {"7d": {"ndcg@20": 0.15}}}
    frame = metrics_frame(metrics, "vae")
    assert list(frame["role"]) == ["this run's model", "baseline",
                                   "this run's model, light users"]
    assert list(frame.columns) == ["model", "role", "7d ndcg@20"]


def test_runs_evaluated_without_k20_show_their_deepest_k(qtbot, store: RunStore) -> None:
    run_id = add_run(store, "small-k", "vae", "finished")
    store.add_metrics(run_id, {"vae": {"7d": {"ndcg@5": 0.1, "ndcg@10": 0.2, "recall@5": 0.3,
                                              "recall@10": 0.4}}})
    view = RunsView(store)
    qtbot.addWidget(view)
    assert column(view, "ndcg@10 7d") == ["0.2000"]
    view.select_runs([run_id])
    assert list(view.details.metrics_model.frame.columns) == [
        "model", "role", "7d ndcg@10", "7d recall@10"]


def test_delete_asks_first_then_forgets_the_selected_runs(qtbot, filled: RunStore,
                                                         tmp_path: Path) -> None:
    from penchant import feedback

    folder = tmp_path / "run-2"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    filled.set_out_dir(2, str(folder))
    filled.add_artifacts(2, {"metrics": folder / "metrics.json"})
    feedback.record(filled, feedback.check(pd.DataFrame({
        "run_id": [1], "user": ["u1"], "item": ["i1"], "time": ["2024-06-01T10:00:00Z"],
        "kind": ["click"]}), "test"), "test")
    view = RunsView(filled)
    qtbot.addWidget(view)
    assert not view.delete_button.isEnabled()
    asked: list[str] = []
    answers = iter([False, True])
    view.confirm = lambda title, text: asked.append(text) or next(answers)
    view.select_runs([1, 2])
    assert view.delete_button.isEnabled()
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)  # "Cancel"
    assert "1 feedback event(s)" in asked[0] and "runs 2 (shop-ease), 1 (shop-vae) " in asked[0]
    assert filled.run_ids([1, 2]) == {1, 2} and folder.exists()
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)  # "Yes"
    assert filled.run_ids([1, 2, 3, 4]) == {3, 4} and filled.feedback() == []
    assert not folder.exists()
    assert column(view, "id") == ["4", "3"]


def test_a_run_that_cannot_be_deleted_is_reported(qtbot, filled: RunStore) -> None:
    live = filled.start_run("live", "vae", "", {}, None)
    view = RunsView(filled)
    qtbot.addWidget(view)
    view.confirm = lambda title, text: True
    warned: list[str] = []
    view.warn = lambda title, text: warned.append(text)
    view.select_runs([live, 4])
    view.delete_selected()
    assert warned and f"run {live}: run {live} is still running" in warned[0]
    assert filled.run_ids([live, 4]) == {live}
