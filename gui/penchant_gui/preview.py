"""The data preview: the first rows after the column mapping and after each preprocessing
step, with row and dropped-row counts, computed off the GUI thread by the host's
:func:`penchant.probe.preview_steps` (the same probe ``penchant sources test`` prints)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from penchant.pipeline import Pipeline
from penchant.plugins import Registry
from penchant.probe import PreviewStep, preview_steps
from penchant_gui.background import run_in_background
from penchant_gui.frame_model import FrameModel

SAMPLE = 5000


class DataPreview(QWidget):
    """``pipeline_provider`` gives the pipeline to preview (None when it has problems)."""

    finished = Signal()

    def __init__(self, registry: Registry, pipeline_provider: Callable[[], Pipeline | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry, self.pipeline_provider = registry, pipeline_provider
        self.steps: list[PreviewStep] = []
        self.button = QPushButton(f"Preview the first {SAMPLE:,} events")
        self.button.clicked.connect(self.refresh)
        self.status = QLabel("Shows rows after the column mapping and after each "
                             "preprocessing step.")
        self.step_list = QListWidget()
        self.step_list.setWordWrap(True)
        self.step_list.currentRowChanged.connect(self._show_step)
        self.model = FrameModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.horizontalHeader().setStretchLastSection(True)
        top = QHBoxLayout()
        top.addWidget(self.button)
        top.addWidget(self.status, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.step_list)
        split.addWidget(self.table)
        split.setSizes([260, 700])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    def refresh(self) -> None:
        pipeline = self.pipeline_provider()
        if pipeline is None:
            self.status.setText("Fix the pipeline's problems first.")
            return
        self.button.setEnabled(False)
        self.status.setText("Reading…")
        run_in_background(lambda: preview_steps(pipeline, self.registry, sample=SAMPLE),
                          self._done, self._failed, self)

    def _done(self, steps: list[PreviewStep]) -> None:
        self.steps = steps
        self.step_list.clear()
        for step in steps:
            text = f"{step.label}\n{step.rows:,} rows, {step.dropped:,} dropped"
            self.step_list.addItem(text + (f"\n⚠ {step.error}" if step.error else ""))
        self.step_list.setCurrentRow(len(steps) - 1)
        self.status.setText(f"{len(steps)} step(s) on a sample of up to {SAMPLE:,} events.")
        self.button.setEnabled(True)
        self.finished.emit()

    def _failed(self, message: str) -> None:
        self.steps = []
        self.step_list.clear()
        self.model.set_frame(self.model.frame.iloc[0:0])
        self.status.setText(message)
        self.button.setEnabled(True)
        self.finished.emit()

    def _show_step(self, row: int) -> None:
        """A step's rows; for a step that failed, the rows it was given."""
        while 0 < row < len(self.steps) and self.steps[row].error:
            row -= 1
        if 0 <= row < len(self.steps):
            self.model.set_frame(self.steps[row].head)
            self.table.resizeColumnsToContents()
