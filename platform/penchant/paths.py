"""Paths that come back from a record stay inside the folder they belong to.

The run store keeps where each run's files are, and where incremental sources keep their
copies; those paths are read back, loaded and even deleted later. A store edited by hand,
shared between users or copied from elsewhere could point them anywhere (``..``, an
absolute path, a symlink planted in a run folder): every such path goes through
:func:`inside` first. Folders the user names (``--out``, a pipeline's source path) are the
user's choice and are not checked.
"""

from __future__ import annotations

from pathlib import Path

from penchant.errors import StoreError


def inside(root: str | Path, path: str | Path, what: str) -> Path:
    """``path`` (absolute, or relative to ``root``) with symlinks followed, when it lies
    within ``root``; otherwise a :class:`StoreError` naming ``what`` and both paths."""
    base = Path(root).expanduser().resolve()
    resolved = (base / Path(path)).resolve()
    if not resolved.is_relative_to(base):
        raise StoreError(f"{what}: {path} lies outside {base}; refusing to use it (was the "
                         "run store edited, or copied from another machine?)")
    return resolved
