"""Save and load pruned Transformers models (any shape, any `AutoModel*` head) as directories:
raykd's shape maps over the unpruned config, weights in safetensors.

`config.json` holds the unpruned model's Transformers config (`base_config`), the Auto class that
builds it (`auto_class`, e.g. AutoModelForCausalLM, AutoModelForSequenceClassification), a
`model_kind` and the shape maps (`raykd.structures.serialization`). Loading builds the unpruned
architecture from `base_config` (no weights downloaded), applies the shape and loads strictly,
checking the recorded checksum. A tokenizer saved beside it is loaded with it. Task plug-ins use
`HFModelIO` as their `ModelIO` (docs/tasks.md); a uniform shape can instead be written as a stock
directory (`raykd.structures.hf_export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from raykd.errors import ModelFormatError, first_line
from raykd.structures.serialization import load_pruned, read_pruned_config, save_pruned

BASE_CONFIG = "base_config"
AUTO_CLASS = "auto_class"
CAUSAL_LM_KIND = "raykd-causal-lm"  # in raykd.outputs.MODEL_KINDS: a directory raykd may replace with --force
HF_MODEL_KIND = "raykd-hf-model"


def build_hf_model(config: dict[str, Any]) -> nn.Module:
    """The unpruned architecture of a saved model, randomly initialised."""
    import transformers  # deferred: transformers (~2 s), only when a model is built

    base = config.get(BASE_CONFIG)
    if not isinstance(base, dict) or "model_type" not in base:
        raise ModelFormatError(f"the model config has no {BASE_CONFIG!r} with a model_type: not a raykd Transformers model")
    name = config.get(AUTO_CLASS, "AutoModelForCausalLM")
    auto = getattr(transformers, name, None) if isinstance(name, str) and name.startswith("AutoModel") else None
    if auto is None:
        raise ModelFormatError(f"the model config's {AUTO_CLASS} {name!r} is not a Transformers AutoModel class")
    base = dict(base)
    return auto.from_config(transformers.AutoConfig.for_model(base.pop("model_type"), **base))


class HFModelIO:
    """`ModelIO` for the chain: every round's model with its unpruned config (and tokenizer)."""

    def __init__(self, base_config: dict[str, Any], tokenizer: Any = None, *, auto_class: str = "AutoModelForCausalLM",
                 model_kind: str = HF_MODEL_KIND) -> None:
        self.base_config = dict(base_config)
        self.tokenizer = tokenizer
        self.auto_class = auto_class
        self.model_kind = model_kind

    def save(self, model: nn.Module, directory: Path, extra: dict[str, Any]) -> None:
        save_pruned(model, directory, extra_config={"model_kind": self.model_kind, BASE_CONFIG: self.base_config,
                                                    AUTO_CLASS: self.auto_class, **extra})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(directory))

    def load(self, directory: Path) -> nn.Module:
        return load_pruned(directory, build_hf_model)[0].eval()

    @classmethod
    def open(cls, directory: str | Path, *, tokenizer: bool = True) -> tuple[nn.Module, Any, "HFModelIO"]:
        """(model in eval mode, its tokenizer or None, the IO that saves its descendants) from a
        directory an `HFModelIO` wrote; ModelFormatError (one line) for anything else."""
        directory = Path(directory)
        config = read_pruned_config(directory)
        if not isinstance(config.get(BASE_CONFIG), dict):
            raise ModelFormatError(f"{directory} holds no raykd Transformers model (no {BASE_CONFIG!r} in its config.json)")
        tok = _tokenizer(directory) if tokenizer else None
        io = cls(config[BASE_CONFIG], tok, auto_class=str(config.get(AUTO_CLASS, "AutoModelForCausalLM")),
                 model_kind=str(config.get("model_kind", HF_MODEL_KIND)))
        return io.load(directory), tok, io


def CausalLMIO(base_config: dict[str, Any], tokenizer: Any = None) -> HFModelIO:  # noqa: N802  (a constructor)
    """The `HFModelIO` of a causal LM (`raykd-causal-lm` directories)."""
    return HFModelIO(base_config, tokenizer, auto_class="AutoModelForCausalLM", model_kind=CAUSAL_LM_KIND)


def _tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer  # deferred: transformers (~2 s), only when a tokenizer is loaded

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # OSError, ValueError, tokenizers' Rust errors: no common base
        raise ModelFormatError(f"{directory} has no loadable tokenizer: {first_line(exc)}") from None
