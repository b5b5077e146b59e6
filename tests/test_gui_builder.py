"""The pipeline builder: documents round-trip, forms check as the user types, and the default
pipeline can be built by clicks and typing alone and runs headless with the same metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from penchant.cli import main
from penchant.pipeline import build_pipeline, load_pipeline
from penchant.plugins import Registry
from penchant_gui.builder import PipelineBuilder
from penchant_gui.document import PipelineDocument, Slot, problems_by_field

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "resources" / "pipelines" / "default.toml"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


@pytest.fixture
def builder(qtbot, registry) -> PipelineBuilder:
    widget = PipelineBuilder(registry)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    return widget


def type_into(qtbot, field, text: str, key: str | None = None) -> None:
    """Select the field's text and type over it, as a user would."""
    editors = field.findChildren(QLineEdit)
    line = editors[0] if key is None else dict(zip(field.param.keys, editors,
                                                   strict=False))[key]
    line.selectAll()
    qtbot.keyClicks(line, text)


def test_a_hand_written_file_round_trips_byte_for_byte(tmp_path) -> None:
    document = PipelineDocument.open(DEFAULT)
    saved = document.save(tmp_path / "copy.toml")
    assert saved.read_text() == DEFAULT.read_text()
    document.set_value(Slot("model"), "epochs", 5)
    text = document.save().read_text()
    assert "epochs = 5" in text and "# A purchase says more" in text
    changed = [a for a, b in zip(text.splitlines(), DEFAULT.read_text().splitlines(),
                                 strict=True) if a != b]
    assert changed == ["epochs = 5"]


def test_problems_are_tied_to_their_table_and_key() -> None:
    found = problems_by_field([
        "p.toml [model] key 'epochs': expected an integer, got 'many'",
        "p.toml [preprocess[1]] key 'columns': unknown table",
        "p.toml: [features] is missing; it needs at least plugin = …"])
    assert found[("model", "epochs")] == ["expected an integer, got 'many'"]
    assert ("preprocess[1]", "columns") in found and ("features", None) in found


def test_a_malformed_file_shows_its_error_on_the_field(builder, tmp_path) -> None:
    bad = DEFAULT.read_text().replace("epochs = 60", 'epochs = "many"')
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    builder.set_document(PipelineDocument.open(path))
    assert any("key 'epochs'" in p for p in builder.problems)
    builder.select(Slot("model"))
    field = builder.form.fields["epochs"]
    assert "expected an integer" in field.error_text
    assert builder.stages.currentItem().foreground(0).color().name() == "#b00020"
    assert builder.form.fields["batch_size"].error_text == ""


def test_fields_check_as_the_user_types_and_write_only_valid_values(builder, qtbot) -> None:
    builder.select(Slot("evaluation"))
    horizons = builder.form.fields["horizons"]
    type_into(qtbot, horizons, '["7d", "forever"]')
    assert "not a duration" in horizons.error_text
    assert builder.document.value(Slot("evaluation"), "horizons") is None
    type_into(qtbot, horizons, '["7d", "30d"]')
    assert horizons.error_text == ""
    assert builder.document.value(Slot("evaluation"), "horizons") == ["7d", "30d"]


def test_secrets_are_stored_as_environment_references(builder, qtbot) -> None:
    builder.choose("sql", "source")
    builder.add_chosen()
    url = builder.form.fields["url"]
    type_into(qtbot, url, "SHOP_DB_URL")
    assert builder.document.value(Slot("source"), "url") == "${env:SHOP_DB_URL}"
    type_into(qtbot, url, "not a name!")
    assert "environment variable" in url.error_text


def test_components_are_added_reordered_and_removed(builder) -> None:
    for name in ("dedup", "k-core", "drop-malformed"):
        builder.choose(name, "preprocessor")
        builder.add_chosen()
    assert [t["plugin"] for t in builder.document.tables("preprocess")] == [
        "dedup", "k-core", "drop-malformed"]
    builder.select(Slot("preprocess", 2))
    builder.up_button.click()
    assert [t["plugin"] for t in builder.document.tables("preprocess")] == [
        "dedup", "drop-malformed", "k-core"]
    builder.stages.reordered.emit(Slot("preprocess", 0), 2)  # a drag to the end
    assert [t["plugin"] for t in builder.document.tables("preprocess")] == [
        "k-core", "drop-malformed", "dedup"]
    builder.select(Slot("preprocess", 0))
    builder.remove_button.click()
    assert [t["plugin"] for t in builder.document.tables("preprocess")] == [
        "drop-malformed", "dedup"]
    builder.stages.dropped.emit("model", "ease")  # a drop from the palette
    assert builder.document.plugin(Slot("model")) == "ease"


def build_default_by_hand(builder: PipelineBuilder, qtbot) -> None:
    """The default pipeline, from an empty document, by clicks and typing only."""
    builder.set_document(PipelineDocument(""))
    shop = "../demo-shop"

    def add(name: str, kind: str) -> None:
        builder.choose(name, kind)
        qtbot.mouseClick(builder.add_button, Qt.MouseButton.LeftButton)

    def field(name: str):
        return builder.form.fields[name]

    builder.select(Slot("pipeline"))
    type_into(qtbot, field("name"), "demo-shop")
    add("csv", "source")
    type_into(qtbot, field("path"), f"{shop}/events.csv.gz")
    for key, column in (("user", "user_id"), ("item", "item_id"), ("time", "timestamp"),
                        ("event", "event_type")):
        type_into(qtbot, field("columns"), column, key)
    for table, column in (("items", "item_id"), ("users", "user_id")):
        type_into(qtbot, field(table), f"{shop}/{table}.csv", "path")
        type_into(qtbot, field(table), column, "id")
    add("drop-malformed", "preprocessor")
    add("dedup", "preprocessor")
    add("fill-missing", "preprocessor")
    type_into(qtbot, field("columns"), '{ "items.price" = "median", "users.age" = "median" }')
    add("interactions", "features")
    type_into(qtbot, field("weights"), "{ view = 1.0, cart = 2.0, purchase = 4.0 }")
    field("reduce").editor.setCurrentText("max")
    type_into(qtbot, field("half_life"), "60d")
    add("vae", "model")
    for name, value in (("epochs", 60), ("batch_size", 128), ("patience", 10)):
        spin = field(name).editor
        assert isinstance(spin, QSpinBox)
        spin.setValue(value)
    add("hybrid", "recommender")
    box = field("exclude_seen").editor
    assert isinstance(box, QCheckBox)
    box.setChecked(False)
    box.setChecked(True)
    builder.select(Slot("evaluation"))
    type_into(qtbot, field("baselines"), '["popularity", "recent-popularity", "ease"]')
    qtbot.waitUntil(lambda: builder.problems == [], timeout=3000)


def test_the_default_pipeline_built_by_hand_is_the_default(builder, qtbot, registry,
                                                           tmp_path) -> None:
    build_default_by_hand(builder, qtbot)
    path = DEFAULT.parent / ".gui-built-test.toml"  # relative paths resolve as the default's
    try:
        builder.document.save(path)
        built = load_pipeline(path, registry).resolved_doc(registry)
        default = load_pipeline(DEFAULT, registry).resolved_doc(registry)
        assert built == default
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.slow
def test_the_built_pipeline_runs_headless_with_the_same_metrics(builder, qtbot, registry,
                                                                tmp_path) -> None:
    build_default_by_hand(builder, qtbot)
    path = DEFAULT.parent / ".gui-built-slow-test.toml"
    quick = ["--set", "model.epochs=2", "--set", "model.hidden=32", "--set",
             "evaluation.baselines=[\"popularity\"]"]
    try:
        builder.document.save(path)
        store = f"sqlite:///{tmp_path / 'runs.sqlite'}"
        for name, file in (("gui", path), ("default", DEFAULT)):
            assert main(["--store", store, "run", str(file), "--out", str(tmp_path / name),
                         *quick]) == 0
    finally:
        path.unlink(missing_ok=True)
    gui, default = ((tmp_path / n / "metrics.json").read_text() for n in ("gui", "default"))
    assert gui == default


def test_picking_another_component_keeps_the_values_it_shares(builder, registry) -> None:
    builder.set_document(PipelineDocument.open(DEFAULT))
    builder.select(Slot("model"))
    combo: QComboBox = builder.plugin_choice
    combo.setCurrentText("dae")
    combo.activated.emit(combo.currentIndex())
    assert builder.document.plugin(Slot("model")) == "dae"
    assert builder.document.value(Slot("model"), "epochs") == 60
    assert build_pipeline(builder.document.plain(), registry, DEFAULT)
