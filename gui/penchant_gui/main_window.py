"""The main window: a navigation list on the left, one page per task, the usual menus.

Pages: Pipeline (the builder over its data preview), Training, Runs, Results, Users,
Feedback and Plugins. The window
remembers its size, layout, page and recent pipelines between sessions (QSettings), and the
status bar says which device training will use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from penchant.errors import PenchantError
from penchant.pipeline import Pipeline
from penchant.plugins import Registry
from penchant.store import RunStore
from penchant_gui.builder import PipelineBuilder
from penchant_gui.document import PipelineDocument
from penchant_gui.feedback_view import FeedbackView
from penchant_gui.plugins_view import PluginsView
from penchant_gui.preview import DataPreview
from penchant_gui.results_view import ResultsView
from penchant_gui.runs_view import RunsView
from penchant_gui.training_view import TrainingView
from penchant_gui.users_view import UsersView

PAGES = ("Pipeline", "Training", "Runs", "Results", "Users", "Feedback", "Plugins")
RECENT = 8
FILTER = "Pipelines (*.toml);;All files (*)"


def device_description() -> str:
    """What ``device = "auto"`` will pick, for the status bar."""
    import torch

    if torch.cuda.is_available():
        return f"Device: cuda:0 ({torch.cuda.get_device_name(0)})"
    return "Device: CPU (no CUDA GPU found)"


class MainWindow(QMainWindow):
    def __init__(self, registry: Registry, store: RunStore,
                 settings: QSettings | None = None) -> None:
        super().__init__()
        self.registry, self.store = registry, store
        #: The text of the last error shown in a dialog (what tests read).
        self.last_error = ""
        self.settings = settings or QSettings("Penchant", "Penchant")
        self.builder = PipelineBuilder(registry)
        self.preview = DataPreview(registry, self.current_pipeline)
        self.training = TrainingView(registry, store)
        self.training.pipeline_provider = self.current_pipeline
        self.runs = RunsView(store)
        self.results = ResultsView(store)
        self.users = UsersView(store, registry=registry)
        self.feedback = FeedbackView(store, registry)
        self.plugins = PluginsView(registry)
        self.training.run_ended.connect(lambda *_: self._runs_changed())
        self.feedback.task_finished.connect(lambda *_: self.runs.refresh())
        self.runs.open_pipeline.connect(self.open_text)
        self.feedback.retrain_with_feedback.connect(self.open_text)
        self.builder.document.changed.connect(self._update_title)

        pipeline_page = QSplitter(Qt.Orientation.Vertical)
        pipeline_page.addWidget(self.builder)
        pipeline_page.addWidget(self.preview)
        pipeline_page.setSizes([560, 240])
        self.pages = QStackedWidget()
        for page in (pipeline_page, self.training, self.runs, self.results, self.users,
                     self.feedback, self.plugins):
            self.pages.addWidget(page)
        self.nav = QListWidget()
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(120)
        self.nav.setSpacing(3)
        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        body = QWidget()
        row = QHBoxLayout(body)
        row.setContentsMargins(4, 4, 4, 0)
        row.addWidget(self.nav)
        row.addWidget(self.pages, 1)
        self.setCentralWidget(body)
        self.file_label = QLabel()
        self.statusBar().addPermanentWidget(QLabel(device_description()))
        self.statusBar().addWidget(self.file_label)
        self._menus()
        self._restore()
        self._update_title()

    # -- menus ---------------------------------------------------------------------------

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New", QKeySequence.StandardKey.New, self.new)
        self._action(file_menu, "&Open…", QKeySequence.StandardKey.Open, self.open_dialog)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._action(file_menu, "&Save", QKeySequence.StandardKey.Save, self.save)
        self._action(file_menu, "Save &As…", QKeySequence.StandardKey.SaveAs, self.save_as)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        run_menu = self.menuBar().addMenu("&Run")
        self.run_action = self._action(run_menu, "&Run", QKeySequence("Ctrl+R"), self.run)
        self.stop_action = self._action(run_menu, "&Stop", QKeySequence("Ctrl+."),
                                        self.training.stop)
        self.backtest_action = self._action(run_menu, "&Backtest", QKeySequence("Ctrl+B"),
                                            self.backtest)
        view_menu = self.menuBar().addMenu("&View")
        for i, name in enumerate(PAGES):
            self._action(view_menu, name, QKeySequence(f"Ctrl+{i + 1}"),
                         lambda i=i: self.nav.setCurrentRow(i))
        self._fill_recent()

    def _action(self, menu: Any, text: str, keys: Any, slot: Any) -> QAction:
        action = QAction(text, self)
        action.setShortcut(keys)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.recent_files()
        for path in paths:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda *_, p=path: self.open_path(Path(p)))
        self.recent_menu.setEnabled(bool(paths))

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember(self, path: Path) -> None:
        paths = [str(path.resolve())] + [p for p in self.recent_files()
                                         if p != str(path.resolve())]
        self.settings.setValue("recent", paths[:RECENT])
        self._fill_recent()

    # -- files ---------------------------------------------------------------------------

    def new(self) -> None:
        if self.confirm_discard():
            self._use(PipelineDocument())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open pipeline", "", FILTER)
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path) -> bool:
        if not self.confirm_discard():
            return False
        try:
            document = PipelineDocument.open(path)
        except PenchantError as exc:
            self.show_error("Cannot open the pipeline", str(exc))
            return False
        self._use(document)
        self._remember(path)
        self.nav.setCurrentRow(0)
        return True

    def open_text(self, text: str, title: str) -> None:
        """A stored run's pipeline, opened as a new unsaved document."""
        if self.confirm_discard():
            self._use(PipelineDocument(text))
            self.statusBar().showMessage(f"opened the pipeline of {title}", 5000)
            self.nav.setCurrentRow(0)

    def save(self) -> bool:
        if self.builder.document.path is None:
            return self.save_as()
        return self._save(self.builder.document.path)

    def save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save pipeline as", "pipeline.toml",
                                              FILTER)
        return self._save(Path(path)) if path else False

    def _save(self, path: Path) -> bool:
        try:
            saved = self.builder.document.save(path)
        except OSError as exc:
            self.show_error("Cannot save the pipeline", f"{path}: {exc.strerror}")
            return False
        self._remember(saved)
        self.statusBar().showMessage(f"saved {saved}", 5000)
        return True

    def _use(self, document: PipelineDocument) -> None:
        self.builder.set_document(document)
        document.changed.connect(self._update_title)
        self._update_title()

    def confirm_discard(self) -> bool:
        """Unsaved edits: ask whether to save them first."""
        if not self.builder.document.dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", "Save the changes to this pipeline first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _update_title(self) -> None:
        document = self.builder.document
        name = document.path.name if document.path else "untitled pipeline"
        self.setWindowTitle(f"{name}{' *' if document.dirty else ''} — Penchant")
        self.file_label.setText(str(document.path) if document.path else "not saved yet")

    # -- running -------------------------------------------------------------------------

    def current_pipeline(self) -> Pipeline | None:
        """The builder's pipeline as the runner takes it, or None while it has problems."""
        try:
            return self.builder.document.build(self.registry)
        except PenchantError:
            return None

    def run(self) -> None:
        pipeline = self._runnable()
        if pipeline is not None:
            self.training.start(pipeline)

    def backtest(self) -> None:
        """The backtest from the cutoffs typed on the Training page."""
        pipeline = self._runnable()
        if pipeline is not None:
            self.training.backtest(pipeline)

    def _runnable(self) -> Pipeline | None:
        """The pipeline to run, on the Training page; None while a run goes (the page
        shows it) or while the pipeline has problems (shown, on the Pipeline page)."""
        if self.training.running:
            self.nav.setCurrentRow(PAGES.index("Training"))
            return None
        pipeline = self.current_pipeline()
        if pipeline is None:
            self.nav.setCurrentRow(0)
            self.show_error("The pipeline cannot run yet",
                            "\n".join(self.builder.document.problems(self.registry)))
            return None
        self.nav.setCurrentRow(PAGES.index("Training"))
        return pipeline

    def _runs_changed(self) -> None:
        """A run ended: every view of the store shows it."""
        for view in (self.runs, self.results, self.users, self.feedback):
            view.refresh()

    def show_error(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=self)
        box.open()
        self.last_error = text

    # -- state ---------------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = self.settings.value("state")
        if state is not None:
            self.restoreState(state)
        self.nav.setCurrentRow(int(self.settings.value("page", 0)))

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training.running or not self.confirm_discard():
            if self.training.running:
                self.show_error("A run is in progress", "Stop it before closing Penchant.")
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("page", self.nav.currentRow())
        event.accept()

