"""``penchant plugins new``: the scaffold writes a package that installs, is found through
its entry point, passes its own tests (the conformance kit among them) and runs in a
pipeline at once; bad names, kinds and folders are refused before anything is written."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import tomli_w

from conftest import write_pipeline
from penchant.cli import main
from penchant.components import KINDS
from penchant.errors import PenchantError
from penchant.scaffold import create_plugin, names_for

REPO = Path(__file__).resolve().parents[1]

# -- fast: what is written, and what is refused -----------------------------------------


@pytest.mark.parametrize("name, needle", [
    ("Penchant-Acme", "not a distribution name"),
    ("penchant acme", "not a distribution name"),
    ("penchant--acme", "not a distribution name"),
    ("-acme", "not a distribution name"),
    ("penchant.acme", "not a distribution name"),
    ("json", "shadows another one"),
    ("penchant", "shadows another one"),
    ("penchant-2tower", "must start with a letter"),
    ("penchant-" + "x" * 40, "longer than 40 characters"),
])
def test_a_bad_name_is_refused_before_anything_is_written(name, needle, tmp_path) -> None:
    with pytest.raises(PenchantError, match=needle):
        create_plugin(name, "model", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_kind_is_refused_with_a_suggestion(tmp_path) -> None:
    with pytest.raises(PenchantError, match=r"kind 'modle' is not one of source, .*"
                                            r"did you mean 'model'"):
        create_plugin("penchant-acme", "modle", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path) -> None:
    (tmp_path / "penchant-acme").mkdir()
    (tmp_path / "penchant-acme" / "notes.txt").write_text("mine")
    with pytest.raises(PenchantError, match="already exists and is not an empty folder"):
        create_plugin("penchant-acme", "model", tmp_path)
    assert [p.name for p in (tmp_path / "penchant-acme").iterdir()] == ["notes.txt"]
    (tmp_path / "penchant-file").write_text("a file")
    with pytest.raises(PenchantError, match="already exists"):
        create_plugin("penchant-file", "model", tmp_path)
    (tmp_path / "penchant-empty").mkdir()  # an empty folder is fine
    assert create_plugin("penchant-empty", "model", tmp_path)


def test_the_cli_reports_refusals_as_one_line(tmp_path, capsys) -> None:
    assert main(["plugins", "new", "Bad Name", "--kind", "model", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: plugin name 'Bad Name'")
    # A component name an installed plugin already uses would be refused by the host.
    assert main(["plugins", "new", "penchant-popularity", "--kind", "model",
                 "--dir", str(tmp_path)]) == 2
    assert "a model named 'popularity' is already installed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_cli_writes_the_package_and_says_what_next(tmp_path, capsys) -> None:
    assert main(["plugins", "new", "penchant-acme-boost", "--kind", "recommender",
                 "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "component 'acme-boost'" in out and "pip install -e" in out
    root = tmp_path / "penchant-acme-boost"
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", "src/penchant_acme_boost/__init__.py",
        "tests/test_penchant_acme_boost.py"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_package_declares_its_entry_point_and_dependencies(kind, tmp_path) -> None:
    n = names_for("penchant-acme-boost", kind)
    create_plugin("penchant-acme-boost", kind, tmp_path)
    root = tmp_path / "penchant-acme-boost"
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "penchant-acme-boost"
    assert project["dependencies"] == ["penchant"]
    assert project["optional-dependencies"]["test"] == ["pytest"]
    assert project["entry-points"]["penchant"] == {"acme_boost": "penchant_acme_boost"}
    module = (root / "src/penchant_acme_boost/__init__.py").read_text()
    assert 'PENCHANT_API = ">=1.0,<2"' in module
    assert f"def {n['hook']}()" in module and f"class {n['class']}(penchant." in module
    assert 'name = "acme-boost"' in module
    tests = (root / "tests/test_penchant_acme_boost.py").read_text()
    assert "check_component(component, PARAMS)" in tests
    readme = (root / "README.md").read_text()
    assert "pip install -e ." in readme and f'plugin = "{n["component"]}"' in readme
    assert "__" + "COMPONENT" not in readme + module + tests  # every placeholder filled


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="needs ruff")
def test_generated_code_is_ruff_clean_under_both_configs(tmp_path) -> None:
    for kind in KINDS:
        create_plugin(f"penchant-acme-{kind}", kind, tmp_path)
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache"]
    repo = subprocess.run([*ruff, "--config", str(REPO / "pyproject.toml"), str(tmp_path)],
                          capture_output=True, text=True)
    assert repo.returncode == 0, repo.stdout + repo.stderr
    for kind in KINDS:  # and under the package's own settings, from its folder
        own = subprocess.run([*ruff, "."], cwd=tmp_path / f"penchant-acme-{kind}",
                             capture_output=True, text=True)
        assert own.returncode == 0, own.stdout + own.stderr


# -- slow: install each kind, find it, test it, run it ----------------------------------

def _run(args: list[str], cwd: Path | None = None, timeout: float = 240
         ) -> subprocess.CompletedProcess:
    """A fresh interpreter (entry points are read anew), one thread per library."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _pip(*args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args])


@pytest.fixture
def installed(request, tmp_path):
    """Scaffold a plugin of ``request.param`` (a kind), ``pip install -e`` it into this
    environment, and uninstall it afterwards. The pid keeps concurrent sessions apart."""
    kind = request.param
    name = f"penchant-scaffold{os.getpid()}-{kind}"
    create_plugin(name, kind, tmp_path)
    root = tmp_path / name
    request.addfinalizer(lambda: _pip("uninstall", "-y", name))
    done = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    return names_for(name, kind), root


def _pipeline(shop: Path, folder: Path, n: dict[str, str]) -> Path:
    """The suite's shop pipeline, with the new component in its stage."""
    doc = tomllib.loads(write_pipeline(shop, folder, epochs=1).read_text())
    doc["evaluation"]["validation"] = 0.0
    component, kind = n["component"], n["kind"]
    if kind == "source":
        frame = pd.read_csv(shop / "events.csv.gz", dtype=str)
        frame.to_json(folder / "events.jsonl", orient="records", lines=True)
        items = pd.read_csv(shop / "items.csv", dtype=str)
        items.to_json(folder / "items.jsonl", orient="records", lines=True)
        doc["source"] = {"plugin": component, "path": "events.jsonl",
                         "columns": doc["source"]["columns"],
                         "items": {"path": "items.jsonl", "id": "item_id"}}
    elif kind == "preprocessor":
        doc["preprocess"].append({"plugin": component, "max_age": "200d"})
    elif kind == "features":
        doc["features"] = [{"plugin": component, "scale": "log"}]
    elif kind == "model":
        doc["model"] = {"plugin": component, "half_life": "30d"}
    else:
        doc["recommender"] = {"plugin": component, "limit": 5}
    path = folder / "pipeline.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("installed", KINDS, indirect=True)
def test_a_scaffolded_plugin_installs_passes_its_tests_and_runs(installed, shop,
                                                                 tmp_path) -> None:
    n, root = installed
    penchant = [sys.executable, "-m", "penchant.cli"]

    listing = _run([*penchant, "plugins", "list"])
    assert listing.returncode == 0, listing.stderr
    line = next((x for x in listing.stdout.splitlines() if f" {n['component']} " in x), "")
    assert line.split()[:3] == [n["kind"], n["component"], n["dist"]], listing.stdout
    assert "failed to load" not in listing.stdout, listing.stdout

    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    work = tmp_path / "work"
    work.mkdir()
    out = work / "run"
    run = _run([*penchant, "run", str(_pipeline(shop, work, n)), "--out", str(out)])
    assert run.returncode == 0, run.stdout + run.stderr
    assert (out / "metrics.json").exists()
    saved = tomllib.loads((out / "pipeline.toml").read_text())
    assert n["component"] in tomli_w.dumps(saved)
    if n["kind"] == "recommender":
        recs = pd.read_csv(out / "recommendations.csv")
        assert recs["rank"].max() == 5  # the limit, though the pipeline asks for 10
    if n["kind"] == "preprocessor":
        assert f"{n['component']}: dropped" in run.stdout + run.stderr
