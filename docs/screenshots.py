"""Take the README's screenshots: the app on the default pipeline, trained, one per view.

Run under a virtual X server, from the repository root::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python docs/screenshots.py [--epochs N]

It trains the default pipeline twice (the first with another model, so the Runs view has
something to compare), replays feedback for the second run, backtests the pipeline from two
cutoffs, in a scratch ``PENCHANT_HOME``, and writes ``docs/images/*.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
DEFAULT = ROOT / "resources" / "pipelines" / "default.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the default pipeline's epochs (quicker pictures)")
    args = parser.parse_args()
    os.environ["PENCHANT_HOME"] = tempfile.mkdtemp(prefix="penchant-shots-")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from penchant.plugins import default_registry
    from penchant.store import RunStore
    from penchant_gui.document import Slot
    from penchant_gui.main_window import PAGES, MainWindow

    _app = QApplication(sys.argv[:1])  # kept: Qt needs it alive while windows exist
    settings = QSettings(str(Path(os.environ["PENCHANT_HOME"]) / "gui.ini"),
                         QSettings.Format.IniFormat)
    window = MainWindow(default_registry(), RunStore(), settings)
    window.resize(1500, 920)
    window.show()

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def train(model: str | None = None) -> None:
        window.open_path(DEFAULT)
        if args.epochs:
            window.builder.document.set_value(Slot("model"), "epochs", args.epochs)
        if model:
            window.builder.document.set_plugin(Slot("model"), model, window.registry)
        window.builder.document.dirty = False
        loop = QEventLoop()
        window.training.run_ended.connect(lambda *_: loop.quit())
        window.run()
        loop.exec()
        wait(800)

    def shot(page: str, name: str) -> None:
        window.nav.setCurrentRow(PAGES.index(page))
        wait(600)
        window.grab().save(str(IMAGES / f"{name}.png"))
        print(f"wrote docs/images/{name}.png", flush=True)

    def backtest() -> None:
        """The pipeline backtested from two cutoffs: its pooled tables open in a window of
        their own, so the screen is grabbed where the main window lies, not the window."""
        window.nav.setCurrentRow(PAGES.index("Training"))
        window.training.cutoffs_edit.setText("0.7 0.8")
        loop = QEventLoop()
        window.training.backtest_ended.connect(lambda *_: loop.quit())
        window.training.backtest_button.click()
        loop.exec()
        wait(800)
        box = window.frameGeometry()
        _app.primaryScreen().grabWindow(0, box.x(), box.y(), box.width(), box.height()).save(
            str(IMAGES / "backtest.png"))
        print("wrote docs/images/backtest.png", flush=True)

    IMAGES.mkdir(parents=True, exist_ok=True)
    train("dae")
    train()
    shot("Training", "training")
    window.runs.refresh()
    window.runs.table.selectRow(0)
    shot("Runs", "runs")
    window.runs.table.selectAll()
    window.runs.compare_button.click()
    shot("Runs", "runs-compare")
    window.plugins.select("model", "vae")
    shot("Plugins", "plugins")
    run_id = window.store.runs(limit=1)[0].id
    window.results.show_run(run_id)
    shot("Results", "results")
    window.users.user_edit.setText("u00045")
    window.users.show_run(run_id)
    wait(8000)
    shot("Users", "users")
    loop = QEventLoop()
    window.feedback.task_finished.connect(lambda *_: loop.quit())
    window.feedback.replay_run(run_id, "30d")
    loop.exec()
    window.feedback.refresh()
    shot("Feedback", "feedback")
    window.builder.select(Slot("model"))
    window.preview.refresh()
    loop = QEventLoop()
    window.preview.finished.connect(loop.quit)
    loop.exec()
    shot("Pipeline", "pipeline")
    backtest()
    window.builder.document.dirty = False
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
