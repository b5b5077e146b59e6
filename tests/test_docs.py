"""The authoring docs' examples run, and the generated reference matches the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from penchant.reference import render

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins"


@pytest.mark.parametrize("page", ["tutorial.md", "testing.md"])
def test_python_examples_run_in_order(page, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, f"{page} has no python examples"
    namespace: dict = {"__name__": f"docs_{page.split('.')[0]}"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{page} block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page}: example {number} failed: {exc!r}") from exc


def test_reference_is_generated_from_the_code() -> None:
    committed = (DOCS / "reference.md").read_text()
    assert committed == render(), "regenerate: python -m penchant.reference > " \
                                  "docs/plugins/reference.md"
