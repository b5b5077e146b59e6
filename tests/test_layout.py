"""The source roots must never shadow the standard library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_platform_stays_the_standard_library_module_from_the_repo_root() -> None:
    code = ("import platform, penchant, penchant_plugins, penchant_gui; "
            "print(platform.system(), penchant.__version__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] in ("Linux", "Darwin", "Windows")


def test_platform_folder_is_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
