"""raykd's own decoder (`raykd.nn`: the equation solver's expression decoder).

- heads: `raykd.nn.MultiHeadAttention` (self- or cross-attention, its `kind` attribute says which;
  it already runs with zero heads: `raykd.structures.heads.mha`);
- FFN channels: `raykd.nn.FeedForward` (`up` -> `down`; an `nn.Sequential`, so its state-dict
  keys are those of the models saved before it existed);
- layers: a ModuleList of `raykd.nn.DecoderLayer`s ("decoder_layers"; nothing numbers them);
- stock config: none (the decoder is raykd's own module).
"""

from __future__ import annotations

from torch import nn

from raykd.nn.decoder import DecoderLayer, FeedForward
from raykd.structures.family import Family, register_family
from raykd.structures.ffn import FFNAdapter
from raykd.structures.heads.mha import RaykdMHAAdapter
from raykd.structures.layers import LayerAdapter


class RaykdFFN(FFNAdapter):
    family = "raykd"
    supports = "raykd.nn.FeedForward"

    def match(self, module: nn.Module) -> str | None:
        return module.kind if isinstance(module, FeedForward) else None

    def linears(self, module: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        return module.up, module.down


class RaykdDecoderLayers(LayerAdapter):
    supports = "raykd.nn.DecoderLayer"

    def match(self, module: nn.Module) -> bool:
        return isinstance(module, DecoderLayer)

    def stack_kind(self, stack: nn.ModuleList) -> str:
        return "decoder_layers"


FAMILY = register_family(Family(
    name="raykd_nn",
    supports="raykd.nn (the solver's decoder)",
    structures={"heads": (RaykdMHAAdapter(),), "ffn": (RaykdFFN(),), "layers": (RaykdDecoderLayers(),)},
))
