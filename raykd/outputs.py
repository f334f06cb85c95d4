"""Where raykd may write: never over what it did not create, and always atomically.

Three kinds of output location:
- a *model directory* (`teacher --out`, `prune --out`, `export --out`): must not exist or be
  empty; `--force` replaces it only when it holds a raykd model (config.json with raykd's
  `model_kind`). A directory holding anything else is never replaced, with or without `--force`.
- a *resumable directory* (`chain --out`, `reproduce --out`): may not exist, be empty, or hold
  what an earlier run of the same command wrote (and nothing else), which is then resumed.
- a *file* (`pareto --png`): replaced when raykd wrote it (its PNG text says so) or with `--force`.

Directories are written into a hidden temporary sibling and renamed into place (`atomic_dir`):
a crash mid-save leaves the old directory as it was and no half-written new one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from raykd.errors import RaykdInputError
from raykd.paths import checked_path

MODEL_KIND = "raykd-mwp-solver"  # = raykd.task.io.MODEL_KIND (kept here: this module must not pull torch)
MODEL_KINDS = (MODEL_KIND, "raykd-causal-lm", "raykd-hf-model")  # every model_kind raykd writes (raykd.task.hf_io.CAUSAL_LM_KIND; HF_MODEL_KIND)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_SOFTWARE = "raykd"  # the PNG "Software" text raykd writes into its plots

# What each resumable directory may hold (plus hidden temporaries of atomic writes).
CHAIN_ENTRIES = re.compile(r"round-\d{2,}")
REPRODUCE_ENTRIES = re.compile(r"results\.json|tables\.(md|json)|(structure|head)_stats\.json|experiments")  # head_: older runs


class OutputError(RaykdInputError):
    """An output location raykd must not (or cannot) write."""


def is_model_dir(path: Path) -> bool:
    """Whether `path` holds a model raykd wrote (its config.json names raykd's model kind)."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    # a solver, or a stock Transformers directory `raykd export --hf` wrote (its config says so)
    return isinstance(config, dict) and (config.get("model_kind") in MODEL_KINDS or isinstance(config.get("raykd_export"), dict))


def is_raykd_png(path: Path) -> bool:
    """Whether `path` is a PNG whose text chunks say raykd wrote it."""
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return False
    return head.startswith(PNG_SIGNATURE) and b"Software\x00" + PNG_SOFTWARE.encode() in head


def _entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def _foreign(path: Path, owned: re.Pattern[str]) -> list[str]:
    return [n for n in _entries(path) if not n.startswith(".") and not owned.fullmatch(n)]


def _show(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_writable(path: Path, flag: str) -> None:
    """The nearest existing ancestor of `path` is a directory this process can write in."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{flag} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def check_model_dir(path: str | os.PathLike, *, force: bool, flag: str = "--out") -> Path:
    """Refuse an output model directory that would replace something (see the module doc)."""
    path = checked_path(path, flag)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file, not a directory")
    if path.is_dir() and _entries(path):
        if not is_model_dir(path):
            raise OutputError(f"{flag} {path} holds files raykd did not write ({_show(_entries(path))}); raykd never "
                              "replaces those, even with --force: choose another directory")
        if not force:
            raise OutputError(f"{flag} {path} already holds a raykd model; use --force to replace it")
    check_writable(path, flag)
    return path


def check_resumable_dir(path: str | os.PathLike, owned: re.Pattern[str], *, what: str, flag: str = "--out") -> Path:
    """Refuse a resumable output directory holding anything an earlier `what` did not write."""
    path = checked_path(path, flag)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file, not a directory")
    if path.is_dir():
        foreign = _foreign(path, owned)
        if foreign:
            raise OutputError(f"{flag} {path} holds files that are not a raykd {what} ({_show(foreign)}); "
                              f"choose an empty or new directory (an existing {what} directory is resumed)")
    check_writable(path, flag)
    return path


def check_output_file(path: str | os.PathLike, *, force: bool, flag: str) -> Path:
    """Refuse an output file that exists and was not written by raykd, unless `force`."""
    path = checked_path(path, flag)
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a directory, not a file")
    if path.exists() and not force and not is_raykd_png(path):
        raise OutputError(f"{flag} {path} exists and raykd did not write it; use --force to replace it")
    check_writable(path, flag)
    return path


def check_not_overlapping(out: Path, inputs: dict[str, str | os.PathLike | list | tuple | None],
                          flag: str = "--out") -> None:
    """`out` must be neither one of the input paths nor inside or around one of them (writing there
    would replace or change what the command reads). Remote URIs and paths that do not exist here
    (a hub model name, a preset) cannot overlap and are skipped."""
    from raykd.storage import is_remote

    out = checked_path(out, flag)
    for name, given in inputs.items():
        for value in (given if isinstance(given, (list, tuple)) else [given]):
            text = os.fspath(value) if value is not None else ""
            text = text[len("file://"):] if text.startswith("file://") else text
            if not text.strip() or is_remote(text):
                continue
            src = checked_path(text, name)
            if not src.exists():
                continue
            if out == src or src in out.parents or out in src.parents:
                how = "the same directory" if out == src else "inside it" if src in out.parents else "around it"
                raise OutputError(f"{flag} {out} overlaps {name} {src} ({how}; writing there would change an input "
                                  "of this command): write the result somewhere else")


@contextmanager
def atomic_dir(target: str | os.PathLike, *, may_replace: Callable[[Path], bool] = lambda _p: False) -> Iterator[Path]:
    """Yield a fresh hidden sibling of `target` to fill; on success it is renamed to `target`.

    A non-empty `target` is replaced only when `may_replace(target)` says so; the old directory is
    moved aside first and deleted only once the new one is in place. On any failure the temporary
    directory is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _move_into_place(tmp, target, may_replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into_place(tmp: Path, target: Path, may_replace: Callable[[Path], bool]) -> None:
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target} is a file, not a directory")
    if not (target.is_dir() and _entries(target)):
        os.replace(tmp, target)  # renaming over an empty directory is atomic
        return
    if not may_replace(target):
        raise OutputError(f"{target} is not empty and raykd may not replace it")
    old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
