"""The Training view: runs go through the same Runner as the CLI, in a thread, and every
ending (finished, cancelled, a preflight error, a bug) leaves the view ready for the next."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QPlainTextEdit

from conftest import write_pipeline
from penchant.backtest import backtest
from penchant.pipeline import Pipeline, load_pipeline
from penchant.plugins import Registry, default_registry
from penchant.runner import Runner
from penchant.store import RunStore
from penchant_gui import training_view
from penchant_gui.training_view import TrainingView, _Eta, clock, summarize

pytestmark = pytest.mark.gui

RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()


@pytest.fixture
def view(qtbot, registry: Registry, store: RunStore):
    view = TrainingView(registry, store)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    yield view
    # A failing test must not leave a thread running into the next test (or a crash at exit).
    if view.running:
        view.stop()
    assert view.wait(RUN_TIMEOUT_MS)
    if view.error_box is not None:
        view.error_box.close()
    if view.backtest_box is not None:
        view.backtest_box.close()


def pipeline(shop: Path, folder: Path, registry: Registry, epochs: int,
             replace: tuple[str, str] | None = None) -> Pipeline:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_pipeline(shop, folder, epochs=epochs)
    if replace:
        text = path.read_text()
        assert replace[0] in text
        path.write_text(text.replace(*replace))
    return load_pipeline(path, registry)


def test_training_stays_responsive_and_stops_as_cancelled(qtbot, view, shop, tmp_path,
                                                          registry, store) -> None:
    # Without early stopping 2000 epochs would take minutes: only Stop ends this run.
    long = pipeline(shop, tmp_path / "long", registry, 2000,
                    ("epochs = 2000", "epochs = 2000\npatience = 0"))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    with qtbot.waitSignal(view.run_started, timeout=RUN_TIMEOUT_MS) as started:
        view.start(long)
    assert view.running and not view.run_button.isEnabled() and view.stop_button.isEnabled()
    # With refit the first pass is the one that early-stops on the validation window.
    qtbot.waitUntil(lambda: view.loss_plot.points("vae (validation) loss") >= 2,
                    timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: view.validation_plot.points("vae (validation) ndcg@20") >= 2,
                    timeout=RUN_TIMEOUT_MS)
    # While the model trains, the event loop keeps turning: the timer ticks (a frozen
    # window would show one gap as long as the training) and the plot keeps gaining points.
    # Measured once the epochs run: torch's first optimiser imports its compiler in the
    # worker, whose GIL-held stretches would make a start-up measurement flaky.
    epochs_before = view.loss_plot.points("vae (validation) loss")
    window_start = time.monotonic()
    qtbot.wait(1500)
    timer.stop()
    window = [t for t in ticks if t >= window_start]
    gaps = [b - a for a, b in zip([window_start, *window], window, strict=False)]
    assert len(window) >= 8, len(window)  # 75 ideally; 50 on an idle 2-core machine
    assert max(gaps) < 1.0, max(gaps)
    assert view.loss_plot.points("vae (validation) loss") >= epochs_before + 2
    assert {"vae (validation) nll", "vae (validation) kl",
            "vae (validation) beta"} <= set(view.loss_plot.series)
    assert "seconds" not in " ".join(view.loss_plot.series)
    assert re.fullmatch(r"train — \d+/2000 — ETA \d+:\d\d", view.progress_bar.format())

    run_id = started.args[0]
    with qtbot.waitSignal(view.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == [run_id, "cancelled"]
    assert store.run(run_id).status == "cancelled"
    assert not view.running and view.stop_button.isEnabled() is False
    assert view.error_box is None  # a Stop is not an error
    assert "cancelled" in view.summary_label.text()


def test_finished_run_shows_the_same_metrics_as_a_headless_run(qtbot, view, shop, tmp_path,
                                                               registry, store) -> None:
    short = pipeline(shop, tmp_path / "short", registry, 3)
    with qtbot.waitSignal(view.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        view.start(short)
    run_id, status = ended.args
    assert status == "finished"
    assert store.run(run_id).status == "finished"
    assert view.loss_plot.points("vae (validation) loss") == 3
    assert view.validation_plot.points("vae (validation) ndcg@20") == 3
    assert view.loss_plot.points("vae loss") >= 1  # the refit on the whole period

    headless = Runner(short, registry, store, out_dir=tmp_path / "headless").run()
    assert view.last_metrics is not None
    assert view.last_metrics["results"] == headless.metrics["results"]
    line = view.summary_label.text()
    assert line.startswith(f"Run {run_id} finished")
    # The pipeline evaluates k = 5, 10: the summary falls back to the largest ndcg.
    for horizon, values in headless.metrics["results"]["vae"].items():
        assert f"{horizon} {values['ndcg@10']:.4f}" in line
    assert view.run_button.isEnabled() is False  # no pipeline_provider set
    view.pipeline_provider = lambda: short
    assert view.run_button.isEnabled()


def test_missing_column_fails_readably_and_the_next_run_works(qtbot, view, shop, tmp_path,
                                                              registry, store) -> None:
    broken = pipeline(shop, tmp_path / "broken", registry, 2,
                      ('user = "user_id"', 'user = "customer_id"'))
    good = pipeline(shop, tmp_path / "good", registry, 2)
    chosen = [broken]
    view.pipeline_provider = lambda: chosen[0]
    with qtbot.waitSignal(view.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert ended.args == [-1, "failed"]  # refused before anything was recorded
    assert store.runs() == []
    assert view.last_error is not None and "customer_id" in view.last_error
    assert view.error_box is not None and view.error_box.isVisible()
    assert view.error_box.text() == "The run could not start"
    assert "customer_id" in view.error_box.informativeText()
    assert "customer_id" in view.summary_label.text()
    assert view.run_button.isEnabled() and not view.stop_button.isEnabled()
    view.error_box.close()

    chosen[0] = good
    with qtbot.waitSignal(view.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert ended.args[1] == "finished"
    assert store.run(ended.args[0]).status == "finished"
    assert "customer_id" not in view.summary_label.text()


def test_a_bug_inside_the_run_is_a_failed_run_not_a_crash(qtbot, view, shop, tmp_path,
                                                          registry, store, monkeypatch) -> None:
    def broken(self: Runner) -> None:
        raise ZeroDivisionError("a plugin divided by zero")

    monkeypatch.setattr(Runner, "_execute", broken)
    with qtbot.waitSignal(view.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        view.start(pipeline(shop, tmp_path / "bug", registry, 2))
    run_id, status = ended.args
    assert run_id >= 0 and status == "failed"
    assert store.run(run_id).status == "failed"
    assert view.last_error == "ZeroDivisionError: a plugin divided by zero"
    assert view.error_box is not None and "ZeroDivisionError" in view.error_box.detailedText()
    assert not view.running and view.run_button.isEnabled() is False


def test_backtest_runs_each_cutoff_then_shows_them_pooled(qtbot, view, shop, tmp_path,
                                                          registry, store) -> None:
    """The same runs and pooled figures as ``penchant backtest``; a cutoff refused before
    any run, and a stopped backtest pools nothing."""
    short = pipeline(shop, tmp_path / "bt", registry, 1)
    view.pipeline_provider = lambda: short
    view.cutoffs_edit.setText("0.7, 1.5")
    qtbot.mouseClick(view.backtest_button, Qt.MouseButton.LeftButton)
    assert view.error_box is not None and view.error_box.text() == "The backtest cannot start"
    assert "[evaluation]: key 'cutoff': quantile 1.5" in view.last_error
    assert store.runs() == [] and not view.running
    view.error_box.close()

    view.cutoffs_edit.setText("0.8 0.65")
    ended = []
    view.run_ended.connect(lambda run_id, status: ended.append((run_id, status)))
    with qtbot.waitSignal(view.backtest_ended, timeout=2 * RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.backtest_button, Qt.MouseButton.LeftButton)
    assert done.args == ["finished"]
    assert [status for _, status in ended] == ["finished", "finished"]
    result = view.last_backtest
    assert result is not None
    assert [store.run(r.run.id).name for r in result.runs] == [
        "test-shop (backtest from 0.65)", "test-shop (backtest from 0.8)"]
    headless = backtest(short.path, [0.8, 0.65], registry, store)
    assert result.metrics["results"] == headless.metrics["results"]
    log = view.log_view.toPlainText()
    assert "ndcg@10 of vae ÷ each baseline" in log and "2 cutoffs" in log
    assert log.count("finished in") == 2, "both runs' lines stay in one log"
    assert "Backtest finished" in view.summary_label.text()
    assert view.backtest_box is not None and view.backtest_box.isVisible()
    title = view.backtest_box.windowTitle()
    assert title.startswith("Backtest of test-shop: ") and title.endswith("(2 cutoffs)")
    assert "ndcg@10 of vae ÷ each baseline" in view.backtest_box.findChild(
        QPlainTextEdit).toPlainText()
    view.backtest_box.close()
    assert view.backtest_button.isEnabled()

    with qtbot.waitSignal(view.backtest_ended, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.backtest_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: view.running and view.run_id >= 0, timeout=RUN_TIMEOUT_MS)
        view.stop()
    assert done.args == ["cancelled"]
    assert view.last_backtest is None
    assert "nothing pooled" in view.log_view.toPlainText()


def test_epochs_are_drawn_in_batches_and_odd_values_handled(view) -> None:
    # Epochs queue up and reach the plot at the next flush, one redraw per series.
    for epoch in range(1, 81):
        view._on_epoch("ease", epoch, {"loss": 1.0 / epoch, "seconds": 0.1},
                       {"ndcg@20": epoch / 100})
    assert view.loss_plot.points("ease loss") == 0
    view._flush()
    assert view.loss_plot.points("ease loss") == 80
    assert view.validation_plot.points("ease ndcg@20") == 80
    assert view.validation_plot.plot.getAxis("left").labelText == "ndcg@20"
    assert "seconds" not in " ".join(view.loss_plot.series)
    # Long series drop their markers; a loss that diverges is said in the log.
    item = view._item(view.loss_plot, "ease loss")
    assert item.opts["symbol"] is None
    view._on_epoch("ease", 81, {"loss": float("nan")}, {})
    assert "ease epoch 81: loss is nan" in view.log_view.toPlainText()
    # A negative term cannot go on a log axis: the plot falls back to linear.
    assert view.log_scale.isChecked()
    view._on_epoch("gan", 1, {"generator": -0.5}, {})
    view._flush()
    assert not view.log_scale.isChecked() and view.loss_plot.points("gan generator") == 1


def test_run_button_without_a_pipeline_does_nothing(qtbot, view) -> None:
    view.pipeline_provider = lambda: None
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert not view.running and view.worker is None
    assert "Nothing to run" in view.stage_label.text()


def test_device_choices(view) -> None:
    import torch

    devices = [view.device_combo.itemData(i) for i in range(view.device_combo.count())]
    assert devices == ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    view.device_combo.setCurrentIndex(1)
    assert view.device == "cpu"


def test_clock_and_summary() -> None:
    assert clock(42.2) == "0:42"
    assert clock(725) == "12:05"
    assert clock(3723) == "1:02:03"
    metrics = {"model": "vae", "results": {
        "vae": {"7d": {"ndcg@20": 0.1}, "30d": {"ndcg@20": 0.2}},
        "popularity": {"7d": {"ndcg@20": 0.3}, "30d": {"ndcg@20": 0.4}}}}
    assert summarize(7, metrics) == ("Run 7 finished — vae ndcg@20: 7d 0.1000, 30d 0.2000  "
                                     "(best baseline, popularity: 7d 0.3000, 30d 0.4000)")
    assert summarize(8, {"results": {}}) == "Run 8 finished."


def test_eta_times_each_pass_from_where_it_began(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(training_view.time, "monotonic", lambda: now[0])
    eta = _Eta()
    now[0] = 110.0
    eta.boundary()  # the features stage ended: training starts here, not at its 1st report
    now[0] = 112.0
    assert eta.update("train", 1, 10) == pytest.approx(18.0)
    now[0] = 120.0
    assert eta.update("train", 5, 10) == pytest.approx(10.0)
    # Early stopping ended that pass at epoch 5; the refit's 3 epochs start from there.
    now[0] = 121.0
    assert eta.update("train", 1, 3) == pytest.approx(2.0)
    assert eta.update("load", 0, 0) is None
