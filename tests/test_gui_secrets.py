"""A secret given as ``${env:NAME}`` reaches nothing the app shows or saves: not the run's
log in the Training view, the run's details, the saved pipeline, the app's settings, the
run store or the run folder — even when a plugin logs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from penchant.plugins import Registry
from penchant.store import RunStore
from penchant_gui.main_window import PAGES, MainWindow
from pipelines import quick_pipeline
from test_secrets import SECRET, SOURCE, Plugin

pytestmark = pytest.mark.gui


def test_the_app_shows_and_saves_no_secret(qtbot, tmp_path: Path, shop: Path,
                                          monkeypatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", SECRET)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "p.toml"
    path.write_text(quick_pipeline(SOURCE.format(shop=shop, fail="false")))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Registry(plugins=[Plugin()]),
                        RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}"), settings)
    qtbot.addWidget(window)
    window.show()
    assert window.open_path(path)
    with qtbot.waitSignal(window.training.run_ended, timeout=120_000) as ended:
        window.run()
    assert ended.args[1] == "finished"
    log = window.training.log_view.toPlainText()
    assert "connecting with token ***" in log and SECRET not in log
    window.nav.setCurrentRow(PAGES.index("Runs"))
    qtbot.waitUntil(lambda: window.runs.proxy.rowCount() == 1, timeout=5000)
    window.runs.table.selectRow(0)
    shown = " ".join(w.toPlainText() for w in window.runs.findChildren(
        type(window.training.log_view)))
    assert '"token_seen": "***"' in shown and SECRET not in shown  # the run's summary
    assert window._save(tmp_path / "saved.toml")
    assert "${env:SHOP_TOKEN}" in (tmp_path / "saved.toml").read_text()
    window.close()
    settings.sync()
    written = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert tmp_path / "settings.ini" in written
    for file in written:
        assert SECRET.encode() not in file.read_bytes(), file
