"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def set_threads(threads: int | None) -> None:
    """Fix torch's intra-op threads (measurements and reproducibility want a fixed count)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
