"""The main window: files and recent files, remembered state, errors, and a run from the
builder to the runs table."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence

from penchant.plugins import Registry
from penchant.store import RunStore
from penchant_gui.document import Slot
from penchant_gui.main_window import PAGES, MainWindow

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "resources" / "pipelines" / "default.toml"


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, tmp_path, settings) -> MainWindow:
    win = MainWindow(Registry(), RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}"), settings)
    qtbot.addWidget(win)
    win.show()
    return win


def test_open_save_as_and_recent_files(window, tmp_path, settings) -> None:
    assert window.open_path(DEFAULT)
    assert window.windowTitle().startswith("default.toml — Penchant")
    window.builder.document.set_value(Slot("model"), "epochs", 3)
    assert window.windowTitle().startswith("default.toml * — ")
    target = tmp_path / "mine.toml"
    assert window._save(target)
    assert "epochs = 3" in target.read_text()
    assert window.recent_files()[:2] == [str(target.resolve()), str(DEFAULT.resolve())]
    assert window.recent_menu.actions()[0].text() == str(target.resolve())
    assert not window.builder.document.dirty


def test_shortcuts_are_the_usual_ones(window) -> None:
    shortcuts = {a.text(): a.shortcut() for menu in window.menuBar().findChildren(
        type(window.recent_menu)) for a in menu.actions()}
    assert shortcuts["&Open…"] == QKeySequence(QKeySequence.StandardKey.Open)
    assert shortcuts["&Save"] == QKeySequence(QKeySequence.StandardKey.Save)
    assert shortcuts["&Run"] == QKeySequence("Ctrl+R")
    assert shortcuts["&Stop"] == QKeySequence("Ctrl+.")
    assert shortcuts["&Backtest"] == QKeySequence("Ctrl+B")


def test_a_malformed_file_opens_with_the_error_on_its_field(window, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT.read_text().replace("batch_size = 128", "batch_size = -5"))
    assert window.open_path(bad)
    window.builder.select(Slot("model"))
    assert "below the minimum" in window.builder.form.fields["batch_size"].error_text
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\nplugin = ")
    assert not window.open_path(broken)
    assert "not valid TOML" in window.last_error
    window.run()  # the bad pipeline is still open: it cannot run, and says why
    assert "batch_size" in window.last_error and window.pages.currentIndex() == 0


def test_window_state_and_page_are_remembered(qtbot, window, settings, tmp_path) -> None:
    window.resize(window.minimumSizeHint().width() + 1, 500)  # fits the offscreen screen
    size = window.size()
    window.nav.setCurrentRow(PAGES.index("Runs"))
    window.close()
    again = MainWindow(Registry(), RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}"),
                       settings)
    qtbot.addWidget(again)
    assert again.pages.currentIndex() == PAGES.index("Runs")
    assert again.size() == size


def test_a_run_from_the_builder_lands_in_the_runs_table(qtbot, window, shop, tmp_path
                                                        ) -> None:
    from conftest import write_pipeline

    assert window.open_path(write_pipeline(shop, tmp_path, epochs=2))
    with qtbot.waitSignal(window.training.run_ended, timeout=120_000) as ended:
        window.run()
        assert window.pages.currentIndex() == PAGES.index("Training")
    assert ended.args[1] == "finished"
    assert window.store.run(ended.args[0]).status == "finished"
    qtbot.waitUntil(lambda: window.runs.proxy.rowCount() == 1, timeout=5000)


def test_backtest_from_the_menu_asks_for_cutoffs_first(window, shop, tmp_path) -> None:
    from conftest import write_pipeline

    assert window.open_path(write_pipeline(shop, tmp_path, epochs=1))
    window.backtest_action.trigger()
    assert window.pages.currentIndex() == PAGES.index("Training")
    assert not window.training.running
    assert "Type two or more cutoffs" in window.training.stage_label.text()
    assert window.store.runs() == []


def test_retrain_with_feedback_opens_the_pipeline_in_the_builder(window) -> None:
    text = DEFAULT.read_text() + "\n[feedback]\nmerge = true\n"
    window.nav.setCurrentRow(PAGES.index("Feedback"))
    window.feedback.retrain_with_feedback.emit(text, "run 1: demo-shop + feedback")
    assert window.pages.currentIndex() == 0
    assert window.builder.document.text() == text
    assert window.builder.document.path is None


def test_the_app_starts_with_a_pipeline_and_quits(qtbot, tmp_path, monkeypatch) -> None:
    """``penchant gui PIPELINE`` end to end: the app opens the file and its event loop runs
    until the window is closed."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from penchant.cli import main

    monkeypatch.setenv("PENCHANT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # QSettings' home
    seen: list[str] = []

    collecting: list[bool] = []

    def close_all() -> None:
        collecting.append(gc.isenabled())
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow):
                seen.append(widget.windowTitle())
                widget.close()

    QTimer.singleShot(1500, close_all)
    assert main(["gui", str(DEFAULT)]) == 0
    assert seen and seen[0].startswith("default.toml")
    # While the app runs, garbage is collected on a GUI-thread timer only, never by a
    # training thread; afterwards the interpreter's own collector is back.
    assert collecting == [False] and gc.isenabled()
