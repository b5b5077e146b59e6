"""The built-in preprocessors: exact surviving rows, reports, and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import penchant
from penchant.components import Context
from penchant.plugins import Registry
from penchant_plugins.preprocess._interpolate import interpolate
from penchant_plugins.preprocess._rows import keep_rows
from penchant_plugins.preprocess.dedup import Deduplicate
from penchant_plugins.preprocess.drop_malformed import DropMalformed
from penchant_plugins.preprocess.fill_missing import FillMissing
from penchant_plugins.preprocess.kcore import KCore

T0 = 1_700_000_000


def dataset(rows: list[tuple], items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None) -> penchant.Dataset:
    """Events from (user, item, seconds after T0 or a string, event, value) tuples."""
    frame = pd.DataFrame(rows, columns=["user", "item", "time", "event", "value"][:len(rows[0])])
    frame["time"] = frame["time"].map(lambda t: str(T0 + t) if isinstance(t, int) else t)
    frame["row"] = np.arange(2, len(rows) + 2)
    return penchant.Dataset(penchant.Events.from_frame(frame, "s"), items=items, users=users)


def rows(data: penchant.Dataset) -> list[int]:
    return data.events.frame["row"].tolist()


def run(component: penchant.Preprocessor, data: penchant.Dataset) -> tuple[
        penchant.Dataset, Context, list[str]]:
    logged: list[str] = []
    ctx = Context(log=logged.append)
    before = data.events.frame.copy()
    out = component.apply(data, ctx)
    pd.testing.assert_frame_equal(data.events.frame, before)  # the input is never changed
    assert all(out.events.frame[c].dtype == "category" for c in ("user", "item", "event"))
    json.dumps(ctx.report)  # the run store keeps reports as JSON
    return out, ctx, logged


def test_preprocessors_are_registered_through_the_entry_point():
    names = Registry().names("preprocessor")
    assert {"dedup", "drop-malformed", "fill-missing", "k-core"} <= set(names)


def test_keep_rows_forgets_unused_categories_and_keeps_nulls():
    events = penchant.Events.from_frame(pd.DataFrame({"user": ["a", None, "b", "c"],
                                                      "item": ["x", "y", "y", "x"],
                                                      "time": [1, 2, 3, 4]}))
    kept = keep_rows(events, np.array([False, True, True, False])).frame
    assert kept["user"].cat.categories.tolist() == ["b"]
    assert kept["user"].isna().tolist() == [True, False]
    assert kept["item"].cat.categories.tolist() == ["y"]
    assert kept["row"].tolist() == [2, 3]
    assert events.frame["user"].cat.categories.tolist() == ["a", "b", "c"]


# --- dedup ---------------------------------------------------------------------------------

DUPLICATES = [("a", "x", 0, "view", 1.0), ("a", "x", 0, "view", 2.0), ("a", "x", 0, "buy", 1.0),
              ("b", "x", 0, "view", 1.0), ("a", "x", 0, "view", 1.0), ("a", "x", 5, "view", 1.0)]


def test_dedup_keeps_the_first_of_each_by_default():
    out, ctx, logged = run(Deduplicate(), dataset(DUPLICATES))
    assert rows(out) == [2, 4, 5, 7]
    assert ctx.report["dedup"] == {"dropped": 2}
    assert "dropped 2 duplicate" in logged[0]
    assert out.provenance[-1] == "dedup: -2 events"


def test_dedup_keep_last_and_a_subset():
    out, _, _ = run(Deduplicate({"keep": "last"}), dataset(DUPLICATES))
    assert rows(out) == [4, 5, 6, 7]
    out, _, _ = run(Deduplicate({"subset": ["user", "item"]}), dataset(DUPLICATES))
    assert rows(out) == [2, 5]
    out, _, _ = run(Deduplicate({"subset": ["user", "item", "time", "event", "value"]}),
                    dataset(DUPLICATES))
    assert rows(out) == [2, 3, 4, 5, 7]


def test_dedup_forgets_ids_it_removed_entirely():
    out, _, _ = run(Deduplicate({"subset": ["item"]}), dataset(DUPLICATES))
    assert out.events.frame["user"].cat.categories.tolist() == ["a"]


def test_dedup_refuses_bad_subsets():
    with pytest.raises(penchant.PipelineError, match="subset"):
        Deduplicate({"subset": []})
    with pytest.raises(penchant.PipelineError, match="'row' is not one of"):
        Deduplicate({"subset": ["row"]})


# --- drop-malformed ------------------------------------------------------------------------

def test_drop_malformed_drops_and_reports_bad_rows():
    data = dataset([("a", "x", 0, "view", 1.0), ("", "x", 1, "view", 1.0),
                    ("b", None, 2, "view", 1.0), ("b", "y", "soon", "view", 1.0),
                    ("b", "y", 4, "view", math.inf), ("b", "y", 5, "view", None),
                    ("c", "z", 6, "view", -math.inf)])
    out, ctx, logged = run(DropMalformed(), data)
    assert rows(out) == [2, 7]
    assert out.events.frame["value"].isna().tolist() == [False, True]  # a missing value stays
    assert ctx.report["drop-malformed"] == {"dropped": 5, "rows": [3, 4, 5, 6, 8]}
    assert logged == ["drop-malformed: dropped 5 malformed row(s) (rows 3, 4, 5, 6, 8)"]
    assert out.events.frame["user"].cat.categories.tolist() == ["a", "b"]
    out.events.check("test")  # nothing left to complain about


def test_drop_malformed_reports_at_most_a_hundred_rows():
    data = dataset([("a", "x", "never", "view")] * 150 + [("a", "x", 0, "view")])
    out, ctx, logged = run(DropMalformed(), data)
    assert rows(out) == [152]
    assert ctx.report["drop-malformed"]["dropped"] == 150
    assert ctx.report["drop-malformed"]["rows"] == list(range(2, 102))
    assert logged[0].endswith("(rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 …)")


# --- fill-missing --------------------------------------------------------------------------

VALUES = [("a", "x", 0, "r", 1.0), ("a", "y", 10, "r", None), ("a", "z", 40, "r", 5.0),
          ("b", "x", 5, "r", None), ("b", "y", 0, "r", 8.0), ("b", "z", 20, "r", None),
          ("a", "w", 50, "r", None), ("c", "x", 0, "r", None)]


@pytest.mark.parametrize(("strategy", "fill"), [("mean", 14 / 3), ("median", 5.0), ("zero", 0.0)])
def test_fill_missing_simple_strategies(strategy, fill):
    out, ctx, logged = run(FillMissing({"columns": {"value": strategy}}), dataset(VALUES))
    values = out.events.frame["value"].tolist()
    assert values == pytest.approx([1.0, fill, 5.0, fill, 8.0, fill, fill, fill])
    assert ctx.report["fill-missing"] == {"value": {"strategy": strategy, "filled": 5,
                                                    "left": 0}}
    assert logged == [f"fill-missing: value: filled 5 ({strategy})"]


def test_fill_missing_interpolates_each_user_in_time():
    out, ctx, logged = run(FillMissing({"columns": {"value": "interpolate"}}), dataset(VALUES))
    values = out.events.frame["value"].tolist()
    # a: 1 at t0, 5 at t40 → t10 gets 2; t50 is past the last → 5.  b: only 8 at t0 → 8.
    assert values[:7] == pytest.approx([1.0, 2.0, 5.0, 8.0, 8.0, 8.0, 5.0])
    assert math.isnan(values[7])  # c has no value to start from
    assert ctx.report["fill-missing"]["value"] == {"strategy": "interpolate", "filled": 4,
                                                   "left": 1}
    assert logged == ["fill-missing: value: filled 4 (interpolate), 1 left empty"]


def test_interpolate_leaves_rows_without_position_or_group():
    values = pd.Series([1.0, np.nan, np.nan, 3.0, np.nan])
    x = np.array([0.0, 1.0, np.nan, 2.0, 1.0])
    groups = np.array([0, 0, 0, 0, -1])
    out = interpolate(values, x, groups)
    assert out.tolist()[:2] == [1.0, 2.0]
    assert out.tolist()[3] == 3.0
    assert math.isnan(out[2]) and math.isnan(out[4])


def test_fill_missing_side_tables_over_row_order():
    items = pd.DataFrame({"price": [None, 2.0, None, None, 8.0, None], "n": [1, 2, 3, 4, 5, 6]},
                         index=pd.Index(list("pqrstu"), dtype="string", name="item"))
    users = pd.DataFrame({"age": [20.0, None, 40.0]},
                         index=pd.Index(["a", "b", "c"], dtype="string", name="user"))
    data = dataset(VALUES, items=items, users=users)
    out, ctx, _ = run(FillMissing({"columns": {"items.price": "interpolate",
                                               "users.age": "mean"}}), data)
    assert out.items["price"].tolist() == [2.0, 2.0, 4.0, 6.0, 8.0, 8.0]
    assert out.items.index.equals(items.index)
    assert out.items["n"].tolist() == [1, 2, 3, 4, 5, 6]
    assert out.users["age"].tolist() == [20.0, 30.0, 40.0]
    assert items["price"].isna().sum() == 4  # the input table is untouched
    assert out.events.frame["value"].isna().sum() == 5
    assert ctx.report["fill-missing"]["items.price"]["filled"] == 4
    assert out.provenance[-1] == "fill-missing: items.price 4, users.age 1"


def test_fill_missing_refuses_unknown_keys_and_strategies():
    with pytest.raises(penchant.PipelineError, match=r"'price' is not value, items\.<column>"):
        FillMissing({"columns": {"price": "mean"}})
    with pytest.raises(penchant.PipelineError, match=r"'things\.price' is not value"):
        FillMissing({"columns": {"things.price": "mean"}})
    with pytest.raises(penchant.PipelineError, match=r"columns\.value = 'mode' is not one of"):
        FillMissing({"columns": {"value": "mode"}})


def test_fill_missing_data_errors_name_the_key():
    items = pd.DataFrame({"brand": ["acme", None]}, index=pd.Index(["x", "y"], dtype="string"))
    with pytest.raises(penchant.DataError, match=r"'items\.price'.*no items table"):
        FillMissing({"columns": {"items.price": "mean"}}).apply(dataset(VALUES), Context())
    data = dataset(VALUES, items=items)
    with pytest.raises(penchant.DataError, match=r"'items\.price'.*no column 'price'.*'brand'"):
        FillMissing({"columns": {"items.price": "mean"}}).apply(data, Context())
    with pytest.raises(penchant.DataError, match=r"'items\.brand'.*not numbers"):
        FillMissing({"columns": {"items.brand": "mean"}}).apply(data, Context())
    no_values = dataset([("a", "x", 0), ("a", "y", 1)])
    with pytest.raises(penchant.DataError, match="'value' has no values to compute a median"):
        FillMissing({"columns": {"value": "median"}}).apply(no_values, Context())


# --- k-core --------------------------------------------------------------------------------

def test_k_core_counts_distinct_pairs_and_keeps_the_core():
    data = dataset([("a", "x", 0), ("a", "y", 1), ("b", "x", 2), ("b", "y", 3),
                    ("c", "x", 4), ("c", "x", 5), ("c", "x", 6), ("a", "x", 7)])
    out, ctx, logged = run(KCore({"user_min": 2, "item_min": 2}), data)
    assert rows(out) == [2, 3, 4, 5, 9]  # c's three events are one pair
    assert ctx.report["k-core"] == {"users_removed": 1, "items_removed": 0,
                                    "events_removed": 3, "rounds": 1}
    assert logged[0].startswith("k-core: removed 1 user(s), 0 item(s) and 3 event(s)")
    assert out.events.frame["user"].cat.categories.tolist() == ["a", "b"]


def test_k_core_repeats_until_nothing_changes():
    # Round 1 drops d (one item); then item w has only c, so w goes; then c has one item.
    data = dataset([("a", "x", 0), ("a", "y", 0), ("b", "x", 0), ("b", "y", 0),
                    ("c", "y", 0), ("c", "w", 0), ("d", "w", 0)])
    out, ctx, _ = run(KCore({"user_min": 2, "item_min": 2}), data)
    assert rows(out) == [2, 3, 4, 5]
    assert ctx.report["k-core"] == {"users_removed": 2, "items_removed": 1,
                                    "events_removed": 3, "rounds": 3}
    assert set(out.events.frame["item"]) == {"x", "y"}


def test_k_core_leaves_malformed_rows_and_side_tables_alone():
    items = pd.DataFrame({"price": [1.0, 2.0]}, index=pd.Index(["x", "q"], dtype="string"))
    data = dataset([("a", "x", 0), ("a", "x", 1), ("", "x", 2), ("a", "y", "bad")], items=items)
    out, ctx, _ = run(KCore({"user_min": 2, "item_min": 1}), data)
    assert rows(out) == [4, 5]
    assert out.items is items
    assert ctx.report["k-core"]["events_removed"] == 2


def test_k_core_can_remove_everything():
    out, ctx, _ = run(KCore(), dataset([("a", "x", 0)]))
    assert len(out.events) == 0
    assert ctx.report["k-core"]["users_removed"] == 1


def _with_users() -> penchant.Dataset:
    events = penchant.Events.from_frame(pd.DataFrame(
        {"user": ["u1", "u2"], "item": ["i1", "i2"], "time": [1_700_000_000, 1_700_000_100]}))
    users = pd.DataFrame({"age": [34, 51], "gender": ["f", "m"], "region": ["N", "S"]},
                         index=pd.Index(["u1", "u2"], dtype="string", name="user"))
    return penchant.Dataset(events, users=users)


def test_drop_columns_removes_personal_fields_and_records_which() -> None:
    from penchant_plugins.preprocess.drop_columns import DropColumns

    ctx = Context()
    out = DropColumns({"columns": ["users.age", "users.gender"]}).apply(_with_users(), ctx)
    assert list(out.users.columns) == ["region"]
    assert ctx.report["drop-columns"] == {"dropped": ["users.age", "users.gender"]}
    assert len(out.events) == 2


def test_drop_columns_refuses_what_it_cannot_drop() -> None:
    from penchant_plugins.preprocess.drop_columns import DropColumns

    with pytest.raises(penchant.PipelineError, match=r"'age' should be users\.<column>"):
        DropColumns({"columns": ["age"]})
    with pytest.raises(penchant.DataError,
                       match=r"cannot drop 'users\.agee': its columns: age, gender, region"):
        DropColumns({"columns": ["users.agee"]}).apply(_with_users(), Context())
    with pytest.raises(penchant.DataError, match=r"'items\.price': no such table"):
        DropColumns({"columns": ["items.price"]}).apply(_with_users(), Context())
