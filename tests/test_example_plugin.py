"""The example external plugin in resources/plugin-template, installed like any other:
found through its entry point, passing its own tests, and carrying a whole run with its
own source and model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "resources" / "plugin-template"

pytestmark = pytest.mark.slow


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def installed():
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-e", str(TEMPLATE)])
    yield
    _run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "penchant-example-shop"])


def test_the_host_lists_both_components(installed) -> None:
    listing = _run([sys.executable, "-m", "penchant.cli", "plugins", "list", "--verbose"]).stdout
    assert "orders-json" in listing and "repeat-buy" in listing
    assert "penchant-example-shop:example_shop" in listing
    assert "penchant_register_models, penchant_register_sources" in listing


def test_its_own_tests_pass(installed) -> None:
    _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE)],
         cwd=TEMPLATE)


def test_a_whole_run_with_its_source_and_model(installed, shop, tmp_path) -> None:
    events = pd.read_csv(shop / "events.csv.gz", dtype={"user_id": str, "item_id": str})
    bought = events[events["event_type"] == "purchase"]
    with (tmp_path / "orders.jsonl").open("w") as fh:
        for (user, ts), group in bought.groupby(["user_id", "timestamp"]):
            fh.write(json.dumps({"customer": user, "created_at": int(ts),
                                 "line_items": [{"product": p} for p in group["item_id"]]})
                     + "\n")
    (tmp_path / "repeat.toml").write_text("""
[source]
plugin = "orders-json"
path = "orders.jsonl"
columns = { user = "customer", item = "product", time = "created_at" }

[[features]]
plugin = "interactions"

[model]
plugin = "repeat-buy"

[recommender]
plugin = "top-k"
exclude_seen = false

[evaluation]
horizons = ["30d", "90d"]
k = [10]
baselines = ["popularity"]
""")
    env = {**os.environ, "PENCHANT_HOME": str(tmp_path / "home")}
    _run([sys.executable, "-m", "penchant.cli", "run", str(tmp_path / "repeat.toml"),
          "--out", str(tmp_path / "out")], env=env)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["results"]) == {"repeat-buy", "popularity"}
    assert metrics["results"]["repeat-buy"]["90d"]["users"] > 0


APP_CHECK = """
from penchant.plugins import Registry
from penchant_gui.builder import PipelineBuilder
from penchant_gui.plugins_view import PluginsView
from PySide6.QtWidgets import QApplication

app = QApplication([])
registry = Registry()
rows = PluginsView(registry).model.frame.set_index("name")
print("package", rows.loc["repeat-buy", "package"])
print("kind", rows.loc["orders-json", "kind"])
builder = PipelineBuilder(registry)
builder.choose("repeat-buy", "model")
builder.add_chosen()
wanted = {p.name for p in registry.get("model", "repeat-buy").params}
print("form", sorted(wanted - set(builder.form.fields)) or "complete")
"""


@pytest.mark.gui
def test_the_app_lists_it_and_offers_it_in_the_palette(installed) -> None:
    """A new process, as the app is: an editable install is seen from the next start."""
    out = _run([sys.executable, "-c", APP_CHECK],
               env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}).stdout
    assert "package penchant-example-shop" in out
    assert "kind source" in out and "form complete" in out
