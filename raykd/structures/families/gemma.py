"""Gemma (Google; `GemmaForCausalLM`): a Llama-layout family, so this one call is all it needs.

`GemmaAttention` has `q_proj/k_proj/v_proj/o_proj` with an explicit `head_dim` and grouped-query
K/V heads, `GemmaMLP` a gated `gate_proj`, `up_proj` -> `down_proj`, and `model.layers` holds
`GemmaDecoderLayer`s numbered by `layer_idx` (`raykd.structures.families.llama` says what each of
those means for pruning). Gemma's differences from Llama (an RMSNorm scaled by 1 + w, embeddings
scaled by sqrt(hidden), GELU in the MLP) are all outside what is sliced.
"""

from raykd.structures.families.llama import llama_layout
from raykd.structures.family import register_family

FAMILY = register_family(llama_layout("gemma", "Gemma", {"gemma": "Gemma"}))
