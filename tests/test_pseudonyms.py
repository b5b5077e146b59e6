"""Pseudonymized user ids: keyed, stable, consistent with the users table, reversible only
with the key and the shop's ids, and the key itself never written anywhere."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import penchant
from penchant import Context
from penchant.cli import main
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.pseudonyms import LENGTH, key_from_env, pseudonyms, reveal
from penchant.runner import Runner
from penchant.store import RunStore
from penchant.testing import ConformanceError, check_component, tiny_dataset
from penchant_plugins.preprocess.pseudonymize import Pseudonymize
from pipelines import Said, quick_pipeline

KEY = "a-long-secret-pseudonym-key-7f3a"
ENV = "PENCHANT_PSEUDONYM_KEY"


def test_user_ids_become_stable_keyed_pseudonyms_in_events_and_users_alike() -> None:
    given = tiny_dataset()
    ctx = Context()
    out = Pseudonymize({"key": KEY}).apply(given, ctx)
    before = given.events.frame["user"].astype(str)
    after = out.events.frame["user"].astype(str)
    assert (after == pseudonyms(before, KEY.encode())).all()
    assert after.str.fullmatch(f"[0-9a-f]{{{LENGTH}}}").all()
    assert (out.events.frame["item"] == given.events.frame["item"]).all()  # items stay
    # The side table follows its users: u3's age and region now belong to u3's pseudonym.
    hidden = pseudonyms(["u3"], KEY.encode())[0]
    assert out.users.loc[hidden].tolist() == given.users.loc["u3"].tolist()
    assert set(after) == set(out.users.index)
    assert ctx.report["pseudonymize"] == {"users": before.nunique()}
    again = Pseudonymize({"key": KEY}).apply(tiny_dataset(), Context())
    assert again.events.frame["user"].astype(str).tolist() == after.tolist()
    other = Pseudonymize({"key": KEY[::-1]}).apply(tiny_dataset(), Context())
    assert not set(other.events.frame["user"].astype(str)) & set(after)


def test_a_missing_or_short_key_is_refused_naming_the_key_and_variable(
        tmp_path: Path, monkeypatch, shop: Path) -> None:
    with pytest.raises(penchant.PipelineError, match=r"\[pseudonymize\] key 'key'.*"
                                                     r"8 characters long.*at least 16"):
        Pseudonymize({"key": "too-shrt"})
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(penchant.PipelineError, match=f"{ENV} is not set"):
        key_from_env(ENV)
    path = tmp_path / "p.toml"
    path.write_text(quick_pipeline(SHOP_SOURCE.format(shop=shop)) + PSEUDONYMIZE)
    registry = Registry()
    pipeline = load_pipeline(path, registry)  # an env reference validates unresolved
    with pytest.raises(penchant.PipelineError, match=f"environment variable {ENV} is not "
                                                     "set"):
        Runner(pipeline, registry, out_dir=tmp_path / "out").run()
    monkeypatch.setenv(ENV, "")
    with pytest.raises(penchant.PipelineError, match=r"preprocess\[0\]\] key 'key': the "
                                                     "pseudonym key is empty"):
        Runner(pipeline, registry, out_dir=tmp_path / "out").run()


def test_reveal_needs_the_key_and_every_users_real_id() -> None:
    real = ["u1", "u2", "u3"]
    frame = pd.DataFrame({"user": pseudonyms(["u2", "u1", "u2"], KEY.encode()),
                          "item": ["a", "b", "c"]})
    shown = reveal(frame, "user", KEY.encode(), real, "ids.txt")
    assert shown["user"].tolist() == ["u2", "u1", "u2"]
    assert shown["item"].tolist() == ["a", "b", "c"]
    with pytest.raises(penchant.DataError, match=r"ids.txt: 2 pseudonym\(s\) in column "
                                                 "'user' match none of the 3 ids given"):
        reveal(frame, "user", b"another-key-of-enough-length", real, "ids.txt")
    with pytest.raises(penchant.DataError, match="1 pseudonym"):
        reveal(frame, "user", KEY.encode(), ["u1"], "ids.txt")


class RenamesEventsOnly(penchant.Preprocessor):
    """A broken renamer: new ids in the events, the users table left behind."""

    name = "renames-events-only"
    description = "for the kit test"
    renames = ("user",)

    def apply(self, dataset, ctx):
        frame = dataset.events.frame
        users = frame["user"].cat.rename_categories(lambda u: f"x{u}")
        return dataset.with_events(penchant.Events(frame.assign(user=users)))


def test_the_kit_checks_a_renaming_keeps_the_users_table_in_step() -> None:
    check_component(Pseudonymize, {"key": KEY})
    with pytest.raises(ConformanceError, match="renamed users in the events but not in the "
                                               "users side table alike"):
        check_component(RenamesEventsOnly)


SHOP_SOURCE = """
plugin = "csv"
path = "{shop}/events.csv.gz"
columns = {{ user = "user_id", item = "item_id", time = "timestamp", event = "event_type" }}
users = {{ path = "{shop}/users.csv", id = "user_id" }}
"""

PSEUDONYMIZE = f"""
[[preprocess]]
plugin = "pseudonymize"
key = "${{env:{ENV}}}"
"""


def test_a_run_lists_pseudonyms_the_key_is_nowhere_and_export_reveals_real_ids(
        tmp_path: Path, monkeypatch, shop: Path) -> None:
    monkeypatch.setenv(ENV, KEY)
    path = tmp_path / "p.toml"
    path.write_text(quick_pipeline(SHOP_SOURCE.format(shop=shop)) + PSEUDONYMIZE)
    said = Said()
    registry = Registry()
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    result = Runner(load_pipeline(path, registry), registry, store, tmp_path / "out",
                    observers=[said]).run()
    real = pd.read_csv(shop / "users.csv", dtype={"user_id": str})["user_id"]
    recs = pd.read_csv(tmp_path / "out" / "recommendations.csv", dtype={"user": str})
    assert set(recs["user"]) <= set(pseudonyms(real, KEY.encode()))
    assert not set(recs["user"]) & set(real)
    (tmp_path / "ids.txt").write_text("\n".join(real) + "\n")
    target = f"sqlite:///{tmp_path / 'shop.db'}"
    assert main(["--store", store.url, "export", str(result.run.id), "--to", target,
                 "--table", "recs", "--reveal-ids", str(tmp_path / "ids.txt")]) == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        exported = pd.read_sql("SELECT user_id, item_id, position FROM recs", conn)
    expected = reveal(recs, "user", KEY.encode(), real, "ids")
    assert exported["user_id"].tolist() == expected["user"].tolist()
    assert set(exported["user_id"]) <= set(real)
    assert said.lines and all(KEY not in line for line in said.lines)
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert KEY.encode() not in file.read_bytes(), file


def test_export_without_the_key_variable_names_it(tmp_path: Path, monkeypatch,
                                                  capsys) -> None:
    monkeypatch.delenv("SHOP_KEY", raising=False)
    (tmp_path / "ids.txt").write_text("u1\n")
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    run_id = store.start_run("p", "popularity", "", {}, str(tmp_path))
    (tmp_path / "recommendations.csv").write_text("user,item,rank,score\nabc,i1,1,1.0\n")
    store.add_artifacts(run_id, {"recommendations": tmp_path / "recommendations.csv"})
    store.finish_run(run_id, "finished")
    code = main(["--store", store.url, "export", str(run_id), "--to", "sqlite://",
                 "--table", "recs", "--reveal-ids", str(tmp_path / "ids.txt"),
                 "--key-env", "SHOP_KEY"])
    assert code == 2
    assert "environment variable SHOP_KEY is not set" in capsys.readouterr().err
