"""The plugins view: installed components, their parameters, and plugins that failed."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

import penchant
from penchant.plugins import Registry
from penchant_gui.plugins_view import PluginsView, param_allowed, param_default

pytestmark = pytest.mark.gui


class BrokenSource:
    """A plugin whose registration hook raises, as one with a missing driver would."""

    __name__ = "shopdb-plugin"

    @penchant.hookimpl
    def penchant_register_sources(self) -> list:
        raise RuntimeError("database driver missing")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


def shown(view: PluginsView, name: str) -> list[str]:
    index = list(view.model.frame.columns).index(name)
    return [view.proxy.index(row, index).data() for row in range(view.proxy.rowCount())]


def test_builtin_components_are_listed(qtbot, registry: Registry) -> None:
    view = PluginsView(registry)
    qtbot.addWidget(view)
    names = shown(view, "name")
    assert {"vae", "csv", "sql", "dedup", "top-k"} <= set(names)
    frame = view.model.frame.set_index("name")
    assert frame.loc["vae", "kind"] == "model"
    assert frame.loc["csv", "package"] == "penchant"
    assert frame.loc["csv", "version"] == registry.components["source"]["csv"].version
    assert "No plugin failed to load" in view.problems.toPlainText()
    view.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert shown(view, "name") == sorted(names)


def test_filter_and_kind(qtbot, registry: Registry) -> None:
    view = PluginsView(registry)
    qtbot.addWidget(view)
    view.filter_edit.setText("sql")
    assert "sql" in shown(view, "name") and "vae" not in shown(view, "name")
    view.filter_edit.setText("autoencoder")  # descriptions count too
    assert set(shown(view, "kind")) == {"model"}
    view.filter_edit.clear()
    view.kind_combo.setCurrentText("source")
    assert set(shown(view, "name")) == {"csv", "sql", "mongodb", "parquet"}
    assert "of" in view.count_label.text()


def test_selecting_a_component_shows_its_parameters(qtbot, registry: Registry) -> None:
    view = PluginsView(registry)
    qtbot.addWidget(view)
    assert not view.details_pane.showing_content
    assert view.select("model", "vae")
    assert view.details_pane.showing_content
    params = view.details.params_model.frame.set_index("name")
    epochs = next(p for p in registry.components["model"]["vae"].cls.schema()
                  if p.name == "epochs")
    assert params.loc["epochs", "type"] == "int"
    assert params.loc["epochs", "default"] == str(epochs.default)
    assert params.loc["epochs", "help"] == epochs.help
    assert params.loc["epochs", "allowed"].startswith("1 – ")
    assert "vae" in view.details.title.text()
    view.select("source", "csv")
    params = view.details.params_model.frame.set_index("name")
    assert params.loc["path", "default"] == "required"
    assert params.loc["on_error", "allowed"] == 'one of "stop", "drop"'
    view.select("model", "popularity")
    assert "takes no parameters" in view.details.params_pane.message.text()


def test_param_cells_read_like_a_pipeline_file() -> None:
    assert param_default(penchant.Param("lr", "float", 1e-5)) == "1e-05"
    assert param_default(penchant.Param("on", "bool", True)) == "true"
    assert param_allowed(penchant.Param("p", "float", 0.5, min=0, max=1)) == "0 – 1"
    assert param_allowed(penchant.Param("n", "int", 1, min=1)) == "≥ 1"


def test_a_failing_plugin_shows_its_error(qtbot, registry: Registry) -> None:
    broken = Registry(plugins=[BrokenSource()])
    view = PluginsView(registry)
    qtbot.addWidget(view)
    view.select("model", "vae")
    view.refresh(broken)
    text = view.problems.toPlainText()
    assert "1 plugin problem" in text
    assert "shopdb-plugin" in text and "RuntimeError: database driver missing" in text
    assert "csv" in shown(view, "name"), "the other plugins still work"
    assert view.selected() is not None and view.selected().name == "vae"


def test_plugins_left_out_on_purpose_are_listed(qtbot, registry: Registry,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENCHANT_PLUGINS", "penchant:models")
    view = PluginsView(Registry())
    qtbot.addWidget(view)
    assert set(shown(view, "kind")) == {"model"}
    assert "Left out by PENCHANT_PLUGINS: penchant:" in view.problems.toPlainText()
