"""Save and load pruned causal LMs (any shape) as directories: raykd's shape maps over the
unpruned config.

`config.json` holds the unpruned model's Transformers config (`base_config`) and the shape maps
(`raykd.structures.serialization`); the weights are safetensors. Loading builds the unpruned
architecture from `base_config` (no weights downloaded), applies the shape and loads strictly. A
uniform shape can instead be written as a stock directory (`raykd.structures.hf_export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from raykd.errors import ModelFormatError

BASE_CONFIG = "base_config"


def build_causal_lm(config: dict[str, Any]) -> nn.Module:
    """The unpruned architecture of a saved causal LM, randomly initialised."""
    from transformers import AutoConfig, AutoModelForCausalLM

    base = config.get(BASE_CONFIG)
    if not isinstance(base, dict) or "model_type" not in base:
        raise ModelFormatError(f"the model config has no {BASE_CONFIG!r} with a model_type: not a raykd causal LM")
    base = dict(base)
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(base.pop("model_type"), **base))


class CausalLMIO:
    """`ModelIO` for the chain: every round's model with its unpruned config (and tokenizer)."""

    def __init__(self, base_config: dict[str, Any], tokenizer: Any = None) -> None:
        self.base_config = dict(base_config)
        self.tokenizer = tokenizer

    def save(self, model: nn.Module, directory: Path, extra: dict[str, Any]) -> None:
        from raykd.structures.serialization import save_pruned

        save_pruned(model, directory, extra_config={BASE_CONFIG: self.base_config, **extra})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(directory))

    def load(self, directory: Path) -> nn.Module:
        from raykd.structures.serialization import load_pruned

        return load_pruned(directory, build_causal_lm)[0].eval()
