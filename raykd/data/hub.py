"""Data specs that name a Hugging Face dataset (`hf:NAME[:CONFIG][@REVISION]`): a local copy to read.

`datasets.load_dataset` fetches the dataset (from the hub, or its own cache when offline with
`HF_HUB_OFFLINE=1`; NAME may also be a local directory of data files that `datasets` reads:
JSON lines, CSV, Parquet). Its train, validation (or valid/dev) and test splits are written as
JSON lines to raykd's cache (`$RAYKD_CACHE/data/hf/<key>/`, key = a hash of the rows), which the
readers then treat like any split directory: the format is detected from the columns (GSM8K's
question/answer, SVAMP's Body/Question/Equation/Answer, ...) or named (`gsm8k:hf:openai/gsm8k:main`).
Other splits are left out, and said to be. Every failure is one `DataError` line naming the spec.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from raykd.data.remote import cache_root
from raykd.errors import DataError, first_line
from raykd.network import host_port, unreachable

HUB_PREFIX = "hf:"
SPLIT_NAMES: dict[str, str] = {"train": "train", "validation": "valid", "valid": "valid", "dev": "valid", "test": "test"}
"""Hub split name -> the split file raykd's readers look for."""

_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def hub_url() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def offline_unless_reachable() -> bool:
    """Whether the hub is read offline (from its cache only); True when already so
    (`HF_HUB_OFFLINE=1`) or when the hub cannot be reached within a few seconds: then
    `HF_HUB_OFFLINE=1` is set for this process and the Ray workers it starts.

    Without it, a missing network meant the hub client's five retries (about 50 s) before the
    one line that a model or dataset is not available; offline, a cached model still loads."""
    from huggingface_hub import constants  # deferred: huggingface_hub; `raykd` start-up imports raykd.data

    if constants.HF_HUB_OFFLINE:
        return True

    url = hub_url()
    try:
        where = host_port(url, 443 if url.startswith("https") else 80)
    except ValueError:
        where = None
    if where is not None and unreachable(*where) is None:
        return False

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True  # read at import time by huggingface_hub ...
    config = sys.modules.get("datasets.config")
    if config is not None:  # ... and by datasets
        config.HF_HUB_OFFLINE = config.HF_DATASETS_OFFLINE = True
    return True


@dataclass(frozen=True)
class HubSpec:
    """`hf:NAME[:CONFIG][@REVISION]`, parsed."""

    name: str
    config: str | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        if not (_HUB_NAME.fullmatch(self.name) or Path(self.name).is_dir()):
            raise DataError(f"bad hub data spec hf:{self.name}: NAME must be a hub id (owner/name) or a local directory")
        if self.config is not None and not re.fullmatch(r"[\w.-]+", self.config):
            raise DataError(f"bad hub data spec: config {self.config!r} is not a dataset config name")


def is_hub_spec(text: str) -> bool:
    return text.startswith(HUB_PREFIX)


def parse_hub_spec(spec: str) -> HubSpec:
    body = spec[len(HUB_PREFIX):]
    body, _, revision = body.partition("@")
    name, _, config = body.partition(":")
    if not name:
        raise DataError(f"data spec {spec!r} names no dataset; expected hf:NAME[:CONFIG][@REVISION]")
    return HubSpec(name, config or None, revision or None)


def _load(spec: HubSpec) -> Any:
    try:
        import datasets  # deferred: datasets (~1 s); `raykd` start-up imports raykd.data
    except ImportError:
        raise DataError("hf: data specs need the `datasets` package (pip install datasets)") from None
    if not Path(spec.name).is_dir():
        offline_unless_reachable()  # a bounded check first: no retries of an unreachable hub
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(spec.name, spec.config, revision=spec.revision)
    except Exception as exc:  # noqa: BLE001 - offline, not found, bad config, unreadable files: all one line
        raise DataError(f"cannot load hub dataset {spec.name}"
                        f"{':' + spec.config if spec.config else ''}: {first_line(exc)}") from None


def local_copy(spec_text: str, log: Callable[[str], Any] | None = None) -> Path:
    """A directory of `train/valid/test.jsonl` holding the dataset's rows (see the module doc)."""
    spec = parse_hub_spec(spec_text)
    loaded = _load(spec)
    splits = dict(loaded) if hasattr(loaded, "keys") else {"train": loaded}
    kept = {SPLIT_NAMES[name]: data for name, data in splits.items() if name in SPLIT_NAMES}
    if not kept:
        raise DataError(f"hub dataset {spec.name} has splits {sorted(splits)}, none of train/validation/test")
    left_out = sorted(set(splits) - {n for n in splits if n in SPLIT_NAMES})
    if left_out and log is not None:
        log(f"hub dataset {spec.name}: splits {left_out} are not read (raykd reads train, validation, test)")
    root = cache_root() / "hf"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
    try:
        digest = hashlib.sha256()
        for name in sorted(kept):
            path = tmp / f"{name}.jsonl"
            try:
                kept[name].to_json(str(path), lines=True, force_ascii=False)
            except (TypeError, ValueError, OSError) as exc:  # columns JSON cannot hold (images, audio)
                raise DataError(f"hub dataset {spec.name}: cannot write its {name} split as JSON: {first_line(exc)}") from None
            digest.update(name.encode() + b"\0" + path.read_bytes())
        target = root / digest.hexdigest()[:20] / (spec.name.rstrip("/").rsplit("/", 1)[-1] or "data")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, target)
            except OSError:  # another process wrote the same rows first
                if not target.exists():
                    raise
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
