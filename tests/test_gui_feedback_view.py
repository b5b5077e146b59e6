"""The feedback view: stored feedback as a table and charts, and the actions on it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import tomlkit

from penchant import feedback
from penchant.feedback_report import feedback_report
from penchant.pipeline import build_pipeline
from penchant.plugins import default_registry
from penchant.store import RunStore
from penchant_gui.feedback_view import FeedbackView
from test_feedback import run_pipeline

pytestmark = pytest.mark.gui


@pytest.fixture
def replayed(qtbot, shop: Path, tmp_path: Path, store: RunStore) -> tuple[FeedbackView, int]:
    """A popularity run whose feedback the view replays, off the GUI thread."""
    run_id = run_pipeline(shop, tmp_path / "run", store).run.id
    view = FeedbackView(store, default_registry())
    qtbot.addWidget(view)
    assert not view.table_pane.showing_content, "no feedback yet: the pane says so"
    view.run_combo.setCurrentIndex(view.run_combo.findData(run_id))
    with qtbot.waitSignal(view.task_finished, timeout=60_000) as blocker:
        view.replay_run(run_id, "30d")
    assert blocker.args[0], blocker.args[1]
    return view, run_id


def shown(view: FeedbackView, column: str) -> list:
    index = list(view.model.frame.columns).index(column)
    return [view.proxy.index(r, index).data() for r in range(view.proxy.rowCount())]


def test_table_equals_stored_feedback_and_filters(replayed, store: RunStore) -> None:
    view, _ = replayed
    stored = feedback.read(store)
    assert len(stored) > 0 and view.model.rowCount() == len(stored)
    frame = view.model.frame
    assert sorted(zip(frame["user"], frame["item"], frame["kind"], strict=True)) == sorted(
        zip(stored["user"], stored["item"], stored["kind"], strict=True))
    assert "replayed run" in view.status_label.text()
    view.kind_combo.setCurrentText("click")
    clicks = int((stored["kind"] == "click").sum())
    assert view.proxy.rowCount() == clicks > 0
    assert set(shown(view, "kind")) == {"click"}
    user = str(stored["user"].iloc[0])
    view.kind_combo.setCurrentText("all kinds")
    view.filter_edit.setText(user)
    assert view.proxy.rowCount() == sum(user in str(u) or user in str(i)
                                        for u, i in zip(stored["user"], stored["item"],
                                                        strict=True))
    view.filter_edit.clear()
    view.run_combo.setCurrentIndex(0)  # all runs
    assert view.proxy.rowCount() == len(stored)


def test_ctr_chart_equals_the_host_report(replayed, store: RunStore) -> None:
    view, run_id = replayed
    for by in ("run", "position", "day"):
        view.group_combo.setCurrentIndex(view.group_combo.findData(by))
        report = feedback_report(store, [run_id], by).table
        assert view.charted["ctr"][1] == pytest.approx(list(report["ctr"].fillna(0.0)))
        assert view.charted["conversion"][1] == pytest.approx(
            list(report["conversion"].fillna(0.0)))
    assert view.chart_pane.showing_content


def test_marking_stores_one_thumbs_down(replayed, store: RunStore) -> None:
    view, run_id = replayed
    view.table.selectRow(0)
    row = view.selected_rows().iloc[0]
    assert view.mark_button.isEnabled()
    assert view.mark_bad("not for me") == 1
    view.table.clearSelection()
    match = view.model.frame[(view.model.frame["user"] == row["user"])
                             & (view.model.frame["item"] == row["item"])]
    view.table.selectRow(int(match.index[0]))
    assert view.mark_bad("again") == 0, "marking the same recommendation twice stores it once"
    down = feedback.read(store)
    down = down[down["kind"] == "thumbs-down"]
    assert len(down) == 1
    assert (int(down["run_id"].iloc[0]), down["user"].iloc[0], down["item"].iloc[0],
            down["note"].iloc[0]) == (run_id, row["user"], row["item"], "not for me")


def test_retrain_emits_a_pipeline_that_merges_feedback(replayed, qtbot) -> None:
    view, run_id = replayed
    with qtbot.waitSignal(view.retrain_with_feedback) as blocker:
        view.retrain_button.click()
    text, title = blocker.args
    assert f"run {run_id}" in title
    pipeline = build_pipeline(tomlkit.parse(text).unwrap(), default_registry())
    assert pipeline.feedback["merge"] is True
    assert f"runs = [{run_id}]" in text, "a comment says how to take only this run's"


def test_a_bad_import_shows_its_error(replayed, qtbot, tmp_path: Path) -> None:
    view, run_id = replayed
    good = tmp_path / "good.csv"
    pd.DataFrame({"run_id": [run_id], "user": ["u1"], "item": ["i1"],
                  "time": ["2024-06-01T12:00:00Z"], "kind": ["purchase"]}).to_csv(good,
                                                                                 index=False)
    before = view.model.rowCount()
    with qtbot.waitSignal(view.task_finished, timeout=30_000) as blocker:
        view.import_path(str(good))
    assert blocker.args[0] and view.model.rowCount() == before + 1
    bad = tmp_path / "bad.csv"
    bad.write_text("run_id,user,item,time,kind\n1,u,i,yesterday,click\n")
    with qtbot.waitSignal(view.task_finished, timeout=30_000) as blocker:
        view.import_path(str(bad))
    assert not blocker.args[0] and "yesterday" in view.status_label.text()


def test_screenshot(replayed) -> None:
    view, _ = replayed
    view.resize(1300, 850)
    view.show()
    view.table.selectRow(0)
    view.grab().save("/tmp/feedback_view.png")
