"""Run the ``penchant`` command and kill it with SIGKILL at a chosen point.

    python tests/crash_driver.py POINT N ARGS...

POINT is ``chunk`` (the N-th chunk a source hands to the loader), ``commit`` (the N-th
database transaction, killed just before it commits), ``write:PATTERN`` (the N-th atomic
write of a file whose name matches PATTERN, killed with half of it written) or ``count``
(no kill: how often each point was reached is printed as JSON, the last line on stderr).

SIGKILL runs no handler and flushes nothing, like a power cut or the OOM killer: what the
crash-safety tests check afterwards is what the files and the run store really hold.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import event
from sqlalchemy.engine import Engine

from penchant import atomic, loading
from penchant.cli import main

reached: Counter[str] = Counter()


def die() -> NoReturn:
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def install(point: str, n: int) -> None:
    kind, _, pattern = point.partition(":")
    hits = 0

    def trap(at: str, name: str = "") -> bool:
        nonlocal hits
        reached[f"{at}:{name}" if name else at] += 1
        if at == kind and fnmatch(name, pattern or "*"):
            hits += 1
            return hits == n
        return False

    add = loading.EventsBuilder.add

    def add_or_die(self: loading.EventsBuilder, *args: Any, **kwargs: Any) -> None:
        if trap("chunk"):
            die()
        add(self, *args, **kwargs)

    write_with = atomic.write_with

    def write_or_die(path: Path, write: Callable[[Path], None]) -> Path:
        if not trap("write", Path(path).name):
            return write_with(path, write)

        def half(tmp: Path) -> None:
            write(tmp)
            with tmp.open("r+b") as fh:
                fh.truncate(tmp.stat().st_size // 2)
            die()

        return write_with(path, half)

    loading.EventsBuilder.add = add_or_die  # type: ignore[method-assign]
    atomic.write_with = write_or_die
    event.listen(Engine, "commit", lambda _conn: trap("commit") and die())


if __name__ == "__main__":
    point, count, *args = sys.argv[1:]
    install(point, int(count))
    code = main(args)
    print(json.dumps(dict(reached)), file=sys.stderr)
    sys.exit(code)
