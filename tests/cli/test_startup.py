"""Every `raykd` command, `--help` included, imports all command modules first: none of them may
pull in the heavy libraries at import time (torch alone costs seconds), or the deferred imports of
docs/architecture.md ("# deferred:") save nothing."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "datasets", "ray", "optuna", "pandas", "pyarrow", "matplotlib", "scipy")


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = ("import sys\n"
            "from raykd.cli import build_parser\n"
            "build_parser()\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == [], f"`raykd` start-up imports {out.stdout.strip()}"
