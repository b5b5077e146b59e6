"""Running a slow call off the GUI thread and getting its result back as a signal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, work: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self.work, self.signals = work, signals

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # shown to the user; the app must keep working
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}" if not _ours(exc)
                                     else str(exc))
            return
        self.signals.done.emit(result)


def _ours(exc: Exception) -> bool:
    from penchant.errors import PenchantError

    return isinstance(exc, PenchantError)


def run_in_background(work: Callable[[], Any], done: Callable[[Any], None],
                      failed: Callable[[str], None], owner: QObject) -> _Signals:
    """Call ``work()`` on the global thread pool; ``done(result)`` or ``failed(message)``
    then runs on the GUI thread. The signals object lives as long as ``owner``."""
    signals = _Signals(owner)
    signals.done.connect(done)
    signals.failed.connect(failed)
    QThreadPool.globalInstance().start(_Task(work, signals))
    return signals
