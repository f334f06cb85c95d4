"""ASDiv-A rows (MWPToolkit JSON, as ../shared/data holds them) written by the tests themselves,
so the tests that need ASDiv-A-format files run wherever the shared data is absent."""

from __future__ import annotations

import json
from pathlib import Path


def asdiv_rows(n: int, start: int = 0) -> list[dict]:
    return [{"@ID": f"t-{i}", "@Grade": "1", "Body": f"Cody had {i + 2} marbles and found {i + 5} more.",
             "Question": "How many marbles does Cody have now?", "Solution-Type": "Addition",
             "Answer": f"{2 * i + 7} (marbles)", "Formula": f"{i + 2}+{i + 5}={2 * i + 7}"} for i in range(start, start + n)]


def write_asdiv_dir(root: Path, train: int = 60, valid: int = 20) -> Path:
    """A directory with train.json and valid.json (valid is held out as test when read)."""
    root.mkdir(parents=True)
    (root / "train.json").write_text(json.dumps(asdiv_rows(train)))
    (root / "valid.json").write_text(json.dumps(asdiv_rows(valid, start=100)))
    return root
