"""Terminal progress for headless runs: a bar with ETA on a terminal, plain lines in logs.

It is an ordinary observer plugin: the CLI registers it for the length of a run, and the
desktop app uses its own observer the same way.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from penchant.hookspecs import hookimpl


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressPrinter:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started: dict[str, float] = {}
        self.bar_open = False
        self.last_plain: dict[str, float] = {}

    def _line(self, text: str) -> None:
        if self.bar_open:
            self.stream.write("\r\x1b[2K")
            self.bar_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    @hookimpl
    def penchant_on_run_start(self, run: Any) -> None:
        self._line(f"run {run.id} ({run.name}) → {run.out_dir}")

    @hookimpl
    def penchant_on_log(self, message: str) -> None:
        self._line(f"  {message}")

    @hookimpl
    def penchant_on_progress(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done <= 1 or stage not in self.started:
            self.started[stage] = now
        if not total:
            return
        elapsed = now - self.started[stage]
        eta = elapsed / max(done, 1) * (total - done) if done else 0.0
        if self.tty:
            width = 30
            filled = int(width * done / total)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r\x1b[2K{stage:<10} [{bar}] {done}/{total} "
                              f"elapsed {_clock(elapsed)} eta {_clock(eta)}")
            self.stream.flush()
            self.bar_open = True
        elif done == total or now - self.last_plain.get(stage, 0) > 5:
            self.last_plain[stage] = now
            self._line(f"  {stage}: {done}/{total} (eta {_clock(eta)})")

    @hookimpl
    def penchant_on_epoch_end(self, model: str, epoch: int, losses: dict,
                              metrics: dict) -> None:
        if self.tty:
            return
        shown = ", ".join(f"{k} {v:.4g}" for k, v in {**losses, **metrics}.items()
                          if k != "seconds")
        self._line(f"  {model} epoch {epoch}: {shown}")

    @hookimpl
    def penchant_on_stage_end(self, stage: str, seconds: float, summary: dict) -> None:
        details = ", ".join(f"{k} {v}" for k, v in summary.items() if k != "seconds")
        self._line(f"{stage} done in {seconds:.1f}s" + (f" ({details})" if details else ""))

    @hookimpl
    def penchant_on_run_failed(self, status: str, error: str) -> None:
        self._line(f"run {status}: {error.splitlines()[0] if error else ''}")
