"""Built-in models and baselines."""

from __future__ import annotations

from penchant import hookimpl
from penchant_plugins.models.cdae import CDAE
from penchant_plugins.models.cfgan import CFGAN
from penchant_plugins.models.cvae import ConditionalVAE
from penchant_plugins.models.dae import MultDAE
from penchant_plugins.models.ease import EASE
from penchant_plugins.models.evolution import Evolution
from penchant_plugins.models.itemknn import ItemKNN
from penchant_plugins.models.popularity import Popularity, RecentPopularity
from penchant_plugins.models.vae import MultVAE


@hookimpl
def penchant_register_models() -> list[type]:
    return [MultVAE, ConditionalVAE, MultDAE, CDAE, CFGAN, Evolution, ItemKNN, EASE,
            Popularity, RecentPopularity]
