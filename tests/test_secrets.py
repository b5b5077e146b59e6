"""Secrets stay out of everything a run writes or says, even when a plugin leaks them."""

from __future__ import annotations

from pathlib import Path

import pytest

import penchant
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.secrets import mask_url, scrub, url_password
from penchant.store import RunStore
from penchant_plugins.sources.csv import CsvSource
from pipelines import quick_pipeline

SECRET = "hunter2-Z9!"


class LeakySource(CsvSource):
    """A careless third-party source: it logs and raises with its token in the text."""

    name = "leaky"
    description = "CSV, plus a token it is careless with"
    params = (*CsvSource.params, penchant.Param("token", "str", required=True, secret=True),
              penchant.Param("fail", "bool", False))

    def load(self, ctx):
        ctx.log(f"connecting with token {self.params.token}")
        ctx.report["token_seen"] = self.params.token
        if self.params.fail:
            raise penchant.DataError(f"the server refused token {self.params.token}")
        return super().load(ctx)


class Plugin:
    @penchant.hookimpl
    def penchant_register_sources(self):
        return [LeakySource]


SOURCE = """
plugin = "leaky"
path = "{shop}/events.csv.gz"
token = "${{env:SHOP_TOKEN}}"
fail = {fail}
columns = {{ user = "user_id", item = "item_id", time = "timestamp" }}
"""


@pytest.mark.parametrize("fail", [False, True], ids=["finished", "failed"])
def test_a_leaky_plugin_cannot_leak_an_env_secret(fail, tmp_path: Path, monkeypatch,
                                                  shop: Path) -> None:
    monkeypatch.setenv("SHOP_TOKEN", SECRET)
    path = tmp_path / "p.toml"
    path.write_text(quick_pipeline(SOURCE.format(shop=shop, fail=str(fail).lower())))
    registry = Registry(plugins=[Plugin()])
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    said: list[str] = []

    class Observer:
        @penchant.hookimpl
        def penchant_on_log(self, run, message):
            said.append(message)

        @penchant.hookimpl
        def penchant_on_run_failed(self, run, status, error):
            said.append(error)

    runner = Runner(load_pipeline(path, registry), registry, store, tmp_path / "out",
                    observers=[Observer()])
    if fail:
        with pytest.raises(penchant.DataError) as err:
            runner.run()
        said.append(str(err.value))
        assert "refused token ***" in str(err.value)
        assert err.value.__suppress_context__  # the leaky original is not shown
    else:
        runner.run()
    assert "connecting with token ***" in said
    assert all(SECRET not in text for text in said)
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file


def test_scrub_and_mask_helpers() -> None:
    url = "mysql+pymysql://shop:p%40ss-word@db:3306/shop"
    assert mask_url(url) == "mysql+pymysql://shop:***@db:3306/shop"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
    assert url_password(url) == "p@ss-word"
    assert scrub(f"failed: {url} and p@ss-word", [url_password(url)]) == \
        "failed: mysql+pymysql://shop:***@db:3306/shop and ***"
    assert scrub("a 1 b", ["1"]) == "a 1 b"  # too short to be worth garbling messages
