"""Built-in feature extractors."""

from __future__ import annotations

from penchant import hookimpl
from penchant_plugins.features.behaviour import BehaviourFeatures
from penchant_plugins.features.interactions import Interactions
from penchant_plugins.features.side import ItemFeatures, UserFeatures


@hookimpl
def penchant_register_features() -> list[type]:
    return [Interactions, UserFeatures, BehaviourFeatures, ItemFeatures]
