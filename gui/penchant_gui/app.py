"""``penchant gui`` / ``penchant-gui``: start the desktop app."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="penchant-gui", description="The Penchant app.")
    parser.add_argument("pipeline", nargs="?", type=Path, help="a pipeline file to open")
    parser.add_argument("--store", help="run store SQLAlchemy URL (default: $PENCHANT_STORE "
                                        "or a SQLite file under $PENCHANT_HOME)")
    args = parser.parse_args(argv)
    return run_app(args.pipeline, args.store)


def run_app(pipeline: Path | None = None, store_url: str | None = None) -> int:
    from pyqtgraph.util.garbage_collector import GarbageCollector
    from PySide6.QtWidgets import QApplication

    from penchant.plugins import default_registry
    from penchant.store import RunStore
    from penchant_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Penchant")
    app.setOrganizationName("Penchant")
    # Python's cyclic collector runs in whichever thread happens to allocate, and training
    # runs in a worker thread: a Qt object it collected there would be destroyed off the
    # GUI thread, which deadlocks PySide (seen in the test suite). Collect on a GUI-thread
    # timer instead; the collector lives as long as the event loop.
    collector = GarbageCollector(interval=1.0)
    window = MainWindow(default_registry(), RunStore(store_url))
    if pipeline is not None:
        window.open_path(pipeline)
    window.show()
    try:
        return app.exec()
    finally:
        collector.timer.stop()
        gc.enable()


if __name__ == "__main__":
    raise SystemExit(main())
