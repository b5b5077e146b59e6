"""The example plugin passes the conformance kit."""

from __future__ import annotations

import json

from penchant_example_shop import OrdersJson, RepeatBuy

import penchant
from penchant.testing import check_component


def test_repeat_buy_keeps_the_contract() -> None:
    check_component(RepeatBuy)


def test_orders_json_keeps_the_contract(tmp_path) -> None:
    orders = [{"customer": f"c{i % 5}", "created_at": f"2024-0{1 + i % 6}-01T10:00:00Z",
               "line_items": [{"product": f"p{i % 7}"}, {"product": f"p{(i + 3) % 7}"}]}
              for i in range(30)]
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in orders))
    check_component(OrdersJson, {"path": str(path), "columns": {
        "user": "customer", "item": "product", "time": "created_at"}})


def test_a_broken_line_is_named(tmp_path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"customer": "c1", "line_items": []}\n{not json\n')
    source = OrdersJson({"path": str(path), "columns": {
        "user": "customer", "item": "product", "time": "created_at"}})
    try:
        source.load(penchant.Context())
    except penchant.DataError as error:
        assert "line 2 is not JSON" in str(error)
    else:
        raise AssertionError("a broken line must be refused")
