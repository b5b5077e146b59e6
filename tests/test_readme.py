"""The README's commands are the ones CI and users actually run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fenced_commands(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    test_command = next(c for c in fenced_commands(readme) if "pytest" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_run_command_names_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    run_command = next(c for c in fenced_commands(readme) if "penchant run" in c)
    pipeline = re.search(r"penchant run (\S+)", run_command).group(1)
    assert (ROOT / pipeline).is_file()
    assert "torch==2.13.0" in run_command, "a CPU build, never a CUDA download"
