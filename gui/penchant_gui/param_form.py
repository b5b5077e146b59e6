"""A form for one component, generated from its parameter schema (:class:`penchant.Param`).

Each parameter gets the editor its type calls for: spin boxes with the declared range,
check boxes, choice lists, file pickers, a field per key for tables such as the column
mapping, and, for secrets, the name of an environment variable (stored as ``${env:NAME}``,
never the value). Every edit is checked by the parameter itself as the user types; the
error shows under the field and nothing invalid is written to the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import tomlkit
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from penchant.params import Param
from penchant.pipeline import parse_value

_ENV = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT_LIMIT = 2_000_000_000
ERROR_STYLE = "color: #b00020;"


class Field(QWidget):
    """One parameter: its editor, a reset-to-default button and an error line.

    ``commit`` is called with the converted value (or None to fall back to the default)
    whenever the user changes something valid.
    """

    edited = Signal()

    def __init__(self, param: Param, value: Any, commit: Callable[[Any], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param, self._commit = param, commit
        #: The editor's own check failed: the pipeline check must not clear that message.
        self.own_error = False
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        self.editor = self._make_editor(value)
        reset = QToolButton()
        reset.setText("↺")
        reset.setToolTip(f"use the default ({param.default!r})" if param.default is not None
                         else "leave unset")
        reset.clicked.connect(self.reset)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.editor, 1)
        row.addWidget(reset)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.error)
        self.setToolTip(param.describe())
        if value is not None and not _ENV.match(str(value)) and not param.secret:
            self.check(value, commit=False)

    # -- editors -------------------------------------------------------------------------

    def _make_editor(self, value: Any) -> QWidget:
        p = self.param
        shown = p.default if value is None else value
        if p.secret:
            return self._secret_editor(value)
        if p.type == "bool":
            box = QCheckBox()
            box.setChecked(bool(shown))
            box.toggled.connect(lambda on: self.check(on))
            return box
        if p.choices is not None and p.type != "list":
            combo = QComboBox()
            combo.addItems([str(c) for c in p.choices])
            if shown in p.choices:
                combo.setCurrentIndex(list(p.choices).index(shown))
            combo.currentIndexChanged.connect(lambda i: self.check(p.choices[i]))
            return combo
        if p.type == "int" and _plain_number(value):
            spin = QSpinBox()
            spin.setRange(int(p.min) if p.min is not None else -_INT_LIMIT,
                          int(p.max) if p.max is not None else _INT_LIMIT)
            spin.setValue(int(shown) if shown is not None else 0)
            spin.valueChanged.connect(lambda v: self.check(v))
            return spin
        if p.type == "float" and _plain_number(value):
            spin = _FloatBox()
            spin.setDecimals(6)
            spin.setRange(p.min if p.min is not None else -1e12,
                          p.max if p.max is not None else 1e12)
            spin.setValue(float(shown) if shown is not None else 0.0)
            spin.valueChanged.connect(lambda v: self.check(v))
            return spin
        if p.type == "table" and p.keys:
            return self._table_editor(value if isinstance(value, dict) else {})
        line = QLineEdit(_as_text(shown) if shown is not None else "")
        line.setPlaceholderText(_placeholder(p))
        line.textEdited.connect(lambda text: self.check_text(text))
        if p.type == "path":
            return _with_button(line, "Browse…", lambda: self._browse(line))
        return line

    def _secret_editor(self, value: Any) -> QWidget:
        """The name of the environment variable, never the secret itself."""
        name = QLineEdit()
        name.setPlaceholderText("environment variable, e.g. SHOP_DB_URL")
        match = _ENV.match(str(value)) if value is not None else None
        if match:
            name.setText(match.group(1))
        elif value:
            name.setEchoMode(QLineEdit.EchoMode.Password)
            name.setText(str(value))
            self._show("the file holds this secret as plain text: name an environment "
                       "variable instead, and it will be written as ${env:NAME}")
        name.textEdited.connect(self._secret_edited)
        return _with_button(name, "${env:…}", None)

    def _secret_edited(self, text: str) -> None:
        text = text.strip()
        editor = self.editor.findChild(QLineEdit)
        editor.setEchoMode(QLineEdit.EchoMode.Normal)
        if not text:
            self._commit(None)
            self._show(None)
        elif _ENV_NAME.match(text):
            self._commit(f"${{env:{text}}}")
            self._show(None)
        else:
            self._show("letters, digits and _ only: the name of an environment variable")
        self.edited.emit()

    def _table_editor(self, value: dict[str, Any]) -> QWidget:
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        self._keys: dict[str, QLineEdit] = {}
        for key in self.param.keys or ():
            line = QLineEdit(_as_text(value[key]) if key in value else "")
            line.setPlaceholderText("(not mapped)")
            line.textEdited.connect(lambda _text: self._table_edited())
            form.addRow(key, line)
            self._keys[key] = line
        return box

    def _table_edited(self) -> None:
        value = {k: parse_value(w.text().strip()) if self.param.items != "str"
                 else w.text().strip() for k, w in self._keys.items() if w.text().strip()}
        self.check(value or None)

    def _browse(self, line: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Choose {self.param.name}", line.text())
        if path:
            line.setText(path)
            self.check_text(path)

    # -- checking ------------------------------------------------------------------------

    def check_text(self, text: str) -> None:
        """Typed text: empty means the default, an env reference is kept as written,
        anything else is read as TOML where the type wants it (lists, tables, numbers)."""
        text = text.strip()
        if not text:
            self.check(None)
        elif _ENV.match(text) or self.param.type in ("str", "path", "duration", "date"):
            self.check(text)
        else:
            self.check(parse_value(text))

    def check(self, value: Any, commit: bool = True) -> bool:
        if value is not None and not (isinstance(value, str) and _ENV.match(value)):
            try:
                value = self.param.convert(value)
            except ValueError as exc:
                self._show(str(exc))
                self.own_error = True
                return False
        self.own_error = False
        self._show(None)
        if commit:
            self._commit(value)
            self.edited.emit()
        return True

    def reset(self) -> None:
        self.own_error = False
        self._commit(None)
        self._show(None)
        self.edited.emit()

    def show_problems(self, messages: Sequence[str]) -> None:
        """Errors the whole-pipeline check found for this key; the editor's own message,
        about what was just typed, comes first."""
        if not self.own_error:
            self._show("; ".join(messages) or None)

    def _show(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    @property
    def error_text(self) -> str:
        return self.error.text() if self.error.isVisibleTo(self) else ""


class ParamForm(QWidget):
    """Fields for ``params``, reading from and writing to ``get``/``put`` (the document)."""

    edited = Signal()

    def __init__(self, title: str, description: str, params: Sequence[Param],
                 get: Callable[[str], Any], put: Callable[[str, Any], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        heading = QLabel(f"<b>{title}</b>")
        layout.addWidget(heading)
        if description:
            about = QLabel(description)
            about.setWordWrap(True)
            about.setStyleSheet("color: #555;")
            layout.addWidget(about)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.fields: dict[str, Field] = {}
        for param in params:
            field = Field(param, get(param.name),
                          lambda value, name=param.name: put(name, value))
            field.edited.connect(self.edited)
            label = QLabel(param.name + (" *" if param.required else ""))
            label.setToolTip(param.help)
            form.addRow(label, field)
            self.fields[param.name] = field
        layout.addLayout(form)
        layout.addStretch(1)

    def show_problems(self, by_key: dict[str | None, list[str]]) -> list[str]:
        """Put each problem on its field (clearing fields that have none); returns those
        that name no field here."""
        for key, field in self.fields.items():
            field.show_problems(by_key.get(key, []))
        return [m for key, messages in by_key.items() if key not in self.fields
                for m in messages]


class _FloatBox(QDoubleSpinBox):
    """A float box that shows 0.001 as 0.001, not 0.001000: six decimals of precision, only
    the significant ones on screen."""

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"


def _plain_number(value: Any) -> bool:
    """A spin box can show it: absent, or a number (not an env reference or bad text)."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _as_text(value: Any) -> str:
    """A value as the user would type it: text bare, anything else as inline TOML."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string().strip()
    return tomlkit.item(value).as_string().strip()


def _placeholder(param: Param) -> str:
    examples = {"duration": "e.g. 30d", "timepoint": "0.8 or 2024-06-01",
                "date": "e.g. 2024-06-01", "list": "e.g. [\"a\", \"b\"]",
                "table": "e.g. { key = \"value\" }", "path": "a file"}
    default = f"default {_as_text(param.default)}" if param.default is not None else ""
    return default or examples.get(param.type, "")


def _with_button(line: QLineEdit, text: str, action: Callable[[], None] | None) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(line, 1)
    if action is None:
        tag = QLabel(text)
        tag.setStyleSheet("color: #555;")
        row.addWidget(tag)
    else:
        button = QPushButton(text)
        button.clicked.connect(action)
        row.addWidget(button)
    return box
