"""Tiny random decoder-only LLMs for the family tests (test_llama_family, test_family_example):
one shape, one left-padded batch, one logits helper, so both build their models the same way.
Nothing is downloaded."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

TINY_SHAPE = {"vocab_size": 61, "hidden_size": 32, "intermediate_size": 24, "num_hidden_layers": 3, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 64, "tie_word_embeddings": False}


def tiny_causal_lm(config: PretrainedConfig, seed: int = 0, *, random_biases: bool = False) -> nn.Module:
    """A seeded random model of `config` in eval mode; `random_biases` makes zero-initialised biases count."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    if random_biases:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear) and m.bias is not None:
                    m.bias.normal_(0, 0.5)
    return model


def left_padded_batch(vocab_size: int, *, lowest_id: int = 0) -> dict[str, torch.Tensor]:
    """Two rows of 9 ids, the second left-padded by 3, as generation batches are."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(lowest_id, vocab_size, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    return {"input_ids": ids, "attention_mask": mask}


def logits_of(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def from_base_config(config: dict) -> nn.Module:
    """`load_pruned`'s builder for a model saved with `extra_config={"base_config": ...}`: the
    unpruned model of that stock config, which raykd's saved shape then shrinks."""
    cfg = dict(config["base_config"])
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
