"""Save and load solvers as HF-style directories: config.json + model.safetensors + tokenizer.

config.json records the encoder's HF config, the decoder shape, the output vocabulary and the head
map (kept original head ids per attention kind and layer), so a pruned solver with uneven head
counts is rebuilt with exactly its structure before its weights are loaded (strictly, with
safetensors: never pickle).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from raykd.errors import ModelFormatError
from raykd.task.model import DecoderConfig, SolverModel
from raykd.task.vocab import OutputVocab

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_KIND = "raykd-mwp-solver"
FORMAT_VERSION = 1


def solver_config(model: SolverModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from raykd.heads import head_map

    return {
        "model_kind": MODEL_KIND,
        "format_version": FORMAT_VERSION,
        "encoder_config": model.encoder.config.to_dict(),
        "decoder": model.decoder_config.to_dict(),
        "vocab": model.vocab.to_dict(),
        "head_map": head_map(model),
        **(extra or {}),
    }


def save_solver(model: SolverModel, tokenizer: Any, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the solver atomically: into a temporary sibling, then renamed into place."""
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (tmp / CONFIG_NAME).write_text(json.dumps(solver_config(model, extra), indent=2, sort_keys=True))
        save_model(model, str(tmp / WEIGHTS_NAME))
        tokenizer.save_pretrained(str(tmp))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_solver_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelFormatError(f"{directory} is not a raykd model directory (no {CONFIG_NAME})")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc}") from None
    if config.get("model_kind") != MODEL_KIND:
        raise ModelFormatError(f"{directory} holds no raykd solver (model_kind={config.get('model_kind')!r})")
    return config


def build_solver(config: dict[str, Any]) -> SolverModel:
    """An untrained solver with exactly the structure `config` describes (head map included)."""
    from transformers import AutoConfig, AutoModel

    from raykd.heads import apply_head_map

    enc_cfg = dict(config["encoder_config"])
    encoder_config = AutoConfig.for_model(enc_cfg.pop("model_type"), **enc_cfg)
    try:
        encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False)
    except TypeError:
        encoder = AutoModel.from_config(encoder_config)
    model = SolverModel(encoder, OutputVocab.from_dict(config["vocab"]), DecoderConfig(**config["decoder"]))
    if config.get("head_map"):
        apply_head_map(model, config["head_map"])
    return model


def load_solver(directory: str | Path) -> tuple[SolverModel, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, config) from a directory written by `save_solver`."""
    from safetensors.torch import load_model
    from transformers import AutoTokenizer

    directory = Path(directory)
    config = read_solver_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelFormatError(f"{directory} has no {WEIGHTS_NAME}")
    model = build_solver(config)
    try:
        load_model(model, str(weights), strict=True)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line or "Missing" in line or "Unexpected" in line), str(exc).splitlines()[0])
        raise ModelFormatError(f"{weights} does not match the structure in {CONFIG_NAME} (head map): {first}") from None
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    return model.eval(), tokenizer, config


class SolverIO:
    """`ModelIO` for the chain: solvers saved with the tokenizer they were trained with."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def save(self, model: SolverModel, directory: Path, extra: dict[str, Any]) -> None:
        save_solver(model, self.tokenizer, directory, extra)

    def load(self, directory: Path) -> SolverModel:
        return load_solver(directory)[0]
