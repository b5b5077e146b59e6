"""The Training view: start and stop a pipeline run and watch it live.

Everything shown here comes from the runner's observer hooks, relayed by :class:`RunWorker`
as Qt signals; the view computes nothing about the run itself. It holds one run at a time
and, whatever the ending, is ready for the next one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from penchant.backtest import Backtest, cutoff_pipelines, pooled_backtest
from penchant.errors import PenchantError
from penchant.pipeline import Pipeline, parse_value
from penchant.plugins import Registry
from penchant.report import backtest_table
from penchant.runner import RunResult
from penchant.store import RunStore
from penchant_gui.loss_plot import COLOURS, LossPlot
from penchant_gui.run_worker import RunWorker
from penchant_gui.widgets import text_view

LOSS_TITLE = "Training loss per epoch"
VALIDATION_TITLE = "Validation metric per epoch"
NO_LOSSES_YET = "Each loss term appears here after the model's first epoch."

#: How often queued epochs and progress reach the screen. Redrawing two plots on every epoch
#: (tens a second for a small model) kept the GUI thread painting and the window sluggish.
FLUSH_MS = 400
#: Beyond this many epochs a series drops its point markers: dots on a dense line are noise
#: and the dearest part of each redraw.
MARKER_LIMIT = 60

#: Loss entries that are bookkeeping, not loss terms (plotting seconds would flatten the rest).
NOT_PLOTTED = frozenset({"seconds"})


def cuda_devices() -> list[tuple[str, str]]:
    """``(label, device)`` for each CUDA device torch sees; none when torch cannot tell."""
    try:
        import torch

        return [(f"cuda:{i} ({torch.cuda.get_device_name(i)})", f"cuda:{i}")
                for i in range(torch.cuda.device_count())]
    except Exception:  # no torch, a broken driver: the CPU still works
        return []


def clock(seconds: float) -> str:
    """``0:42``, ``12:05`` or ``1:02:03``: short for what most stages take, exact for long."""
    seconds = int(max(seconds, 0) + 0.5)
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def headline(metrics: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, float]]] | None:
    """The ndcg to show (``ndcg@20``, else the largest k evaluated) and each model's value of
    it per horizon, from ``metrics.json``'s ``results``."""
    results = metrics.get("results") or {}
    ks = {key for per_h in results.values() for values in per_h.values() for key in values
          if key.startswith("ndcg@")}
    if not ks:
        return None
    key = "ndcg@20" if "ndcg@20" in ks else max(ks, key=lambda k: int(k.split("@")[1]))
    return key, {model: {h: v[key] for h, v in per_h.items() if key in v}
                 for model, per_h in results.items()}


def summarize(run_id: int, metrics: Mapping[str, Any], seconds: float | None = None) -> str:
    """One line: the run, the model's ndcg at each horizon, and the best baseline's beside it
    (a model that loses to recent popularity is the first thing worth knowing)."""
    took = f" in {clock(seconds)}" if seconds is not None else ""
    found = headline(metrics)
    model = metrics.get("model", "")
    if found is None or model not in found[1]:
        return f"Run {run_id} finished{took}."
    key, values = found

    def per_horizon(name: str) -> str:
        return ", ".join(f"{h} {v:.4f}" for h, v in values[name].items())

    line = f"Run {run_id} finished{took} — {model} {key}: {per_horizon(model)}"
    baselines = [name for name in values if name != model and values[name]]
    if baselines:
        best = max(baselines, key=lambda n: sum(values[n].values()) / len(values[n]))
        line += f"  (best baseline, {best}: {per_horizon(best)})"
    return line


class _Eta:
    """Time left in a stage from its elapsed time and ``done``/``total``.

    A stage is timed from the end of the previous one (or the previous report, when one
    pass of work follows another inside a stage), not from its own first report, which
    only comes after its first step. A refit trains again from epoch 1 after the early
    stopping pass: it starts over from the last report of that pass.
    """

    def __init__(self) -> None:
        self.mark = self.last = self.started = time.monotonic()
        self.key: tuple[str, int] | None = None
        self.done = 0

    def boundary(self) -> None:
        """A stage ended: the next one starts now."""
        self.mark = time.monotonic()

    def update(self, stage: str, done: int, total: int) -> float | None:
        now = time.monotonic()
        if (stage, total) != self.key or done < self.done:
            self.key, self.started = (stage, total), max(self.mark, self.last)
        self.done, self.last = done, now
        if total <= 0 or done <= 0:
            return None
        return (now - self.started) / done * max(total - done, 0)


class TrainingView(QWidget):
    """Run a pipeline and watch its losses, validation metric, progress and log.

    ``pipeline_provider`` (set by the main window) gives the pipeline the Run button runs,
    or None when there is nothing runnable. ``run_ended`` carries the run id (-1 when the
    run was refused before being recorded) and the status: finished, failed, cancelled or
    interrupted. Backtest runs the pipeline from each cutoff typed beside it, one run after
    another (each an ordinary run, ``run_ended`` after each), and then shows the results
    pooled, as ``penchant backtest`` prints them; ``backtest_ended`` follows the last run.
    """

    run_started = Signal(int)
    run_ended = Signal(int, str)
    backtest_ended = Signal(str)  # finished, failed, cancelled or interrupted

    def __init__(self, registry: Registry, store: RunStore, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.registry = registry
        self.store = store
        self.worker: RunWorker | None = None
        self.run_id = -1
        self.last_status: str | None = None
        self.last_metrics: dict[str, Any] | None = None
        #: The last backtest's runs and pooled metrics, once all its runs finished.
        self.last_backtest: Backtest | None = None
        #: The backtest going: pipelines still to run, results of those that finished.
        self._backtest_queue: list[Pipeline] | None = None
        self._backtest_runs: list[RunResult] = []
        self._backtest_name = ""
        #: The window showing the last backtest's pooled tables (tests read and close it).
        self.backtest_box: QDialog | None = None
        #: The message of the last failure shown, and the box showing it (tests close it).
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self._provider: Callable[[], Pipeline | None] | None = None
        self._running = False
        self._started_at = 0.0
        self._eta = _Eta()
        #: Epoch values and the latest progress waiting for the next flush.
        self._pending_points: list[tuple[LossPlot, str, str, str, int, float]] = []
        self._pending_progress: tuple[str, int, int, float | None] | None = None
        self._pending_stage: str | None = None
        self._items: dict[tuple[int, str], pg.PlotDataItem] = {}
        self._validation_label = ""
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._build()
        self._update_buttons()

    # -- layout --------------------------------------------------------------------

    def _build(self) -> None:
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Run the pipeline open in the pipeline builder")
        self.run_button.clicked.connect(self._run_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the run at its next safe point; it is recorded as "
                                    "cancelled")
        self.stop_button.clicked.connect(self.stop)
        self.backtest_button = QPushButton("Backtest")
        self.backtest_button.setToolTip(
            "Run the pipeline from each cutoff in turn, training only on what came before "
            "it, and pool every horizon's results over them: short horizons hold few users "
            "from one cutoff")
        self.backtest_button.clicked.connect(self._backtest_clicked)
        self.cutoffs_edit = QLineEdit()
        self.cutoffs_edit.setPlaceholderText("cutoffs, e.g. 0.6 0.7 0.8")
        self.cutoffs_edit.setToolTip("Where each backtest run cuts: quantiles of event "
                                     "times (0.7) or dates (2025-01-15), two or more")
        self.cutoffs_edit.setMaximumWidth(220)
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto", "auto")
        self.device_combo.addItem("cpu", "cpu")
        for label, device in cuda_devices():
            self.device_combo.addItem(label, device)
        self.device_combo.setToolTip("Where torch models train; auto picks a GPU when "
                                     "there is one")
        self.pipeline_label = QLabel("No run yet.")
        self.pipeline_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.stop_button)
        top.addSpacing(12)
        top.addWidget(self.backtest_button)
        top.addWidget(self.cutoffs_edit)
        top.addSpacing(12)
        top.addWidget(QLabel("Device:"))
        top.addWidget(self.device_combo)
        top.addSpacing(12)
        top.addWidget(self.pipeline_label, 1)

        self.stage_label = QLabel("Idle")
        self.stage_label.setMinimumWidth(260)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("")
        self.progress_bar.setSizePolicy(QSizePolicy.Policy.Expanding,
                                        QSizePolicy.Policy.Fixed)
        middle = QHBoxLayout()
        middle.addWidget(self.stage_label)
        middle.addWidget(self.progress_bar, 1)

        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.loss_plot = LossPlot(LOSS_TITLE, "loss")
        self.validation_plot = LossPlot(VALIDATION_TITLE, "metric")
        for plot in (self.loss_plot, self.validation_plot):
            # A metric of 0.08 would read "80 (x0.001)" with pyqtgraph's SI prefixes.
            plot.plot.getAxis("left").enableAutoSIPrefix(False)
        # Eight loss curves (four terms, two passes) make a legend that hides the data:
        # the loss legend is a line of text under the plot instead. Validation metrics
        # mostly rise, so their one-line legend sits bottom right, away from the curve.
        self.loss_plot.legend.setVisible(False)
        self.validation_plot.legend.setOffset((-10, -10))
        self.validation_plot.legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        self.loss_legend = QLabel(NO_LOSSES_YET)
        self.loss_legend.setTextFormat(Qt.TextFormat.RichText)
        self.loss_legend.setWordWrap(True)
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Loss terms differ by orders of magnitude (a VAE's kl and "
                                  "beta beside its nll); a log axis shows them all")
        self.log_scale.setChecked(True)
        self.log_scale.toggled.connect(self._set_log_scale)
        self._set_log_scale(True)
        top.addWidget(self.log_scale)
        #: Colour of each loss term, the same for every training pass of the model.
        self._term_colours: dict[str, str] = {}
        #: The training passes seen (``vae (validation)``, ``vae``), for the legend.
        self._passes: list[str] = []
        losses = QWidget()
        losses_layout = QVBoxLayout(losses)
        losses_layout.setContentsMargins(0, 0, 0, 0)
        losses_layout.addWidget(self.loss_plot, 1)
        losses_layout.addWidget(self.loss_legend)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(losses)
        plots.addWidget(self.validation_plot)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 2)
        plots.setChildrenCollapsible(False)

        self.log_view = text_view()
        # Wrapped: a long log line (a path and its columns) must not scroll sideways.
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.log_view.setMaximumBlockCount(10000)
        self.log_view.setPlaceholderText("What each stage did appears here while a run goes.")

        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(plots)
        body.addWidget(self.log_view)
        body.setStretchFactor(0, 2)
        body.setStretchFactor(1, 1)
        body.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(middle)
        layout.addWidget(self.summary_label)
        self.summary_label.setVisible(False)
        layout.addWidget(body, 1)

    # -- state ---------------------------------------------------------------------

    @property
    def pipeline_provider(self) -> Callable[[], Pipeline | None] | None:
        return self._provider

    @pipeline_provider.setter
    def pipeline_provider(self, provider: Callable[[], Pipeline | None] | None) -> None:
        self._provider = provider
        self._update_buttons()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def device(self) -> str:
        return str(self.device_combo.currentData())

    def _set_summary(self, text: str) -> None:
        """Hidden while empty: a blank row under the progress bar looks like a missing value."""
        self.summary_label.setText(text)
        self.summary_label.setVisible(bool(text))

    def _set_log_scale(self, on: bool) -> None:
        self.loss_plot.plot.setLogMode(y=on)
        self.loss_plot.plot.setLabel("left", "loss (log scale)" if on else "loss")

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(not self._running and self._provider is not None)
        self.backtest_button.setEnabled(self.run_button.isEnabled())
        self.cutoffs_edit.setEnabled(not self._running)
        self.stop_button.setEnabled(self._running)
        self.device_combo.setEnabled(not self._running)

    # -- actions -------------------------------------------------------------------

    def _provided(self) -> Pipeline | None:
        """The pipeline to run, or None (with the reason shown) when there is none."""
        if self._running or self._provider is None:
            return None
        try:
            pipeline = self._provider()
        except PenchantError as exc:
            self._show_error("The pipeline cannot run", str(exc))
            return None
        if pipeline is None:
            self.stage_label.setText("Nothing to run: open or build a pipeline first.")
        return pipeline

    def _run_clicked(self) -> None:
        pipeline = self._provided()
        if pipeline is not None:
            self.start(pipeline)

    def _backtest_clicked(self) -> None:
        pipeline = self._provided()
        if pipeline is not None:
            self.backtest(pipeline)

    def backtest(self, pipeline: Pipeline) -> None:
        """Run ``pipeline`` from each cutoff typed beside the button, one run after
        another, then pool them; with none typed yet, the cursor goes there."""
        # Each cutoff read as --set reads a value: a quantile is a number, a date a date.
        words = self.cutoffs_edit.text().replace(",", " ").split()
        if not words:
            self.cutoffs_edit.setFocus()
            self.stage_label.setText("Type two or more cutoffs beside Backtest, e.g. 0.6 0.7 0.8")
            return
        try:
            pipelines = cutoff_pipelines(pipeline, [parse_value(w) for w in words],
                                         self.registry, where="Cutoffs")
        except PenchantError as exc:
            self._show_error("The backtest cannot start", str(exc))
            return
        self._backtest_name = pipeline.name
        self.last_backtest = None
        self._backtest_runs = []
        self._backtest_queue = pipelines[1:]
        self.start(pipelines[0])

    def start(self, pipeline: Pipeline) -> None:
        """Start ``pipeline`` in the background; the view shows it until it ends."""
        if self._running:
            raise RuntimeError("a run is already going; stop it first")
        self._reset(pipeline, keep_log=bool(self._backtest_runs))
        # The previous worker is replaced only now: its thread has ended (the ending is
        # reported after it), so dropping it cannot destroy a running QThread.
        self.worker = worker = RunWorker(pipeline, self.registry, self.store,
                                         device=self.device)
        worker.started.connect(self._on_started)
        worker.progress.connect(self._on_progress)
        worker.log.connect(self._on_log)
        worker.epoch.connect(self._on_epoch)
        worker.stage_end.connect(self._on_stage_end)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self._running = True
        self._update_buttons()
        self._flush_timer.start()
        worker.start()

    def stop(self) -> None:
        """Ask the run to stop at its next safe point; ``run_ended`` follows."""
        if self._running and self.worker is not None:
            self.worker.stop()
            self.stop_button.setEnabled(False)
            self.stage_label.setText("Stopping at the next safe point…")

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the run's thread has ended (closing the app); True when it has."""
        return self.worker.wait(msecs) if self.worker is not None else True

    def _reset(self, pipeline: Pipeline, keep_log: bool = False) -> None:
        self.run_id = -1
        self.last_status = None
        self.last_metrics = None
        self.loss_plot.clear()
        self.validation_plot.clear()
        self._term_colours.clear()
        self._passes.clear()
        self._items.clear()
        self._validation_label = ""
        self.validation_plot.plot.setLabel("left", "metric")
        self._pending_points.clear()
        self._pending_progress = self._pending_stage = None
        self.loss_legend.setText(NO_LOSSES_YET)
        self.loss_plot.plot.setTitle(LOSS_TITLE)
        self.validation_plot.plot.setTitle(VALIDATION_TITLE)
        if not keep_log:  # a backtest's runs share one log
            self.log_view.clear()
        self._set_summary("")
        self.progress_bar.setRange(0, 0)  # busy until the first progress report
        self.progress_bar.setFormat("starting")
        self.stage_label.setText("Checking the source…")
        self.pipeline_label.setText(f"Pipeline {pipeline.name} ({pipeline.origin}) on "
                                    f"{self.device_combo.currentText()}")
        self._started_at = time.monotonic()
        self._eta = _Eta()

    # -- signals from the worker ---------------------------------------------------

    def _append(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _on_started(self, run_id: int) -> None:
        self.run_id = run_id
        self._eta.boundary()
        self._append(f"run {run_id} started on {self.device}")
        self.stage_label.setText(f"Run {run_id}: loading")
        self.run_started.emit(run_id)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        # The ETA is taken when the report arrives; drawing waits for the next flush.
        self._pending_progress = (stage, done, total, self._eta.update(stage, done, total))

    def _on_log(self, message: str) -> None:
        self._append(message)

    def _on_epoch(self, model: str, epoch: int, losses: dict, metrics: dict) -> None:
        for plot, values in ((self.loss_plot, losses), (self.validation_plot, metrics)):
            for term, value in values.items():
                if term in NOT_PLOTTED:
                    continue
                number = _number(value)
                if number is None:
                    # A diverging loss would vanish from the plot: say so where it shows.
                    self._append(f"{model} epoch {epoch}: {term} is {value}")
                    continue
                if number <= 0 and plot is self.loss_plot and self.log_scale.isChecked():
                    # A log axis cannot show it (GAN losses go negative): fall back.
                    self.log_scale.setChecked(False)
                self._pending_points.append((plot, f"{model} {term}", model, term, epoch,
                                             number))
        label = ", ".join(map(str, metrics))
        if metrics and label != self._validation_label:
            # Only on change: a new axis label re-lays the plot out, too dear per epoch.
            self._validation_label = label
            self.validation_plot.plot.setLabel("left", label)
        self._pending_stage = f"Stage: train — {model}, epoch {epoch}"

    def _flush(self) -> None:
        """Draw what arrived since the last flush: each series gets one ``setData`` however
        many epochs it gained, and the bar shows only the latest progress."""
        grouped: dict[tuple[int, str], tuple[LossPlot, str, str, list[float], list[float]]] = {}
        for plot, name, model, term, epoch, value in self._pending_points:
            _, _, _, xs, ys = grouped.setdefault((id(plot), name),
                                                 (plot, model, term, [], []))
            xs.append(float(epoch))
            ys.append(value)
        self._pending_points = []
        for (_, name), (plot, model, term, xs, ys) in grouped.items():
            if plot.points(name) == 0:
                plot.add_point(name, xs[0], ys[0])
                self._style(plot, name, model, term)
                xs, ys = xs[1:], ys[1:]
            if xs:
                # LossPlot.add_point redraws per point; extend its series and redraw once.
                all_xs, all_ys = plot.series[name]
                all_xs.extend(xs)
                all_ys.extend(ys)
                item = self._item(plot, name)
                item.setData(all_xs, all_ys)
                if len(all_xs) > MARKER_LIMIT and item.opts.get("symbol") is not None:
                    item.setSymbol(None)
        if self._pending_progress is not None:
            self._show_progress(*self._pending_progress)
            self._pending_progress = None
        if self._pending_stage is not None:
            self.stage_label.setText(self._pending_stage)
            self._pending_stage = None

    def _show_progress(self, stage: str, done: int, total: int, eta: float | None) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(done, total))
            left = f" — ETA {clock(eta)}" if eta is not None else ""
            self.progress_bar.setFormat(f"{stage} — {done}/{total}{left}")
        else:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat(f"{stage} — {done}")
        if self._pending_stage is None and \
                not self.stage_label.text().startswith(f"Stage: {stage}"):
            self.stage_label.setText(f"Stage: {stage}")

    def _item(self, plot: LossPlot, name: str) -> pg.PlotDataItem:
        key = (id(plot), name)
        if key not in self._items:
            self._items[key] = next(item for item in plot.plot.listDataItems()
                                    if item.name() == name)
        return self._items[key]

    def _style(self, plot: LossPlot, name: str, model: str, term: str) -> None:
        """One colour per term whatever the pass, dashed for the pass that early-stops on the
        validation window, so "vae loss" and "vae (validation) loss" read as a pair."""
        if plot is self.loss_plot:
            colours = self._term_colours
            colour = colours.setdefault(term, COLOURS[len(colours) % len(COLOURS)])
            if model not in self._passes:
                self._passes.append(model)
        else:  # a series per metric and model: LossPlot's own colours are right
            return
        style = Qt.PenStyle.DashLine if "(validation)" in model else Qt.PenStyle.SolidLine
        item = self._item(plot, name)
        item.setPen(pg.mkPen(colour, width=2, style=style))
        item.setSymbolBrush(colour)
        self._update_loss_legend()

    def _update_loss_legend(self) -> None:
        terms = "&nbsp;&nbsp;".join(
            f'<span style="color:{colour}; font-weight:bold">━━</span>&nbsp;{term}'
            for term, colour in self._term_colours.items())
        passes = ", ".join(self._passes)
        text = f"{passes}:&nbsp;&nbsp;{terms}"
        if any("(validation)" in p for p in self._passes) and len(self._passes) > 1:
            text += ("<br>dashed lines: trained before the validation cut (early stopping);"
                     " solid lines: retrained on the whole training period")
        self.loss_legend.setText(text)

    def _on_stage_end(self, stage: str, seconds: float) -> None:
        self._flush()
        self._eta.boundary()
        self._append(f"{stage} done in {seconds:.2f} s")
        # The next stage announces itself only with its first progress report (if any):
        # until then the bar is busy rather than stuck on the stage that ended.
        self.stage_label.setText(f"Stage: {stage} done, next one running…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("")

    def _ended(self, run_id: int, status: str) -> None:
        if not self.loss_plot.series:
            self.loss_legend.setText("")  # no "appears after the first epoch" promise left
        self._flush_timer.stop()
        if status == "finished":
            # Say why a pane stayed empty rather than leave the user to wonder.
            if not self.loss_plot.series:
                self.loss_plot.plot.setTitle(f"{LOSS_TITLE}: none (the model does not "
                                             "train by epochs)")
            if not self.validation_plot.series:
                self.validation_plot.plot.setTitle(f"{VALIDATION_TITLE}: none in this run")
        self.run_id = run_id
        self.last_status = status
        self._running = False
        self._update_buttons()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if status == "finished" else 0)
        self.progress_bar.setFormat(status)
        self.run_ended.emit(run_id, status)

    def _on_finished(self, run_id: int, metrics: dict) -> None:
        self._flush()  # the last epochs first, then the ending over them
        self.last_metrics = metrics
        line = summarize(run_id, metrics, time.monotonic() - self._started_at)
        self._set_summary(line)
        self.stage_label.setText(f"Run {run_id} finished")
        self._append(line)
        self._ended(run_id, "finished")
        if self._backtest_queue is not None:
            assert self.worker is not None and self.worker.result is not None
            self._backtest_runs.append(self.worker.result)
            if self._backtest_queue:
                self.start(self._backtest_queue.pop(0))
            else:
                self._backtest_done()

    def _backtest_done(self) -> None:
        self.last_backtest = pooled_backtest(self._backtest_runs)
        self._backtest_queue, self._backtest_runs = None, []
        runs = ", ".join(str(r.run.id) for r in self.last_backtest.runs)
        table = backtest_table(self.last_backtest.metrics)
        self._append("")
        self._append(table)
        self._set_summary(f"Backtest finished: runs {runs}; the pooled tables are also in "
                          "the log below.")
        self._show_backtest(f"Backtest of {self._backtest_name}: "
                            f"{self.last_backtest.metrics['cutoff']}", table)
        self.stage_label.setText(f"Backtest over {len(self.last_backtest.runs)} cutoffs "
                                 "finished")
        self.backtest_ended.emit("finished")

    def _on_failed(self, run_id: int, status: str, error: str) -> None:
        self._flush()
        # Run id -1: the runner refused the pipeline before recording it (a preflight check).
        headline = f"Run {run_id} {status}" if run_id >= 0 else "The run could not start"
        first = error.strip().splitlines()[0] if error.strip() else status
        self._append(f"{headline}: {error}")
        self.stage_label.setText(headline)
        if status == "failed":
            self._set_summary(f"{headline}: {first}")
            details = self.worker.traceback if self.worker is not None else None
            self._show_error(headline, error, details)
        else:  # cancelled (Stop) or interrupted: what the user asked for, not an error
            self._set_summary(f"{headline}.")
        self._ended(run_id, status)
        if self._backtest_queue is not None:
            done = len(self._backtest_runs)
            self._backtest_queue, self._backtest_runs = None, []
            self._append(f"Backtest stopped after {done} finished run(s): nothing pooled.")
            self.backtest_ended.emit(status)

    def _show_backtest(self, title: str, table: str) -> None:
        """The pooled tables in a window of their own, non-modal like the error box: wide
        monospaced tables read badly in the log's wrapped pane under the plots."""
        if self.backtest_box is not None:
            self.backtest_box.close()
        box = QDialog(self)
        box.setWindowTitle(title)
        view = text_view()
        view.setPlainText(table)
        width = view.fontMetrics().horizontalAdvance(max(table.splitlines(), key=len))
        view.setMinimumSize(min(width + 40, 1400), 420)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(box.close)
        layout = QVBoxLayout(box)
        layout.addWidget(QLabel(title))  # no window manager draws the title in screenshots
        layout.addWidget(view, 1)
        layout.addWidget(buttons)
        self.backtest_box = box
        box.open()

    def _show_error(self, title: str, message: str, details: str | None = None) -> None:
        """A non-modal box (``open()``, not ``exec()``): the view stays usable behind it and
        a test can read ``last_error`` and close ``error_box``. The title is repeated inside
        the box, where window managers without decorations (and screenshots) still show it;
        a bug's traceback goes under "Show Details…"."""
        self.last_error = message
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Critical, title, title,
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(message)
        # The default width folds a path and a column list into a narrow column.
        box.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 520px; }")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if details:
            box.setDetailedText(details)
        self.error_box = box
        box.open()


def _number(value: Any) -> float | None:
    """``value`` as a plottable float; None for NaN, infinities and anything not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
