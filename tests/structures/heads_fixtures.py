"""Small random models for the head-surgery tests (fp32, CPU, eval mode)."""

from __future__ import annotations

import torch
from torch import nn

from raykd.nn import MultiHeadAttention

# Uneven counts in every layer, one whole block removed.
BERT_LIKE_SPEC = {"encoder_self": {0: [1], 1: [0, 1, 2, 3], 2: [0, 3]}}

SMALL = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}


def tiny_hf(family: str = "bert", impl: str = "sdpa", **overrides) -> nn.Module:
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    torch.manual_seed(0)
    if family == "bert":
        cfg = BertConfig(**{**SMALL, **overrides}, attn_implementation=impl)
        return BertModel(cfg).eval()
    if family == "roberta":
        cfg = RobertaConfig(**{**SMALL, "max_position_embeddings": 40, **overrides}, attn_implementation=impl)
        return RobertaModel(cfg).eval()
    raise ValueError(family)


def hf_inputs(batch: int = 2, length: int = 9, vocab: int = 100) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, length - 3 :] = 0  # padding in the second sequence
    return {"input_ids": ids, "attention_mask": mask}


class ToyDecoder(nn.Module):
    """A stack of raykd MultiHeadAttention layers: causal self-attention, cross-attention, FFN."""

    def __init__(self, d: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(layers):
            layer = nn.Module()
            layer.self_attn = MultiHeadAttention(d, heads, kind="decoder_self")
            layer.cross_attn = MultiHeadAttention(d, heads, kind="decoder_cross")
            layer.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
            self.layers.append(layer)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer.self_attn(x, causal=True)[0]
            x = x + layer.cross_attn(x, memory, key_padding_mask=memory_mask)[0]
            x = x + layer.ffn(x)
        return x


def toy_decoder(**kw) -> ToyDecoder:
    torch.manual_seed(0)
    return ToyDecoder(**kw).eval()


def toy_inputs(batch: int = 2, lq: int = 5, lk: int = 7, d: int = 32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, lq, d, generator=g)
    memory = torch.randn(batch, lk, d, generator=g)
    mask = torch.ones(batch, lk, dtype=torch.bool)
    mask[0, lk - 2 :] = False
    return x, memory, mask


class Seq2Seq(nn.Module):
    """A BERT encoder + a raykd decoder: all three kinds in one model."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = tiny_hf("bert", "sdpa")
        self.bridge = nn.Linear(64, 32)
        self.decoder = toy_decoder()

    def forward(self, input_ids, attention_mask, x):
        memory = self.bridge(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)
        return self.decoder(x, memory, attention_mask.bool())


def seq2seq_inputs():
    return {**hf_inputs(2, 7), "x": toy_inputs(2, 5, 7)[0]}


def assert_rel_close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    assert a.shape == b.shape, f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    if a.numel() == 0:
        return
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-12)
    err = (a - b).abs().max().item()
    assert err <= rel * scale, f"max abs diff {err:.3e} > {rel:g} * {scale:.3e}"
