"""The runs view: every run in the store, one run's details, several runs side by side.

The view only reads the run store (the app never computes results itself): the main window
calls :meth:`RunsView.refresh` when a run ends, and listens to
:attr:`RunsView.open_pipeline` to hand a run's pipeline to the builder.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from penchant.artifacts import delete_run
from penchant.errors import PenchantError
from penchant.report import LIGHT, horizon_order, level_text, ratio_cell
from penchant.run_data import paired_users
from penchant.store import RunRecord, RunStore
from penchant_gui.frame_model import FrameModel
from penchant_gui.loss_plot import LossPlot
from penchant_gui.widgets import Placeheld, RawSortProxy, frame_table, message_label, text_view

_Index = QModelIndex | QPersistentModelIndex
#: ``metrics[model][horizon][metric] = value``, as the run store gives them.
Metrics = Mapping[str, Mapping[str, Mapping[str, Any]]]
#: ``{series name: (epochs, values)}``, as :meth:`LossPlot.set_series` takes them.
Curves = dict[str, tuple[list[float], list[float]]]

STATUSES = ("all", "finished", "failed", "cancelled", "interrupted", "running")
#: The one metric the runs table shows per horizon: enough to rank runs at a glance.
KEY_METRIC = "ndcg@20"
#: The metrics the details and compare tables show per horizon, when the run has them.
DETAIL_METRICS = ("ndcg@10", "ndcg@20", "recall@20")
#: Interest forecasts (``interests = true``): JS divergence and top-3 overlap.
INTEREST_METRICS = ("js", "top3")
#: Loss terms that are not losses (time per epoch): plotted beside a loss they flatten it.
NOT_PLOTTED = frozenset({"seconds"})
STATUS_COLOURS = {"finished": "#1E7B34", "failed": "#C0392B", "cancelled": "#8A5A00",
                  "interrupted": "#8A5A00", "running": "#0072B2"}
EMPTY_STORE = ("<h3>No runs yet</h3><p>Runs appear here once they end: start one from the "
               "pipeline builder, or from a terminal with<br><code>penchant run "
               "pipeline.toml</code>.</p>")
NOTHING_SELECTED = "Select a run to see its metrics, loss curves and pipeline.\n" \
                   "Select two or more (Ctrl- or Shift-click) and press Compare to see them " \
                   "side by side."


# -- turning store records into rows -----------------------------------------------------

def local_time(moment: datetime | None) -> str:
    """A stored time in the viewer's zone, to the minute. SQLite drops the zone of the UTC
    times the store writes, so a naive time is UTC."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def run_seconds(record: RunRecord, now: datetime | None = None) -> float | None:
    """How long the run took, or has taken so far while it is running."""
    if record.status == "running":
        end: datetime | None = now or datetime.now(UTC)
    else:
        end = record.finished_at
    if end is None or record.started_at is None:
        return None
    return max(0.0, (_utc(end) - _utc(record.started_at)).total_seconds())


def format_duration(seconds: float | None) -> str:
    """``"45s"``, ``"3m 12s"``, ``"2h 05m"``, ``"1d 3h"``: as precise as is useful."""
    if seconds is None:
        return ""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _at_k(metric: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.+)@(\d+)", metric)
    return (match.group(1), int(match.group(2))) if match else (metric, 0)


def metric_columns(all_metrics: Iterable[Metrics]) -> list[tuple[str, str]]:
    """The (horizon, metric) pairs worth a column: the usual ranking metrics (for runs
    evaluated at other k, NDCG and recall at the deepest k), then interest metrics, per
    horizon, only where some model has a value. Light-user horizons become rows."""
    present: dict[str, set[str]] = {}
    for metrics in all_metrics:
        for by_horizon in metrics.values():
            for horizon, values in by_horizon.items():
                if not horizon.endswith(LIGHT):
                    present.setdefault(horizon, set()).update(
                        m for m, v in values.items() if v is not None)
    names = set().union(*present.values()) if present else set()
    ranking = [m for m in DETAIL_METRICS if m in names]
    for family in ("ndcg", "recall"):  # evaluated at other k: the deepest k there is
        if not any(_at_k(m)[0] == family for m in ranking):
            ranking += [m for m in sorted(names, key=_at_k)
                        if _at_k(m)[0] == family][-1:]
    ranking.sort(key=lambda m: (_at_k(m)[0] != "ndcg", _at_k(m)[1]))
    wanted = ranking + [m for m in INTEREST_METRICS if m in names]
    return [(h, m) for h in sorted(present, key=horizon_order) for m in wanted
            if m in present[h]]


def metrics_rows(metrics: Metrics, main: str, columns: Sequence[tuple[str, str]]
                 ) -> list[dict[str, Any]]:
    """One row per model (the run's own first, then baselines) and, where the run scored
    light users separately, one more per model for them after those; columns
    ``"7d ndcg@20"`` etc."""
    rows = []
    for suffix in ("", LIGHT):
        for name in sorted(metrics, key=lambda n: (n != main, n)):
            role = "this run's model" if name == main else "baseline"
            values = {f"{h} {m}": _value(metrics[name].get(h + suffix, {}).get(m))
                      for h, m in columns}
            if suffix and all(v is None for v in values.values()):
                continue
            rows.append({"model": name, "role": role + (", light users" if suffix else ""),
                         **values})
    return rows


def _value(value: Any) -> float | None:
    return None if value is None else float(value)


def metrics_frame(metrics: Metrics, main: str) -> pd.DataFrame:
    """The details table of one run: like ``penchant.report.metrics_table``, as a frame."""
    columns = metric_columns([metrics])
    header = ["model", "role"] + [f"{h} {m}" for h, m in columns]
    return _numeric(pd.DataFrame(metrics_rows(metrics, main, columns), columns=header),
                    header[2:])


def _numeric(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Metric columns as floats (NaN, shown blank, where a model has no value)."""
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def evaluated_users(metrics: Metrics, main: str) -> str:
    """``"evaluated 7d: 120 users, 30d: 208 users"``: how much each horizon's scores rest on."""
    by_horizon = metrics.get(main) or next(iter(metrics.values()), {})
    counts = [f"{h}: {int(v['users'])} users"
              for h, v in sorted(by_horizon.items(), key=lambda kv: horizon_order(kv[0]))
              if not h.endswith(LIGHT) and v.get("users") is not None]
    return "evaluated " + ", ".join(counts) if counts else ""


def loss_curves(losses: Iterable[Mapping[str, Any]], prefix: str = "") -> tuple[Curves, Curves]:
    """Stored loss rows as (training losses, validation metrics), one series per model and
    term (``"vae loss"``, ``"vae val_ndcg@20"``). Apart because a loss in the hundreds next
    to an NDCG of 0.2 would flatten the NDCG into a line along the axis."""
    training: Curves = {}
    validation: Curves = {}
    for row in losses:
        term, value = str(row["term"]), row["value"]
        if term in NOT_PLOTTED or value is None:
            continue
        target = validation if term.startswith("val_") else training
        xs, ys = target.setdefault(f"{prefix}{row['model']} {term}", ([], []))
        xs.append(float(row["epoch"]))
        ys.append(float(value))
    return training, validation


# -- models ------------------------------------------------------------------------------

class RunsTableModel(FrameModel):
    """The runs table: a frame plus sort keys for the columns whose text does not sort
    (durations), status colours, and the error as the row's tooltip."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent=parent)
        self._keys: dict[int, list[Any]] = {}
        self._tips: list[str | None] = []

    def set_runs(self, frame: pd.DataFrame, keys: Mapping[str, Sequence[Any]],
                 tips: Sequence[str | None]) -> None:
        self._keys = {int(frame.columns.get_loc(c)): list(v) for c, v in keys.items()}
        self._tips = list(tips)
        self.set_frame(frame)

    def run_id(self, row: int) -> int:
        return int(self.frame.at[row, "id"])

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if index.isValid():
            row, column = index.row(), index.column()
            if role == Qt.ItemDataRole.UserRole and column in self._keys:
                return self._keys[column][row]
            if role == Qt.ItemDataRole.ForegroundRole and self.frame.columns[column] == "status":
                colour = STATUS_COLOURS.get(str(self.frame.iat[row, column]))
                return QColor(colour) if colour else None
            if role == Qt.ItemDataRole.ToolTipRole:
                return self._tips[row] if row < len(self._tips) else None
        return super().data(index, role)


class RunsFilter(RawSortProxy):
    """Keeps the rows whose name, model or status contain every word typed, with the chosen
    status."""

    TEXT_COLUMNS = ("name", "model", "status")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self._status = "all"

    def set_text(self, text: str) -> None:
        self.change_rows_filter(lambda: setattr(self, "_words", text.lower().split()))

    def set_status(self, status: str) -> None:
        self.change_rows_filter(lambda: setattr(self, "_status", status))

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        frame = self.sourceModel().frame
        if self._status != "all" and frame.at[row, "status"] != self._status:
            return False
        text = " ".join(str(frame.at[row, c]) for c in self.TEXT_COLUMNS).lower()
        return all(word in text for word in self._words)


class CurvesPane(QWidget):
    """Training losses and validation metrics side by side, each in its own plot (or a
    message when a run recorded none, e.g. a closed-form model).

    Loss terms live on different scales (a VAE's loss in the hundreds, its KL weight below
    one), so the training plot shows one term at a time, ``loss`` first, or all of them.
    """

    ALL = "all terms"

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.loss_plot = LossPlot("Training loss", "loss")
        self.val_plot = LossPlot("Validation", "metric")
        for plot in (self.loss_plot, self.val_plot):
            plot.plot.getAxis("left").enableAutoSIPrefix(False)
            plot.legend.setBrush(pg.mkBrush(255, 255, 255, 215))
            plot.setToolTip("Click a legend entry to hide its line; right-click for a log "
                            "scale or to export the plot")
        # validation metrics rise: their legend goes bottom right, out of the curves' way
        self.val_plot.legend.setOffset((-10, -10))
        self.term_combo = QComboBox()
        self.term_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.term_combo.currentTextChanged.connect(self._draw_training)
        self._training: Curves = {}
        training = QWidget()
        column = QVBoxLayout(training)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Loss term:"))
        row.addWidget(self.term_combo)
        row.addStretch(1)
        column.addLayout(row)
        column.addWidget(self.loss_plot, 1)
        self.loss_pane = Placeheld(training)
        self.val_pane = Placeheld(self.val_plot)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.loss_pane)
        splitter.addWidget(self.val_pane)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    @property
    def training_series(self) -> Curves:
        """Every training series of the run(s) shown, whichever term is on the plot."""
        return self._training

    def show_curves(self, training: Curves, validation: Curves) -> None:
        self._training = training
        terms = sorted({_term(name) for name in training}, key=lambda t: (t != "loss", t))
        previous = self.term_combo.currentText()
        blocked = self.term_combo.blockSignals(True)
        self.term_combo.clear()
        self.term_combo.addItems([*terms, self.ALL] if len(terms) > 1 else terms)
        keep = previous if previous in terms or previous == self.ALL else None
        self.term_combo.setCurrentText(keep or (terms[0] if terms else ""))
        self.term_combo.blockSignals(blocked)
        self._draw_training()
        self.val_plot.set_series(validation)
        _integer_epochs(self.val_plot, validation)
        if training:
            self.loss_pane.show_content()
        else:
            self.loss_pane.show_message("No training losses recorded: the model does not "
                                        "train by epochs, or the run ended before it did.")
        if validation:
            self.val_pane.show_content()
        else:
            self.val_pane.show_message("No validation metric recorded: validation is off, "
                                       "or the run ended before the first epoch.")

    def _draw_training(self, *_: Any) -> None:
        term = self.term_combo.currentText()
        shown = {name: curve for name, curve in self._training.items()
                 if term == self.ALL or _term(name) == term}
        self.loss_plot.set_series(shown)
        self.loss_plot.plot.setLabel("left", "value" if term == self.ALL else term)
        _integer_epochs(self.loss_plot, shown)


def _term(series: str) -> str:
    """The loss term of a series name (``"vae (validation) kl"`` → ``"kl"``)."""
    return series.rsplit(" ", 1)[-1]


def _integer_epochs(plot: LossPlot, curves: Curves) -> None:
    """Ticks at whole epochs when there are few (no "epoch 2.5"); automatic otherwise."""
    last = max((max(xs) for xs, _ in curves.values() if xs), default=0)
    axis = plot.plot.getAxis("bottom")
    if 0 < last <= 15:
        axis.setTickSpacing(major=1, minor=1)
    else:
        axis.setTickSpacing()


# -- one run -----------------------------------------------------------------------------

class RunDetails(QWidget):
    """Everything about one run: status, error and folder; metrics against the baselines;
    loss curves; the stored pipeline, summary and files."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.record: RunRecord | None = None
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setOpenExternalLinks(True)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.open_button = QPushButton("Open pipeline in builder")
        self.open_button.setToolTip("Load this run's pipeline into the pipeline builder, to "
                                    "change it and run it again")
        self.refresh_button = QPushButton("Refresh")

        self.metrics_model = FrameModel()
        self.metrics_table = frame_table(self.metrics_model, stretch_last=False)
        self.users_label = QLabel()
        self.users_label.setStyleSheet("color: #666;")
        metrics_box = QWidget()
        box = QVBoxLayout(metrics_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.metrics_table)
        box.addWidget(self.users_label)
        self.metrics_pane = Placeheld(metrics_box)

        self.curves = CurvesPane()
        self.pipeline_text = text_view()
        self.summary_text = text_view()
        self.files_text = text_view()
        self.text_tabs = QTabWidget()
        self.text_tabs.addTab(self.pipeline_text, "Pipeline")
        self.text_tabs.addTab(self.summary_text, "Summary")
        self.text_tabs.addTab(self.files_text, "Files")

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.curves)
        bottom.addWidget(self.text_tabs)
        bottom.setSizes([800, 380])
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(_titled("Metrics by horizon", self.metrics_pane))
        body.addWidget(bottom)
        body.setSizes([200, 300])
        self._body = body

        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(body, 1)

    @property
    def loss_plot(self) -> LossPlot:
        return self.curves.loss_plot

    @property
    def val_plot(self) -> LossPlot:
        return self.curves.val_plot

    def show_run(self, record: RunRecord, metrics: Metrics, losses: list[dict[str, Any]],
                 files: Mapping[str, str]) -> None:
        self.record = record
        self.header.setText(_header_html(record))
        had_metrics = self.metrics_pane.showing_content
        if metrics:
            self.metrics_model.set_frame(metrics_frame(metrics, record.model))
            self.users_label.setText(evaluated_users(metrics, record.model))
            self.metrics_pane.show_content()
        else:
            self.metrics_model.set_frame(pd.DataFrame())
            self.metrics_pane.show_message(_no_metrics(record))
        if bool(metrics) != had_metrics:  # a one-line message needs no half of the page
            total = sum(self._body.sizes())
            self._body.setSizes([total * 2 // 5 if metrics else 90,
                                 total * 3 // 5 if metrics else total - 90])
        self.curves.show_curves(*loss_curves(losses))
        self.pipeline_text.setPlainText(record.pipeline)
        self.summary_text.setPlainText(json.dumps(record.summary or {}, indent=2,
                                                  default=str))
        self.files_text.setPlainText("\n".join(f"{name}: {path}"
                                               for name, path in sorted(files.items()))
                                     or "No files recorded for this run.")


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    label = QLabel(f"<b>{html.escape(title)}</b>")
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return box


def _header_html(record: RunRecord) -> str:
    colour = STATUS_COLOURS.get(record.status, "#333")
    took = format_duration(run_seconds(record))
    lines = [f"<span style='font-size: 13pt'><b>run {record.id}: {html.escape(record.name)}"
             f"</b></span> &nbsp; model <b>{html.escape(record.model)}</b> &nbsp; "
             f"<b style='color: {colour}'>{html.escape(record.status)}</b>"
             f" &nbsp; started {local_time(record.started_at)}"
             + (f", took {took}" if took and record.status != "running" else "")]
    if record.error:
        first = record.error.strip().splitlines()[-1] if record.error.strip() else ""
        lines.append(f"<span style='color: #C0392B'>{html.escape(first)}</span>")
    if record.out_dir:
        url = QUrl.fromLocalFile(record.out_dir).toString()
        lines.append(f"folder <a href='{html.escape(url)}'>{html.escape(record.out_dir)}</a>")
    return "<br>".join(lines)


def _no_metrics(record: RunRecord) -> str:
    if record.status == "running":
        return "The run is still going: metrics appear when it is evaluated."
    if record.status == "finished":
        return "This run recorded no metrics."
    return f"No metrics: the run {record.status} before its evaluation."


# -- several runs ------------------------------------------------------------------------

class RunComparison(QWidget):
    """Runs side by side: one metrics row per run and model, and every run's curves overlaid
    in the same plots (series prefixed ``"run 3 "``)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._runs: list[tuple[RunRecord, Metrics]] = []
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        self.back_button = QPushButton("Back to details")
        self.baselines_check = QCheckBox("baselines")
        self.baselines_check.setChecked(True)
        self.light_check = QCheckBox("light users")
        self.light_check.setToolTip("Rows for the scores of users with few training events, "
                                    "where the runs measured them")
        self.metrics_model = FrameModel()
        self.metrics_table = frame_table(self.metrics_model, sortable=True,
                                         stretch_last=False)
        self.curves = CurvesPane()

        table_box = QWidget()
        column = QVBoxLayout(table_box)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Metrics</b> (click a column header to rank); show:"))
        row.addWidget(self.baselines_check)
        row.addWidget(self.light_check)
        row.addStretch(1)
        column.addLayout(row)
        column.addWidget(self.metrics_table, 1)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(table_box)
        body.addWidget(self.curves)
        body.setSizes([220, 300])
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.back_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(body, 1)
        self.baselines_check.toggled.connect(self._fill_table)
        self.light_check.toggled.connect(self._fill_table)

    @property
    def run_ids(self) -> list[int]:
        return [record.id for record, _ in self._runs]

    @property
    def loss_plot(self) -> LossPlot:
        return self.curves.loss_plot

    @property
    def val_plot(self) -> LossPlot:
        return self.curves.val_plot

    def show_runs(self, runs: Sequence[tuple[RunRecord, Metrics, list[dict[str, Any]]]],
                  paired: Mapping[str, Any] | None = None) -> None:
        """Compare these runs, oldest first, as their curves' colours are assigned; for two
        runs, ``paired`` (:func:`penchant.significance.paired_runs` of the older and the
        newer) adds the newer's NDCG ratio with its interval per horizon."""
        runs = sorted(runs, key=lambda run: run[0].id)
        self._runs = [(record, metrics) for record, metrics, _ in runs]
        names = " · ".join(f"run {r.id}: {html.escape(r.name)} ({html.escape(r.model)}, "
                           f"{html.escape(r.status)})" for r, _, _ in runs)
        ratios = ""
        if paired and paired.get("ratios") and len(runs) == 2:
            first, second = (record.id for record, _, _ in runs)
            cells = " · ".join(f"{h} {html.escape(ratio_cell(v))}"
                               for h, v in paired["ratios"].items())
            ratios = (f"<br>{paired['metric']} of run {second} ÷ run {first}, "
                      f"{level_text(paired['level'])} interval over the users both "
                      f"evaluated: {cells}")
        self.header.setText(f"<span style='font-size: 13pt'><b>Comparing {len(runs)} runs"
                            f"</b></span><br>{names}{ratios}")
        self._fill_table()
        training: Curves = {}
        validation: Curves = {}
        for record, _, losses in runs:
            more_training, more_validation = loss_curves(losses, f"run {record.id} ")
            training.update(more_training)
            validation.update(more_validation)
        self.curves.show_curves(training, validation)

    def _fill_table(self, *_: Any) -> None:
        self.metrics_model.set_frame(comparison_frame(
            self._runs, baselines=self.baselines_check.isChecked(),
            light=self.light_check.isChecked()))


def comparison_frame(runs: Sequence[tuple[RunRecord, Metrics]], baselines: bool = True,
                     light: bool = False) -> pd.DataFrame:
    """One row per (run, model) with the metric columns of every run together; light-user
    rows only when asked for, since they double the table."""
    columns = metric_columns(metrics for _, metrics in runs)
    labels = [f"{h} {m}" for h, m in columns]
    rows = []
    for record, metrics in runs:
        if not metrics:
            rows.append({"run": record.id, "pipeline": record.name, "model": record.model,
                         "role": f"no metrics ({record.status})"})
            continue
        for row in metrics_rows(metrics, record.model, columns):
            if (baselines or row["model"] == record.model) and \
                    (light or not row["role"].endswith("light users")):
                rows.append({"run": record.id, "pipeline": record.name, **row})
    return _numeric(pd.DataFrame(rows, columns=["run", "pipeline", "model", "role", *labels]),
                    labels)


# -- the view ----------------------------------------------------------------------------

def key_metric(own: Mapping[str, Mapping[str, Any]]) -> str | None:
    """NDCG@20, or for a run evaluated without k = 20 its NDCG at the deepest k."""
    names = {m for values in own.values() for m, v in values.items() if v is not None}
    if KEY_METRIC in names:
        return KEY_METRIC
    return max((m for m in names if _at_k(m)[0] == "ndcg"), key=_at_k, default=None)


def key_values(own: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The runs-table cells of one run's own model: ``{"ndcg@20 7d": value}``."""
    metric = key_metric(own)
    return {f"{metric} {h}": float(values[metric]) for h, values in own.items()
            if metric and not h.endswith(LIGHT) and values.get(metric) is not None}


def runs_frame(records: Sequence[RunRecord], metrics: Mapping[int, Metrics]
               ) -> tuple[pd.DataFrame, dict[str, list[Any]], list[str | None]]:
    """The runs table (id, name, model, status, started, duration, NDCG@20 of the run's own
    model per horizon), sort keys for the started and duration columns, and row tooltips."""
    keys = {r.id: key_values(metrics[r.id].get(r.model, {})) for r in records}
    key_columns = sorted({c for values in keys.values() for c in values},
                         key=lambda c: (horizon_order(c.split(" ", 1)[1]), _at_k(c)[1]))
    rows, started, durations, tips = [], [], [], []
    for record in records:
        seconds = run_seconds(record)
        rows.append({"id": record.id, "name": record.name, "model": record.model,
                     "status": record.status, "started": local_time(record.started_at),
                     "duration": format_duration(seconds), **keys[record.id]})
        started.append(_utc(record.started_at).timestamp() if record.started_at else None)
        durations.append(seconds)
        tips.append(record.error.strip().splitlines()[-1] if record.error else None)
    header = ["id", "name", "model", "status", "started", "duration", *key_columns]
    frame = _numeric(pd.DataFrame(rows, columns=header), key_columns)
    return frame, {"started": started, "duration": durations}, tips


class RunsView(QWidget):
    """The run store as a sortable, filterable table, with the selected run's details or
    the selected runs compared below it."""

    #: (pipeline TOML, title such as ``"run 12: shop-vae"``): open it in the builder.
    open_pipeline = Signal(str, str)

    def __init__(self, store: RunStore, parent: Any = None) -> None:
        super().__init__(parent)
        self.store = store
        self._records: dict[int, RunRecord] = {}
        self._metrics: dict[int, Metrics] = {}

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name, model or status…")
        self.filter_edit.setClearButtonEnabled(True)
        self.status_combo = QComboBox()
        self.status_combo.addItems(STATUSES)
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: #666;")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Select two or more runs (Ctrl- or Shift-click) to "
                                       "compare their metrics and loss curves")
        self.compare_button.setEnabled(False)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Forget the selected runs and remove the files they "
                                      "wrote (asks first)")
        self.delete_button.setEnabled(False)
        self.refresh_button = QPushButton("Refresh")

        self.model = RunsTableModel(self)
        self.proxy = RunsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setHighlightSections(False)
        self.model.modelReset.connect(self._fit_columns)

        self.details = RunDetails()
        self.comparison = RunComparison()
        self.hint = message_label(NOTHING_SELECTED)
        self.hint_compare = QPushButton("Compare")
        self.hint_compare.hide()
        hint_page = QWidget()
        hint_layout = QVBoxLayout(hint_page)
        hint_layout.addStretch(1)
        hint_layout.addWidget(self.hint)
        hint_layout.addWidget(self.hint_compare, 0, Qt.AlignmentFlag.AlignHCenter)
        hint_layout.addStretch(1)
        self._hint_page = hint_page
        self.pages = QStackedWidget()
        for page in (hint_page, self.details, self.comparison):
            self.pages.addWidget(page)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([260, 520])
        self.placeholder = message_label(EMPTY_STORE)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(splitter)
        self._main = splitter

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 2)
        bar.addWidget(QLabel("Status:"))
        bar.addWidget(self.status_combo)
        bar.addWidget(self.count_label, 1)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.delete_button)
        bar.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

        self.filter_edit.textChanged.connect(self._filter_changed)
        self.status_combo.currentTextChanged.connect(self._status_changed)
        self.compare_button.clicked.connect(self.compare)
        self.hint_compare.clicked.connect(self.compare)
        self.delete_button.clicked.connect(self.delete_selected)
        self.refresh_button.clicked.connect(self.refresh)
        self.details.refresh_button.clicked.connect(self.refresh)
        self.details.open_button.clicked.connect(self._open_pipeline)
        self.comparison.back_button.clicked.connect(self._selection_changed)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.refresh()

    # -- reading the store -----------------------------------------------------------

    def refresh(self) -> None:
        """Reload every run from the store, keeping the selection and what is shown."""
        selected = self.selected_ids()
        comparing = self.pages.currentWidget() is self.comparison
        records = self.store.runs()
        self._records = {r.id: r for r in records}
        self._metrics = {r.id: self.store.metrics(r.id) for r in records}
        frame, keys, tips = runs_frame(records, self._metrics)
        self.model.set_runs(frame, keys, tips)
        self.stack.setCurrentWidget(self._main if records else self.placeholder)
        for widget in (self.filter_edit, self.status_combo):
            widget.setEnabled(bool(records))
        self._select(selected)
        self._update_count()
        if comparing and len(self.selected_ids()) >= 2:
            self.compare()
        else:
            self._selection_changed()

    def selected_ids(self) -> list[int]:
        """The selected runs, in table order."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        return [self.model.run_id(self.proxy.mapToSource(i).row()) for i in rows]

    def select_runs(self, run_ids: Iterable[int]) -> None:
        """Select these runs (those shown), as a user's click would."""
        self._select(list(run_ids))
        self._selection_changed()

    def delete_selected(self) -> None:
        """Delete the selected runs, once the user has agreed to what goes with them
        (their files, and any feedback given on their lists)."""
        ids = self.selected_ids()
        if not ids:
            return
        given = len(self.store.feedback(ids))
        names = ", ".join(f"{i} ({self._records[i].name})" for i in ids[:5]) + (
            " …" if len(ids) > 5 else "")
        text = (f"Delete run{'s' if len(ids) > 1 else ''} {names} from the run store and "
                "remove the files they wrote?")
        if given:
            text += (f"\n\n{given} feedback event(s) given on their lists will be deleted "
                     "too, and no later training will learn from them.")
        if not self.confirm("Delete runs", text):
            return
        problems = []
        for run_id in ids:
            try:
                delete_run(self.store, run_id, with_feedback=True)
            except (PenchantError, OSError) as exc:
                problems.append(f"run {run_id}: {exc}")
        self.refresh()
        if problems:
            self.warn("Some runs were not deleted", "\n".join(problems))

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def compare(self) -> None:
        ids = self.selected_ids()
        if len(ids) < 2:
            return
        paired = paired_users(self.store, *sorted(ids)) if len(ids) == 2 else None
        self.comparison.show_runs([(self._records[i], self._metrics[i], self.store.losses(i))
                                   for i in ids], paired)
        self.pages.setCurrentWidget(self.comparison)

    # -- reacting to the user --------------------------------------------------------

    def _select(self, run_ids: Sequence[int]) -> None:
        wanted = set(run_ids)
        selection = QItemSelection()
        for row in range(self.proxy.rowCount()):
            source = self.proxy.mapToSource(self.proxy.index(row, 0)).row()
            if self.model.run_id(source) in wanted:
                selection.select(self.proxy.index(row, 0),
                                 self.proxy.index(row, self.proxy.columnCount() - 1))
        selections = self.table.selectionModel()
        blocked = selections.blockSignals(True)
        selections.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        selections.blockSignals(blocked)
        self.table.viewport().update()

    def _selection_changed(self, *_: Any) -> None:
        ids = self.selected_ids()
        self.compare_button.setEnabled(len(ids) >= 2)
        self.delete_button.setEnabled(bool(ids))
        if len(ids) == 1:
            run_id = ids[0]
            self.details.show_run(self._records[run_id], self._metrics[run_id],
                                  self.store.losses(run_id), self.store.artifacts(run_id))
            self.pages.setCurrentWidget(self.details)
        else:
            self.hint.setText(NOTHING_SELECTED if not ids else
                              f"{len(ids)} runs selected: compare their metrics and loss "
                              "curves side by side.")
            self.hint_compare.setText(f"Compare {len(ids)} runs")
            self.hint_compare.setVisible(len(ids) >= 2)
            self.pages.setCurrentWidget(self._hint_page)

    def _fit_columns(self) -> None:
        """Columns as wide as their contents; the pipeline name takes the spare width."""
        header = self.table.horizontalHeader()
        self.table.resizeColumnsToContents()
        for column in range(header.count()):
            stretch = self.model.frame.columns[column] == "name"
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch if stretch
                                        else QHeaderView.ResizeMode.Interactive)

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _status_changed(self, status: str) -> None:
        self.proxy.set_status(status)
        self._update_count()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        runs = "run" if total == 1 else "runs"
        self.count_label.setText(f"{total} {runs}" if shown == total
                                 else f"{shown} of {total} {runs} shown")

    def _open_pipeline(self) -> None:
        record = self.details.record
        if record is not None:
            self.open_pipeline.emit(record.pipeline, f"run {record.id}: {record.name}")
