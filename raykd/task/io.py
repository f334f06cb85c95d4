"""Save and load solvers as HF-style directories: config.json + model.safetensors + tokenizer.

config.json records the encoder's HF config, the decoder shape, the output vocabulary and the shape
maps (kept original layer, head and FFN channel ids; `raykd.structures.shape`), so a pruned solver
with uneven shapes is rebuilt with exactly its structure before its weights are loaded (strictly, with
safetensors: never pickle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model

from raykd.errors import ModelFormatError, first_line
from raykd.outputs import atomic_dir, is_model_dir
from raykd.structures import apply_shape, shape_of
from raykd.structures.hidden import unpruned_config
from raykd.structures.serialization import (
    check_checksum,
    check_weights,
    file_sha256,  # noqa: F401  (also raykd.task.io.file_sha256)
)
from raykd.task.model import DecoderConfig, SolverModel
from raykd.task.vocab import OutputVocab

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
MODEL_KIND = "raykd-mwp-solver"
FORMAT_VERSION = 1
CHECKSUM_KEY = "weights_sha256"  # = raykd.structures.serialization.CHECKSUM_KEY


def solver_config(model: SolverModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "model_kind": MODEL_KIND,
        "format_version": FORMAT_VERSION,
        "encoder_config": model.encoder.config.to_dict(),
        "decoder": model.decoder_config.to_dict(),
        "vocab": model.vocab.to_dict(),
        **shape_of(model),  # layer_map, head_map, ffn_map: what was removed, by original ids
        **(extra or {}),
    }


def save_solver(model: SolverModel, tokenizer: Any, directory: str | Path, extra: dict[str, Any] | None = None,
                *, replace: bool = False) -> Path:
    """Write the solver atomically: into a temporary sibling, then renamed into place.

    An existing non-empty `directory` is replaced only with `replace=True` and only when it holds
    a raykd model (`raykd.outputs`); anything else there raises `OutputError` and is left alone.
    config.json (written last) records the weights' SHA-256, which `load_solver` checks.
    """
    directory = Path(directory)
    with atomic_dir(directory, may_replace=lambda p: replace and is_model_dir(p)) as tmp:
        save_model(model, str(tmp / WEIGHTS_NAME))
        tokenizer.save_pretrained(str(tmp))
        config = {**solver_config(model, extra), CHECKSUM_KEY: file_sha256(tmp / WEIGHTS_NAME)}
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def read_solver_config(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not directory.exists():
        raise ModelFormatError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelFormatError(f"{directory} is a file, not a model directory")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ModelFormatError(f"{directory} is not a raykd model directory (no {CONFIG_NAME})")
    try:
        config = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise ModelFormatError(f"{path} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(config, dict) or config.get("model_kind") != MODEL_KIND:
        kind = config.get("model_kind") if isinstance(config, dict) else None
        hint = " (a causal LM: use --task causal-lm)" if kind == "raykd-causal-lm" else ""
        raise ModelFormatError(f"{directory} holds no raykd solver (model_kind={kind!r}){hint}")
    for key, kind in (("encoder_config", dict), ("decoder", dict), ("vocab", dict)):
        if not isinstance(config.get(key), kind):
            raise ModelFormatError(f"{path} has no valid {key!r}: not a complete raykd solver config")
    return config


def build_solver(config: dict[str, Any]) -> SolverModel:
    """An untrained solver with exactly the structure `config` describes (its shape maps applied)."""
    from transformers import AutoConfig, AutoModel  # deferred: transformers (~2 s), only when a solver is built

    enc_cfg = dict(config["encoder_config"])
    if config.get("hidden_map"):  # the encoder config holds the pruned hidden size: build the unpruned one

        enc_cfg = unpruned_config(enc_cfg, config["hidden_map"])
    encoder_config = AutoConfig.for_model(enc_cfg.pop("model_type"), **enc_cfg)
    try:
        encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False)
    except TypeError:
        encoder = AutoModel.from_config(encoder_config)
    model = SolverModel(encoder, OutputVocab.from_dict(config["vocab"]), DecoderConfig(**config["decoder"]))
    return apply_shape(model, config)


def load_solver(directory: str | Path) -> tuple[SolverModel, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, config) from a directory written by `save_solver`.

    Verified before use: the config describes a solver, the weights are a readable safetensors
    file with the checksum recorded at save time and exactly the shapes of that structure, and the
    tokenizer is there and loads. Anything else is one `ModelFormatError` line naming the problem.
    """
    directory = Path(directory)
    config = read_solver_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelFormatError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        model = build_solver(config)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ModelFormatError(f"{directory / CONFIG_NAME} does not describe a buildable solver: {first_line(exc)}") from None
    check_weights(model, weights)  # readable, and every tensor's shape as the structure expects
    check_checksum(weights, config)
    try:
        load_model(model, str(weights), strict=True)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line or "Missing" in line or "Unexpected" in line), str(exc).splitlines()[0])
        raise ModelFormatError(f"{weights} does not match the structure in {CONFIG_NAME} (shape maps): {first}") from None
    return model.eval(), load_tokenizer(directory), config


def load_tokenizer(directory: Path) -> Any:
    """The fast tokenizer saved beside the model (`tokenizer.json`): ModelFormatError if absent or broken."""
    from transformers import AutoTokenizer  # deferred: transformers (~2 s), only when a tokenizer is loaded

    if not (directory / TOKENIZER_NAME).is_file():
        raise ModelFormatError(f"{directory} has no {TOKENIZER_NAME} (the tokenizer the model was trained with)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # OSError, ValueError, tokenizers' Rust errors (a torn tokenizer.json): no common base
        raise ModelFormatError(f"{directory / TOKENIZER_NAME} cannot be loaded: {first_line(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelFormatError(f"{directory} has no fast tokenizer (needed for number offsets)")
    return tokenizer


class SolverIO:
    """`ModelIO` for the chain: solvers saved with the tokenizer they were trained with."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def save(self, model: SolverModel, directory: Path, extra: dict[str, Any]) -> None:
        save_solver(model, self.tokenizer, directory, extra, replace=True)  # a chain owns its round dirs

    def load(self, directory: Path) -> SolverModel:
        return load_solver(directory)[0]
