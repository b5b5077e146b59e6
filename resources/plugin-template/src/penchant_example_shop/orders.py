"""Orders as exported by many shop systems: one JSON object per order, with line items."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import penchant


class OrdersJson(penchant.Source):
    """Shops often can export orders long before they can export a click log; an order
    with three line items says the customer bought three things at that moment."""

    name = "orders-json"
    description = "Order export, one JSON object per line; each line item is a purchase."
    params = (
        penchant.Param("path", "path", required=True, help="the .jsonl export"),
        penchant.Param("items_key", "str", "line_items",
                       help="the key holding each order's list of line items"),
    )

    def available_columns(self) -> list[str]:
        first = self._orders(limit=1)
        if not first:
            return []
        lines = first[0].get(self.params.items_key) or [{}]
        return sorted(set(first[0]) - {self.params.items_key} | set(lines[0]))

    def describe_origin(self) -> str:
        return str(self.resolve_path(self.params.path))

    def _orders(self, limit: int | None = None) -> list[dict]:
        path = self.resolve_path(self.params.path)
        if not path.is_file():
            raise penchant.DataError(f"{path}: no such order export")
        orders = []
        with Path(path).open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    orders.append({"_line": number, **json.loads(line)})
                except json.JSONDecodeError as exc:
                    raise penchant.DataError(f"{path}: line {number} is not JSON: {exc}") \
                        from None
                if limit and len(orders) >= limit:
                    break
        return orders

    def load(self, ctx: penchant.Context) -> penchant.Dataset:
        columns = self.params.columns
        rows = []
        for order in self._orders():
            for item in order.get(self.params.items_key) or []:
                merged = {**order, **item}
                rows.append({"user": merged.get(columns["user"]),
                             "item": merged.get(columns["item"]),
                             "time": merged.get(columns["time"]),
                             "event": "purchase", "row": order["_line"]})
        frame = pd.DataFrame(rows, columns=["user", "item", "time", "event", "row"])
        ctx.log(f"orders-json: {len(frame)} line items")
        events = penchant.Events.from_frame(frame, self.params.time_unit)
        return penchant.Dataset(events, provenance=(self.describe_origin(),))
