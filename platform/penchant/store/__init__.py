"""The run store (SQLAlchemy)."""

from penchant.store.runstore import RunRecord, RunStore, default_url, penchant_home

__all__ = ["RunRecord", "RunStore", "default_url", "penchant_home"]
