"""Save and reload models with uneven shapes: per-layer head counts, FFN widths, dropped layers.

A directory holds `model.safetensors` (safetensors only, never pickle; tied/shared tensors are
stored once, via `safetensors.torch.save_model`) and `config.json`: the caller's `extra_config`
plus the shape (`raykd.structures.shape`: `layer_map`, `head_map`, `ffn_map` and a map per plug-in kind, original ids kept).
Loading builds the unpruned structure with a caller-supplied function, applies the shape
(`apply_shape`: layers first), checks every tensor's shape against the file and loads strictly. Anything that does not fit raises
`ModelFormatError` naming the tensor, the expected shape and the shape found.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raykd.errors import ModelFormatError, RaykdInputError
from raykd.structures.heads.surgery import find_attention_blocks
from raykd.structures.shape import apply_shape, shape_of

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
HEAD_MAP_KEY = "head_map"
CHECKSUM_KEY = "weights_sha256"  # recorded at save time, checked at load (a torn or replaced file)


def file_sha256(path: str | os.PathLike) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_checksum(weights: Path, config: Mapping[str, Any]) -> None:
    """ModelFormatError when `config` records a weights checksum that `weights` does not have."""
    expected = config.get(CHECKSUM_KEY)
    if expected is not None and file_sha256(weights) != expected:
        raise ModelFormatError(f"{weights} does not match the checksum in {CONFIG_NAME}: the file is corrupt or was replaced")


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pruned(
    model: nn.Module, directory: str | os.PathLike, extra_config: Mapping[str, Any] | None = None
) -> Path:
    """Write `model.safetensors` and `config.json` (extra_config + shape) into `directory`.

    Each file is written atomically (temporary file + rename); other files in the directory (a
    tokenizer, say) are left alone. Returns the directory.
    """
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shape = shape_of(model)
    config = dict(extra_config or {})
    for key in shape:
        if key in config and config[key] != shape[key]:
            raise ValueError(f"extra_config has a {key!r} that differs from the model's own")
    config.update(shape)
    _atomic_write(directory / WEIGHTS_NAME, lambda p: save_model(model, p))
    config[CHECKSUM_KEY] = file_sha256(directory / WEIGHTS_NAME)
    text = json.dumps(config, indent=2, sort_keys=True)
    _atomic_write(directory / CONFIG_NAME, lambda p: Path(p).write_text(text))
    return directory


def read_pruned_config(directory: str | os.PathLike) -> dict[str, Any]:
    """config.json of a directory written by `save_pruned` (ModelFormatError if unusable)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelFormatError(f"{directory} is not a model directory (no {CONFIG_NAME})")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get(HEAD_MAP_KEY), dict):
        raise ModelFormatError(f"{path} has no '{HEAD_MAP_KEY}' (kind -> kept head ids per layer)")
    return config


def _storage_key(t: torch.Tensor) -> tuple | None:
    if t.device.type == "meta" or t.numel() == 0:
        return None
    s = t.untyped_storage()
    return (t.device, s.data_ptr(), s.nbytes())


def check_weights(model: nn.Module, weights: str | os.PathLike) -> None:
    """ModelFormatError unless the safetensors file has exactly `model`'s tensors and shapes.

    Names missing from the file are accepted when they share storage with a tensor that is in it
    (tied weights, stored once).
    """
    from safetensors import SafetensorError, safe_open

    weights = Path(weights)
    try:
        with safe_open(str(weights), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{weights} is not a readable safetensors file: {exc}") from None
    state = model.state_dict()
    owners = _block_owners(model)
    for name, tensor in state.items():  # model order: the first mismatch is the earliest tensor
        if name not in found:
            continue
        shape, expected = found[name], tuple(tensor.shape)
        if shape != expected:
            raise ModelFormatError(
                f"{weights}: tensor {name!r} has shape {list(shape)}, but the structure built from the shape maps "
                f"expects {list(expected)}{owners(name)}"
            )
    for name in found:
        if name not in state:
            raise ModelFormatError(f"{weights} has tensor {name!r}, which the model does not have")
    stored = {_storage_key(state[k]) for k in found if k in state} - {None}
    for name, t in state.items():
        if name not in found and (_storage_key(t) is None or _storage_key(t) not in stored):
            raise ModelFormatError(f"{weights} is missing tensor {name!r} (shape {list(t.shape)})")


def _block_owners(model: nn.Module) -> Callable[[str], str]:
    """A note naming the structure a tensor belongs to, for shape-mismatch messages."""
    from raykd.structures.ffn import find_ffn_blocks

    try:
        blocks = find_attention_blocks(model)
    except RaykdInputError:  # a model without attention still gets plain messages
        blocks = []
    linears = {}
    for f in find_ffn_blocks(model):
        for lin in (f.up, f.down):
            linears[id(lin)] = f
    ffn_names = {name: linears[id(m)] for name, m in model.named_modules() if id(m) in linears}

    def owner(name: str) -> str:
        for b in blocks:
            if name.startswith(b.name + "."):
                return f" ({b.kind} layer {b.layer}: {b.num_heads} heads of width {b.head_dim}, ids {b.head_ids})"
        module = name.rsplit(".", 1)[0]
        if module in ffn_names:
            f = ffn_names[module]
            return f" ({f.kind} layer {f.layer}: {f.width} channels)"
        return ""

    return owner


def load_state_with_shape(
    model: nn.Module, directory: str | os.PathLike, *, config: Mapping[str, Any] | None = None
) -> nn.Module:
    """Shrink a freshly built `model` to the shape in `config` (default: the directory's
    config.json), then load the directory's weights strictly. Returns `model`."""
    from safetensors.torch import load_model

    directory = Path(directory)
    if config is None:
        config = read_pruned_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelFormatError(f"{directory} has no {WEIGHTS_NAME}")
    apply_shape(model, config)
    check_weights(model, weights)
    check_checksum(weights, config)
    try:
        load_model(model, str(weights), strict=True)
    except RuntimeError as exc:  # check_weights should have caught it; keep the contract anyway
        raise ModelFormatError(f"{weights} does not match the model: {str(exc).splitlines()[-1].strip()}") from None
    return model


def load_pruned(
    directory: str | os.PathLike, build: Callable[[dict[str, Any]], nn.Module]
) -> tuple[nn.Module, dict[str, Any]]:
    """(model, config): `build(config)` makes the unpruned structure, then shape + weights."""
    config = read_pruned_config(directory)
    model = build(config)
    load_state_with_shape(model, directory, config=config)
    return model, config
