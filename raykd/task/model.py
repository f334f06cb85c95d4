"""The MWP solver: a Hugging Face encoder plus a small expression decoder.

The decoder is a stack of pre-LayerNorm `raykd.nn.DecoderLayer`s (self-attention, cross-attention,
FFN), so its heads, FFN channels and layers are real structures that raykd scores and prunes like
the encoder's. It generates a prefix expression over operators, constants and number
slots; a slot Nk is embedded from, and scored against, the encoder state at the k-th number of the
text (a pointer), so the values the encoder read are what the decoder copies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from raykd.nn.decoder import DecoderLayer, LayerCache
from raykd.task.vocab import OutputVocab


@dataclass(frozen=True)
class DecoderConfig:
    """Shape of the expression decoder; validated on construction."""

    d_model: int
    num_layers: int = 2
    num_heads: int = 8
    ffn_dim: int = 0  # 0: 4 * d_model
    dropout: float = 0.1
    max_len: int = 40

    def __post_init__(self) -> None:
        if self.d_model <= 0 or self.num_layers <= 0 or self.num_heads <= 0:
            raise ValueError("decoder d_model, num_layers and num_heads must be positive")
        if self.d_model % self.num_heads:
            raise ValueError(f"decoder d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"decoder dropout must be in [0, 1), got {self.dropout}")
        if self.max_len < 1:
            raise ValueError("decoder max_len must be >= 1")

    @property
    def ffn(self) -> int:
        return self.ffn_dim or 4 * self.d_model

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DecoderState:
    """What cached decoding carries between steps (`select` reorders rows for beam search)."""

    layers: tuple[LayerCache, ...]
    pointer_keys: torch.Tensor  # (B, M, d): the number slots' pointer keys, computed once
    length: int  # tokens fed so far, BOS included: the next token's position

    def select(self, index: torch.Tensor) -> "DecoderState":
        return DecoderState(tuple(c.select(index) for c in self.layers), self.pointer_keys[index], self.length)


@dataclass
class EncodedProblem:
    """What the decoder needs from the encoder, computed once per problem batch."""

    memory: torch.Tensor  # (B, L, d) encoder states projected to the decoder width
    memory_mask: torch.Tensor  # (B, L) True at real tokens
    numbers: torch.Tensor  # (B, M, d) states at each number's first token
    number_mask: torch.Tensor  # (B, M) True where the problem has that number

    def select(self, index: torch.Tensor) -> "EncodedProblem":
        """Rows `index` (for beam search)."""
        return EncodedProblem(self.memory[index], self.memory_mask[index], self.numbers[index], self.number_mask[index])


class SolverModel(nn.Module):
    """Encoder + expression decoder. `forward` returns logits (B, T, |vocab|)."""

    def __init__(self, encoder: nn.Module, vocab: OutputVocab, decoder: DecoderConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.vocab = vocab
        self.decoder_config = decoder
        d = decoder.d_model
        hidden = int(encoder.config.hidden_size)
        self.memory_proj: nn.Module = nn.Linear(hidden, d) if hidden != d else nn.Identity()
        self.token_embedding = nn.Embedding(vocab.num_fixed, d)
        self.position_embedding = nn.Embedding(decoder.max_len + 1, d)
        self.number_input = nn.Linear(d, d)
        self.layers = nn.ModuleList(DecoderLayer(d, decoder.num_heads, decoder.ffn, decoder.dropout)
                                    for _ in range(decoder.num_layers))
        self.final_norm = nn.LayerNorm(d)
        self.fixed_head = nn.Linear(d, vocab.num_fixed)
        self.pointer_query = nn.Linear(d, d)
        self.pointer_key = nn.Linear(d, d)
        never = torch.zeros(vocab.num_fixed, dtype=torch.bool)
        never[[vocab.pad_id, vocab.bos_id]] = True
        self.register_buffer("_never_predicted", never, persistent=False)

    # -- encoder side -------------------------------------------------------------------------
    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        number_positions: torch.Tensor,
        number_mask: torch.Tensor,
    ) -> EncodedProblem:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        memory = self.memory_proj(states)
        index = number_positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, memory.shape[-1])
        numbers = memory.gather(1, index)
        return EncodedProblem(memory, attention_mask.bool(), numbers, number_mask.bool())

    # -- decoder side -------------------------------------------------------------------------
    def decode(self, enc: EncodedProblem, decoder_input: torch.Tensor) -> torch.Tensor:
        """Logits for the next token at every position of `decoder_input` (B, T): the
        teacher-forced pass training and distillation use."""
        positions = torch.arange(decoder_input.shape[1], device=decoder_input.device)
        x = self._embed(enc, decoder_input, positions)
        for layer in self.layers:
            x = layer(x, enc.memory, enc.memory_mask)
        return self._logits(enc, self.final_norm(x), self.pointer_key(enc.numbers))

    def start_decoding(self, enc: EncodedProblem) -> DecoderState:
        """The state before the first step: cross-attention keys/values and pointer keys of the
        encoder memory, computed once, and empty self-attention caches."""
        layers = tuple(layer.start_cache(enc.memory) for layer in self.layers)
        return DecoderState(layers, self.pointer_key(enc.numbers), 0)

    def decode_step(
        self, enc: EncodedProblem, state: DecoderState, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, DecoderState]:
        """Next-token logits (B, V) after feeding `tokens` (B,) at position `state.length`, and
        the state after it. Equals `decode` on the whole prefix (tested), at one token's cost."""
        positions = torch.full((1,), state.length, dtype=torch.long, device=tokens.device)
        x = self._embed(enc, tokens.unsqueeze(1), positions)
        caches = []
        for layer, cache in zip(self.layers, state.layers):
            x, cache = layer.step(x, cache, enc.memory_mask)
            caches.append(cache)
        logits = self._logits(enc, self.final_norm(x), state.pointer_keys)[:, 0]
        return logits, DecoderState(tuple(caches), state.pointer_keys, state.length + 1)

    def _embed(self, enc: EncodedProblem, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        nf = self.vocab.num_fixed
        fixed = self.token_embedding(ids.clamp(max=nf - 1))
        slot = (ids - nf).clamp(min=0).unsqueeze(-1).expand(-1, -1, enc.numbers.shape[-1])
        number = self.number_input(enc.numbers.gather(1, slot))
        return torch.where((ids >= nf).unsqueeze(-1), number, fixed) + self.position_embedding(positions)

    def _logits(self, enc: EncodedProblem, h: torch.Tensor, pointer_keys: torch.Tensor) -> torch.Tensor:
        pointer = self.pointer_query(h) @ pointer_keys.transpose(1, 2) / math.sqrt(h.shape[-1])
        logits = torch.cat([self.fixed_head(h), pointer], dim=-1)
        invalid = torch.cat([self._never_predicted.expand(enc.number_mask.shape[0], -1), ~enc.number_mask], dim=1)
        return logits.masked_fill(invalid.unsqueeze(1), torch.finfo(logits.dtype).min / 4)

    def linear_tokens(self, name: str, decoder_len: int) -> int | None:
        """Tokens per sequence each non-attention Linear sees in `forward` (for analytic FLOPs);
        None for encoder Linears (the default rule: every input token)."""
        if name.startswith(("layers.", "fixed_head", "pointer_query", "number_input")):
            return decoder_len
        if name.startswith("pointer_key"):
            return self.vocab.max_numbers
        return None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        number_positions: torch.Tensor,
        number_mask: torch.Tensor,
        decoder_input: torch.Tensor,
        **_: torch.Tensor,
    ) -> torch.Tensor:
        enc = self.encode(input_ids, attention_mask, number_positions, number_mask)
        return self.decode(enc, decoder_input)
