"""An example Penchant plugin: an order-export source and a repeat-purchase model."""

from __future__ import annotations

import penchant
from penchant_example_shop.orders import OrdersJson
from penchant_example_shop.repeat import RepeatBuy

#: The plugin-API versions this plugin is written for.
PENCHANT_API = ">=1.0,<2"


@penchant.hookimpl
def penchant_register_sources() -> list[type]:
    return [OrdersJson]


@penchant.hookimpl
def penchant_register_models() -> list[type]:
    return [RepeatBuy]
