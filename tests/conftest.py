"""Shared fixtures: a small generated shop, a pipeline over it, a throwaway run store."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from penchant.store import RunStore

# Qt without a screen, for the app's tests (pytest-qt); set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHOP_PIPELINE = """
[pipeline]
name = "test-shop"
seed = 0

[source]
plugin = "csv"
path = "{shop}/events.csv.gz"
columns = {{ user = "user_id", item = "item_id", time = "timestamp", event = "event_type" }}
items = {{ path = "{shop}/items.csv", id = "item_id" }}
users = {{ path = "{shop}/users.csv", id = "user_id" }}

[[preprocess]]
plugin = "dedup"

[[features]]
plugin = "interactions"
weights = {{ view = 1.0, cart = 2.0, purchase = 3.0 }}

[model]
plugin = "vae"
epochs = {epochs}
hidden = 32
latent = 8
batch_size = 64

[recommender]
plugin = "top-k"

[evaluation]
horizons = ["7d", "30d"]
k = [5, 10]
recommend_k = 10
"""


@pytest.fixture(autouse=True)
def _collect_qt_garbage_here(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that built widgets, collect its garbage in the main thread: left for
    later, a Qt object in a reference cycle is destroyed by whichever thread's allocation
    triggers the collector, and off the GUI thread that deadlocks PySide (it hung the
    threaded run-store test once)."""
    yield
    if "qtbot" in request.fixturenames:
        gc.collect()


# Fuzzing (tests/test_fuzz_*.py) is repeatable in CI: derandomised, with a deadline that only
# a hang can miss on a loaded machine. HYPOTHESIS_PROFILE=explore searches afresh, longer.
settings.register_profile("ci", derandomize=True, deadline=20_000, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", settings.get_profile("ci"), derandomize=False,
                          max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread: the suite's models are tiny, and on a shared 2-core machine
    oversubscribed threads make them many times slower, not faster."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does may touch the developer's ~/.penchant."""
    monkeypatch.setenv("PENCHANT_HOME", str(tmp_path / "penchant-home"))
    monkeypatch.delenv("PENCHANT_STORE", raising=False)


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from penchant.demo_shop import generate

    out = tmp_path_factory.mktemp("shop")
    generate(out, users=300, items=120, months=10, seed=1)
    return out


def write_pipeline(shop: Path, folder: Path, epochs: int = 3, extra: str = "") -> Path:
    path = folder / "pipeline.toml"
    path.write_text(SHOP_PIPELINE.format(shop=shop, epochs=epochs) + extra)
    return path


@pytest.fixture
def pipeline_file(shop: Path, tmp_path: Path) -> Path:
    return write_pipeline(shop, tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")


@pytest.fixture(scope="session")
def mariadb():
    """A real MariaDB server for the session (see tests/servers.py)."""
    from servers import start_mariadb

    server = start_mariadb()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory):
    """A MongoDB wire-protocol server for the session (see tests/servers.py)."""
    from servers import start_mongo

    server = start_mongo(tmp_path_factory.mktemp("nx-27017"))
    yield server.uri
    server.stop()
