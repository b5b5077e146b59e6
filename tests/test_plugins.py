"""Plugin discovery through the entry-point group, and isolation of broken plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from penchant.hookspecs import API_VERSION
from penchant.plugins import Registry

GOOD = '''
import penchant

class Shuffle(penchant.Preprocessor):
    name = "shuffle-test"
    description = "Registered from a test entry point."
    params = (penchant.Param("times", "int", 1, min=1, help="how often"),)

    def apply(self, dataset, ctx):
        return dataset

@penchant.hookimpl
def penchant_register_preprocessors():
    return [Shuffle]
'''

BAD_CONTRACT = '''
import penchant

class NoName(penchant.Model):
    description = "has no name"

class WrongKind(penchant.Model):
    kind = "source"
    name = "wrong-kind"
    description = "a model that says it is a source"

class Fine(penchant.Model):
    name = "fine-test"
    description = "keeps the contract"

@penchant.hookimpl
def penchant_register_models():
    return [NoName, WrongKind, penchant.Source, object, Fine]

@penchant.hookimpl
def penchant_register_sources():
    raise RuntimeError("database driver missing")
'''


def install(tmp: Path, dist: str, entries: dict[str, str]) -> None:
    """A minimal installed distribution: a module per entry and a dist-info folder."""
    info = tmp / f"{dist.replace('-', '_')}-0.1.dist-info"  # the wheel naming rule
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {name}_mod" for name in entries)
    (info / "entry_points.txt").write_text(f"[penchant]\n{lines}\n")
    for name, source in entries.items():
        (tmp / f"{name}_mod.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_plugin_registered_through_an_entry_point(site: Path) -> None:
    install(site, "penchant-shuffle", {"shuffle": GOOD})
    registry = Registry()
    info = registry.components["preprocessor"]["shuffle-test"]
    assert info.package == "penchant-shuffle" and info.version == "0.1"
    assert "vae" in registry.names("model"), "built-ins come through the same group"
    assert registry.failures == []


def test_broken_plugins_are_reported_by_name_and_skipped(site: Path) -> None:
    install(site, "penchant-broken", {
        "explodes": "raise ImportError('no module named shopdb')",
        "contract": BAD_CONTRACT,
        "shuffle": GOOD,
    })
    registry = Registry()
    errors = [str(f) for f in registry.failures]
    assert any("penchant-broken:explodes" in e and "no module named shopdb" in e
               for e in errors)
    assert any("must be lower-case" in e for e in errors)
    assert any("kind is 'source' but it was registered as a model" in e for e in errors)
    assert any("returned Source, which is not a subclass of penchant.Model" in e
               for e in errors)
    assert any("returned object" in e for e in errors)
    assert any("penchant_register_sources raised RuntimeError: database driver missing" in e
               for e in errors)
    # the host keeps working: good components of the same and other plugins are there
    assert "fine-test" in registry.names("model")
    assert "shuffle-test" in registry.names("preprocessor")
    assert "csv" in registry.names("source")


def test_duplicate_component_names_keep_the_first(site: Path) -> None:
    install(site, "penchant-dupe", {"dupe": GOOD.replace("Shuffle", "Other")
                                    .replace('"shuffle-test"', '"dedup"')})
    registry = Registry()
    assert registry.components["preprocessor"]["dedup"].package == "penchant"
    assert any("already taken" in str(f) for f in registry.failures)


def test_plugin_api_ranges_are_honoured(site: Path) -> None:
    fits = GOOD.replace('"shuffle-test"', '"fits-test"') + '\nPENCHANT_API = ">=1.0,<2"\n'
    future = GOOD.replace('"shuffle-test"', '"future-test"') + '\nPENCHANT_API = ">=2"\n'
    garbled = GOOD.replace('"shuffle-test"', '"garbled-test"') + '\nPENCHANT_API = "two"\n'
    install(site, "penchant-versions", {"fits": fits, "future": future, "garbled": garbled})
    registry = Registry()
    names = registry.names("preprocessor")
    assert "fits-test" in names
    assert "future-test" not in names and "garbled-test" not in names
    errors = [str(f) for f in registry.failures]
    assert any("penchant-versions:future" in e and "needs penchant plugin API >=2" in e
               and f"provides {API_VERSION}" in e for e in errors)
    assert any("penchant-versions:garbled" in e and "not a version range" in e
               for e in errors)


def test_only_the_named_plugins_load(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, "penchant-shuffle", {"shuffle": GOOD})
    monkeypatch.setenv("PENCHANT_PLUGINS", "penchant-shuffle")
    registry = Registry()
    assert registry.names("preprocessor") == ["shuffle-test"]
    assert "penchant:models" in registry.skipped
    monkeypatch.setenv("PENCHANT_PLUGINS", "penchant")
    assert "shuffle-test" not in Registry().names("preprocessor")


def test_hook_calls_are_traced_with_timing(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PENCHANT_TRACE_HOOKS", "1")
    Registry()
    err = capsys.readouterr().err
    assert "[penchant hook] penchant_register_models -> penchant:models:" in err
    assert " ms" in err


def test_plugins_list_verbose_shows_origin_and_hooks(capsys) -> None:
    from penchant.cli import main

    assert main(["plugins", "list", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert f"plugin API {API_VERSION}" in out
    assert "penchant:models — penchant" in out
    assert "hooks: penchant_register_models" in out
