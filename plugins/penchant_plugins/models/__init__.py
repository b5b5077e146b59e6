"""Built-in models and baselines."""

from __future__ import annotations

from penchant import hookimpl
from penchant_plugins.models.cvae import ConditionalVAE
from penchant_plugins.models.ease import EASE
from penchant_plugins.models.itemknn import ItemKNN
from penchant_plugins.models.popularity import Popularity, RecentPopularity
from penchant_plugins.models.vae import MultVAE


@hookimpl
def penchant_register_models() -> list[type]:
    return [MultVAE, ConditionalVAE, ItemKNN, EASE, Popularity, RecentPopularity]
