"""One pipeline run in a background thread, its observer hooks turned into Qt signals.

The app runs pipelines exactly as the CLI does, through :class:`penchant.runner.Runner` and
the observer hooks; the only difference is where the hooks end up. Training blocks for
minutes, so the runner works in a :class:`QThread` and the window, which lives in the GUI
thread, hears about it through signals that Qt queues across the threads.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from penchant.errors import PenchantError
from penchant.hookspecs import hookimpl
from penchant.pipeline import Pipeline
from penchant.plugins import Registry
from penchant.runner import Runner, RunResult
from penchant.store import RunStore


class _Observer:
    """The runner's observer for one run: every hook becomes a signal of the worker.

    It runs in the worker thread; emitting there is safe because the receivers live in the
    GUI thread, so Qt queues each call. The dictionaries are copied so that nothing the
    runner changes later can reach the GUI thread half-written.
    """

    def __init__(self, worker: RunWorker) -> None:
        self.worker = worker
        self.run_id = -1
        #: The ending the runner reported, kept for the worker to emit once the thread ends.
        self.ending: tuple[str, str] | None = None

    def _mine(self, run: Any) -> bool:
        """Observers are registered on the shared registry: ignore any other run's hooks."""
        runner = self.worker.runner
        return run is None or runner is None or runner.run_info is None or \
            run is runner.run_info

    @hookimpl
    def penchant_on_run_start(self, run: Any) -> None:
        if self._mine(run):
            self.run_id = int(run.id)
            self.worker.started.emit(self.run_id)

    @hookimpl
    def penchant_on_progress(self, run: Any, stage: str, done: int, total: int) -> None:
        if self._mine(run):
            self.worker.progress.emit(str(stage), int(done), int(total))

    @hookimpl
    def penchant_on_log(self, run: Any, message: str) -> None:
        if self._mine(run):
            self.worker.log.emit(str(message))

    @hookimpl
    def penchant_on_stage_end(self, run: Any, stage: str, seconds: float, summary: dict) -> None:
        if self._mine(run):
            self.worker.stage_end.emit(str(stage), float(seconds))

    @hookimpl
    def penchant_on_epoch_end(self, run: Any, model: str, epoch: int, losses: dict,
                              metrics: dict) -> None:
        if self._mine(run):
            self.worker.epoch.emit(str(model), int(epoch), dict(losses), dict(metrics))

    @hookimpl
    def penchant_on_run_failed(self, run: Any, status: str, error: str) -> None:
        if self._mine(run):
            self.ending = (str(status), str(error))


class _Thread(QThread):
    """Runs the worker's job; a QThread so Qt knows the thread and its ``finished`` signal
    comes back to the GUI thread after the last queued hook signal."""

    def __init__(self, worker: RunWorker) -> None:
        super().__init__()
        self.worker = worker

    def run(self) -> None:
        self.worker._work()


class RunWorker(QObject):
    """Runs one pipeline once, in its own thread.

    ``finished`` or ``failed`` is emitted exactly once, from the GUI thread, after the
    thread has ended: a receiver may start the next run straight away and never meets a
    thread still winding down. ``failed`` carries run id -1 when the run was never recorded
    (a preflight error such as a missing column, or a pipeline the runner refused).
    """

    # The dictionaries travel as ``object``: declared ``dict``, PySide6 turns them into a
    # QVariantMap on a queued connection, which sorts the keys (horizons and loss terms lose
    # their order) and empties a dict with any key that is not a string.
    started = Signal(int)
    progress = Signal(str, int, int)
    log = Signal(str)
    epoch = Signal(str, int, object, object)  # model, epoch, losses: dict, metrics: dict
    stage_end = Signal(str, float)
    finished = Signal(int, object)  # run id, metrics: dict (metrics.json)
    failed = Signal(int, str, str)

    def __init__(self, pipeline: Pipeline, registry: Registry, store: RunStore,
                 device: str = "auto", out_dir: str | Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pipeline = pipeline
        self.registry = registry
        self.store = store
        self.device = device
        self.out_dir = out_dir
        self.runner: Runner | None = None
        #: The finished run's result, hits included (what a backtest pools).
        self.result: RunResult | None = None
        #: The full traceback when the run ended on a bug rather than a PenchantError.
        self.traceback: str | None = None
        self._cancel = threading.Event()
        self._observer = _Observer(self)
        self._outcome: tuple[str, Any] | None = None
        self._thread = _Thread(self)
        self._thread.finished.connect(self._report)

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def start(self) -> None:
        if self._outcome is not None or self._thread.isRunning():
            raise RuntimeError("a RunWorker runs its pipeline once; make a new one")
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to end at its next safe point (thread-safe; returns at once).

        Before the runner exists the shared cancel event is set, which the runner is given,
        so a Stop pressed in the first instant is not lost.
        """
        if self.runner is not None:
            self.runner.stop()
        else:
            self._cancel.set()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread ends (for closing the app); True when it did."""
        return self._thread.wait(msecs)

    # -- in the worker thread ------------------------------------------------------

    def _work(self) -> None:
        try:
            self.runner = Runner(self.pipeline, self.registry, self.store, self.out_dir,
                                 observers=[self._observer], device=self.device,
                                 cancel=self._cancel)
            self.result = self.runner.run()
            self._outcome = ("finished", self.result.metrics)
        except PenchantError as exc:
            # A recorded run's hook says how it ended (failed, cancelled, interrupted);
            # without one the runner refused the pipeline before recording anything.
            status, error = self._observer.ending or ("failed", str(exc))
            self._outcome = (status, error or str(exc))
        except BaseException as exc:  # a bug in a plugin or the host must not end the app
            text = "".join(traceback.format_exception(exc))
            self.traceback = self.runner.scrub(text) if self.runner is not None else text
            status, error = self._observer.ending or ("failed", f"{type(exc).__name__}: {exc}")
            self._outcome = (status, error)

    # -- back in the GUI thread ----------------------------------------------------

    def _report(self) -> None:
        status, value = self._outcome or ("failed", "the run thread ended without a result")
        if status == "finished":
            self.finished.emit(self._observer.run_id, value)
        else:
            self.failed.emit(self._observer.run_id, status, value)
