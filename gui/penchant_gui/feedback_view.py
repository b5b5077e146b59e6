"""The feedback view: what shoppers did with runs' recommendations, and acting on it.

Everything goes through the host's feedback API (:mod:`penchant.feedback` to read and
write, :mod:`penchant.feedback_report` for rates, :mod:`penchant.feedback_import` and
:mod:`penchant.replay` to add events), so the app stores feedback exactly as the CLI does.
Imports and replays read files or a run's whole source, so they run off the GUI thread.
:attr:`FeedbackView.retrain_with_feedback` hands the main window a pipeline with
``[feedback] merge = true`` to open in the builder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyqtgraph as pg
import tomlkit
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from penchant import feedback
from penchant.feedback_import import import_file
from penchant.feedback_report import feedback_report
from penchant.replay import replay
from penchant.store import RunStore
from penchant_gui.background import run_in_background
from penchant_gui.frame_model import FrameModel
from penchant_gui.loss_plot import COLOURS
from penchant_gui.widgets import Placeheld, RawSortProxy, frame_table

_Index = QModelIndex | QPersistentModelIndex

ALL_RUNS = "all runs"
ALL_KINDS = "all kinds"
#: Columns of the feedback table, in order.
TABLE_COLUMNS = ("run", "user", "item", "kind", "rank", "time", "note")
#: Chart groupings offered, as (label, ``feedback_report`` grouping).
GROUPINGS = (("by run", "run"), ("by position", "position"), ("by day", "day"))
#: The rates charted, as (report column, legend label).
RATES = (("ctr", "CTR (clicks / impressions)"),
         ("conversion", "conversion (purchases / impressions)"))
BAD_NOTE = "bad recommendation (marked in the app)"
NO_FEEDBACK = ("<h3>No feedback yet</h3><p>Feedback says what shoppers did with a run's "
               "recommendations. <b>Replay run…</b> simulates it from what the run's users "
               "went on to do; <b>Import…</b> reads a CSV or JSON-lines file of events "
               "(run_id, user, item, time, kind, and optionally rank and note).</p>")
FILE_FILTER = "Feedback files (*.csv *.tsv *.jsonl *.ndjson *.json *.gz);;All files (*)"


def feedback_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored feedback (``feedback.read``) as the table shows it: newest first, times in
    UTC without their zone noise, the columns a person reads, the row's id kept aside."""
    times = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(None)
    out = pd.DataFrame({"run": frame["run_id"].astype("int64"),
                        "user": frame["user"].astype(object),
                        "item": frame["item"].astype(object),
                        "kind": frame["kind"].astype(object),
                        "rank": frame["rank"], "time": times,
                        "note": frame["note"].astype(object).where(frame["note"].notna(), "")},
                       columns=list(TABLE_COLUMNS))
    return out.iloc[::-1]


def with_feedback_merge(pipeline_toml: str, run_id: int) -> str:
    """A run's stored pipeline with ``[feedback] merge = true``: comments and order kept
    (tomlkit), other feedback settings left alone. Without ``runs`` every run's feedback is
    merged; a comment says how to take only this run's."""
    doc = tomlkit.parse(pipeline_toml)
    table = doc.get("feedback")
    if table is None:
        table = tomlkit.table()
        table.add(tomlkit.comment("merge stored feedback (clicks, purchases, thumbs, "
                                  "dismissals) into the events"))
        doc.add(tomlkit.nl())
        doc["feedback"] = table
    table["merge"] = True
    if "runs" not in table:
        table.add(tomlkit.comment(f"runs = [{run_id}]  # only this run's feedback; "
                                  "without it, every run's"))
    return tomlkit.dumps(doc)


class FeedbackFilter(RawSortProxy):
    """Keeps the rows of the chosen run and kind whose user, item, kind or note contain
    every word typed."""

    TEXT_COLUMNS = ("user", "item", "kind", "note")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self._run: int | None = None
        self._kind: str | None = None

    def set_text(self, text: str) -> None:
        self.change_rows_filter(lambda: setattr(self, "_words", text.lower().split()))

    def set_run(self, run_id: int | None) -> None:
        self.change_rows_filter(lambda: setattr(self, "_run", run_id))

    def set_kind(self, kind: str | None) -> None:
        self.change_rows_filter(lambda: setattr(self, "_kind", kind))

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        frame = self.sourceModel().frame
        if self._run is not None and int(frame.at[row, "run"]) != self._run:
            return False
        if self._kind is not None and frame.at[row, "kind"] != self._kind:
            return False
        text = " ".join(str(frame.at[row, c]) for c in self.TEXT_COLUMNS).lower()
        return all(word in text for word in self._words)


class FeedbackView(QWidget):
    """Stored feedback as a filterable table, CTR and conversion charts, and the actions
    that add to it (import, replay, marking a bad recommendation) or use it (retrain)."""

    #: (pipeline TOML with ``[feedback] merge = true``, title) for the builder.
    retrain_with_feedback = Signal(str, str)
    #: (succeeded, message) when an import or replay ends; the message is also shown.
    task_finished = Signal(bool, str)

    def __init__(self, store: RunStore, registry: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.store = store
        self.registry = registry
        self.stored = pd.DataFrame()
        self.report = pd.DataFrame()
        #: What the chart draws: ``{report column: (x positions, values)}``.
        self.charted: dict[str, tuple[list[float], list[float]]] = {}
        self._busy = False

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by user, item, kind or note…")
        self.filter_edit.setClearButtonEnabled(True)
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(24)
        self.run_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems([ALL_KINDS, *feedback.KINDS])
        self.count_label = QLabel()
        self.refresh_button = QPushButton("Refresh")

        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Store feedback from a CSV or JSON-lines file")
        self.replay_button = QPushButton("Replay run…")
        self.replay_button.setToolTip("Simulate the chosen run's feedback from what its users "
                                      "went on to do")
        self.mark_button = QPushButton("Mark as bad recommendation")
        self.mark_button.setToolTip("Record a thumbs-down for the selected rows' run, user "
                                    "and item")
        self.retrain_button = QPushButton("Retrain with feedback")
        self.retrain_button.setToolTip("Open the chosen run's pipeline in the builder with "
                                       "[feedback] merge = true")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.model = FrameModel()
        self.proxy = FeedbackFilter(self)
        self.table = frame_table(self.model, proxy=self.proxy)
        self.table_pane = Placeheld(self.table)

        self.group_combo = QComboBox()
        for label, by in GROUPINGS:
            self.group_combo.addItem(label, by)
        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.chart = pg.PlotWidget(title="How the recommendations did")
        self.chart.setLabel("left", "rate")
        self.chart.showGrid(x=False, y=True, alpha=0.2)
        for axis in ("left", "bottom"):  # run ids and positions are not "x0.001"
            self.chart.getAxis(axis).enableAutoSIPrefix(False)
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart_legend = self.chart.addLegend(offset=(-10, 10))
        self.chart_legend.setBrush(pg.mkBrush(255, 255, 255, 215))
        self.report_model = FrameModel()
        self.report_table = frame_table(self.report_model, stretch_last=False)
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setStyleSheet("color: #666;")
        charts = QWidget()
        column = QVBoxLayout(charts)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("CTR and conversion"))
        row.addWidget(self.group_combo)
        row.addStretch(1)
        column.addLayout(row)
        column.addWidget(self.chart, 3)
        column.addWidget(self.notes_label)
        column.addWidget(self.report_table, 2)
        self.chart_pane = Placeheld(charts)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table_pane)
        splitter.addWidget(self.chart_pane)
        splitter.setSizes([700, 600])

        filters = QHBoxLayout()
        filters.addWidget(self.filter_edit, 2)
        filters.addWidget(QLabel("Run:"))
        filters.addWidget(self.run_combo)
        filters.addWidget(QLabel("Kind:"))
        filters.addWidget(self.kind_combo)
        filters.addWidget(self.count_label, 1)
        filters.addWidget(self.refresh_button)
        actions = QHBoxLayout()
        for button in (self.import_button, self.replay_button, self.mark_button,
                       self.retrain_button):
            actions.addWidget(button)
        actions.addWidget(self.status_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(actions)
        layout.addWidget(splitter, 1)

        self.filter_edit.textChanged.connect(self._filter_text)
        self.run_combo.currentIndexChanged.connect(self._run_changed)
        self.kind_combo.currentTextChanged.connect(self._kind_changed)
        self.group_combo.currentIndexChanged.connect(self._draw_chart)
        self.refresh_button.clicked.connect(self.refresh)
        self.import_button.clicked.connect(self._ask_import)
        self.replay_button.clicked.connect(self._ask_replay)
        self.mark_button.clicked.connect(self._ask_mark)
        self.retrain_button.clicked.connect(self.retrain)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.refresh()

    # -- reading the store -------------------------------------------------------------

    def refresh(self) -> None:
        """Read the runs and every stored feedback event again, keeping the filters."""
        chosen = self.chosen_run()
        runs = self.store.runs(status="finished")
        blocked = self.run_combo.blockSignals(True)
        self.run_combo.clear()
        self.run_combo.addItem(ALL_RUNS, None)
        for record in runs:
            self.run_combo.addItem(f"{record.id}: {record.name} ({record.model})", record.id)
        index = self.run_combo.findData(chosen) if chosen is not None else 0
        self.run_combo.setCurrentIndex(max(index, 0))
        self.run_combo.blockSignals(blocked)
        self.proxy.set_run(self.chosen_run())
        self.stored = feedback.read(self.store)
        self.model.set_frame(feedback_table(self.stored))
        if self.stored.empty:
            self.table_pane.show_message(NO_FEEDBACK)
        else:
            self.table_pane.show_content()
        self._draw_chart()
        self._update_count()
        self._update_buttons()

    def chosen_run(self) -> int | None:
        """The run the actions work on: the one picked in the run filter, else that of the
        first selected row."""
        picked = self.run_combo.currentData()
        if picked is not None:
            return int(picked)
        rows = self.selected_rows()
        return int(rows["run"].iloc[0]) if len(rows) else None

    def selected_rows(self) -> pd.DataFrame:
        """The selected rows of the table, as its frame's rows."""
        if not hasattr(self, "table"):
            return pd.DataFrame(columns=list(TABLE_COLUMNS))
        rows = sorted({self.proxy.mapToSource(i).row()
                       for i in self.table.selectionModel().selectedRows()})
        return self.model.frame.iloc[rows]

    # -- actions ---------------------------------------------------------------------------

    def import_path(self, path: str) -> None:
        """Import a feedback file off the GUI thread; the outcome shows when it is done."""
        self._start(f"importing {path}…",
                    lambda: import_file(path, self.store, registry=self.registry),
                    lambda r: (f"imported {r.rows} row(s): {r.recorded.stored} new, "
                               f"{r.recorded.skipped} already stored"
                               + (f"; ignored column(s) {', '.join(r.ignored_columns)}"
                                  if r.ignored_columns else "")))

    def replay_run(self, run_id: int, horizon: str = "30d") -> None:
        """Replay run ``run_id``'s lists over ``horizon`` off the GUI thread."""
        self._start(f"replaying run {run_id} over {horizon}…",
                    lambda: replay(self.store, run_id, horizon, self.registry),
                    lambda r: (f"replayed run {r.run_id} over {r.horizon}: "
                               + ", ".join(f"{n} {k}" for k, n in r.counts.items())
                               + f"; {r.recorded.stored} new, {r.recorded.skipped} "
                               "already stored"))

    def mark_bad(self, note: str = BAD_NOTE) -> int:
        """Record a thumbs-down, with ``note``, for each selected row's (run, user, item)
        that has none yet, so marking twice stores it once. Returns how many were new."""
        rows = self.selected_rows().drop_duplicates(["run", "user", "item"])
        if rows.empty:
            return 0
        down = self.stored[self.stored["kind"] == "thumbs-down"] if len(self.stored) else \
            self.stored
        marked = set(zip(down.get("run_id", []), down.get("user", []), down.get("item", []),
                         strict=True))
        rows = rows[[(int(r.run), str(r.user), str(r.item)) not in marked
                     for r in rows.itertuples()]]
        if rows.empty:
            self._say("already marked as bad")
            return 0
        now = datetime.now(UTC).isoformat()
        raw = pd.DataFrame({"run_id": rows["run"].astype(int).to_numpy(),
                            "user": rows["user"].astype(str).to_numpy(),
                            "item": rows["item"].astype(str).to_numpy(),
                            "rank": rows["rank"].to_numpy(), "time": now,
                            "kind": "thumbs-down", "note": note})
        try:
            checked = feedback.check(raw, "the app", store=self.store)
            result = feedback.record(self.store, checked, "app", self.registry)
        except Exception as exc:  # shown, never raised: the app must keep working
            self._say(f"could not mark: {exc}", error=True)
            return 0
        self.refresh()
        self._say(f"marked {result.stored} recommendation(s) as bad")
        return result.stored

    def retrain(self) -> None:
        """Emit the chosen run's pipeline with ``[feedback] merge = true``."""
        run_id = self.chosen_run()
        if run_id is None:
            return
        record = self.store.run(run_id)
        self.retrain_with_feedback.emit(with_feedback_merge(record.pipeline, run_id),
                                        f"run {run_id}: {record.name} + feedback")

    # -- dialogs ---------------------------------------------------------------------------

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import feedback", "", FILE_FILTER)
        if path:
            self.import_path(path)

    def _ask_replay(self) -> None:
        run_id = self.chosen_run()
        if run_id is None:
            return
        horizon, ok = QInputDialog.getItem(
            self, "Replay run", f"Count what run {run_id}'s users did within this long "
            "after its cutoff:", ["7d", "30d", "90d"], 1, True)
        if ok and horizon.strip():
            self.replay_run(run_id, horizon.strip())

    def _ask_mark(self) -> None:
        note, ok = QInputDialog.getText(self, "Mark as bad recommendation",
                                        "Note stored with the thumbs-down:", text=BAD_NOTE)
        if ok:
            self.mark_bad(note.strip() or BAD_NOTE)

    # -- background work ---------------------------------------------------------------

    def _start(self, doing: str, work: Any, describe: Any) -> None:
        if self._busy:
            return
        self._busy = True
        self._update_buttons()
        self._say(doing)

        def done(result: Any) -> None:
            self._busy = False
            self.refresh()
            message = describe(result)
            self._say(message)
            self.task_finished.emit(True, message)

        def failed(message: str) -> None:
            self._busy = False
            self._update_buttons()
            self._say(message, error=True)
            self.task_finished.emit(False, message)

        run_in_background(work, done, failed, self)

    def _say(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #C0392B;" if error else "color: #333;")
        self.status_label.setText(text)

    # -- filters and chart ---------------------------------------------------------------

    def _filter_text(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _run_changed(self, *_: Any) -> None:
        self.proxy.set_run(self.run_combo.currentData())
        self._update_count()
        self._update_buttons()
        self._draw_chart()

    def _kind_changed(self, kind: str) -> None:
        self.proxy.set_kind(None if kind == ALL_KINDS else kind)
        self._update_count()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        events = "event" if total == 1 else "events"
        self.count_label.setText(f"{total} {events}" if shown == total
                                 else f"{shown} of {total} {events} shown")

    def _update_buttons(self, *_: Any) -> None:
        has_run = self.chosen_run() is not None
        self.import_button.setEnabled(not self._busy)
        self.replay_button.setEnabled(has_run and not self._busy)
        self.retrain_button.setEnabled(has_run)
        self.mark_button.setEnabled(not self.selected_rows().empty)

    def _draw_chart(self, *_: Any) -> None:
        """CTR and conversion per group of the host's report, for the chosen run or all:
        bars for runs and positions, lines for days (a trend)."""
        self.chart.clear()
        self.chart_legend.clear()
        self.charted = {}
        by = self.group_combo.currentData() or "run"
        run = self.run_combo.currentData()
        if self.stored.empty:
            self.report = pd.DataFrame()
            self.report_model.set_frame(self.report)
            self.chart_pane.show_message("CTR and conversion appear here once there is "
                                         "feedback with impressions.")
            return
        report = feedback_report(self.store, None if run is None else [int(run)], by,
                                 self.registry)
        self.report = report.table
        self.report_model.set_frame(report.table)
        self.notes_label.setText("; ".join(report.notes))
        self.notes_label.setVisible(bool(report.notes))
        if report.table.empty or report.table["impressions"].sum() == 0:
            self.chart_pane.show_message("No impressions in this feedback, so no rates: "
                                         "CTR and conversion divide by what was shown. Replay "
                                         "the run to record its impressions.")
            return
        self.chart_pane.show_content()
        if by == "run":
            labels = [f"run {r} ({m})" for r, m in zip(report.table["run"],
                                                       report.table["model"], strict=True)]
        else:
            labels = [str(v) for v in report.table[by]]
        positions = list(range(len(labels)))
        width = 0.8 / len(RATES)
        for i, (column, label) in enumerate(RATES):
            values = [float(v) if pd.notna(v) else 0.0 for v in report.table[column]]
            colour = COLOURS[i]
            if by == "day":
                xs = [float(p) for p in positions]
                self.chart.plot(xs, values, pen=pg.mkPen(colour, width=2), name=label,
                                symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=None)
            else:
                xs = [p - 0.4 + width * (i + 0.5) for p in positions]
                self.chart.addItem(pg.BarGraphItem(x=xs, height=values, width=width * 0.9,
                                                   brush=colour, pen=pg.mkPen(colour),
                                                   name=label))
            self.charted[column] = (xs, values)
        step = max(1, len(labels) // 12)  # days can be many: label every n-th
        self.chart.getAxis("bottom").setTicks([[(p, labels[p]) for p in positions[::step]]])
        self.chart.setLabel("bottom", {"run": "run", "position": "position shown",
                                       "day": "day (UTC)"}[by])
        self.chart.setXRange(-0.6, len(labels) - 0.4, padding=0)
        top = max((max(v) for _, v in self.charted.values() if v), default=0.0)
        self.chart.setYRange(0, (top or 1.0) * 1.35, padding=0)  # room for the legend
