"""The BERT family of transformers encoders: where each prunable structure lives.

BERT (MiniLM checkpoints are BertModels), RoBERTa, XLM-RoBERTa, CamemBERT and ELECTRA, whose layer
code is the same in transformers 5 (classes matched by name, subclasses included):

- heads: each `<Prefix>Attention` (`.self.query/key/value`, `.output.dense`), with whole-block
  removal through an "empty" attention class (`raykd.structures.heads.bert`);
- FFN channels: each `<Prefix>Layer`'s `intermediate.dense` -> `output.dense`;
- layers: a ModuleList of `<Prefix>Layer`s ("encoder_layers", "decoder_layers" for a causal
  decoder); nothing numbers them, so nothing is renumbered after a drop;
- stock config: `num_hidden_layers` and `intermediate_size` (`hf_export.encoder_shape`).
"""

from __future__ import annotations

from torch import nn

from raykd.structures.family import Family, class_in, register_family, transformers_classes
from raykd.structures.ffn import FFNAdapter
from raykd.structures.heads.bert import BertFamilyAdapter
from raykd.structures.hf_export import encoder_shape
from raykd.structures.layers import LayerAdapter

CLASSES: dict[str, str] = {
    "bert": "Bert",
    "roberta": "Roberta",
    "xlm_roberta": "XLMRoberta",
    "camembert": "Camembert",
    "electra": "Electra",
}
"""transformers module name -> class prefix of each BERT-family model."""
SUPPORTS = "BERT/RoBERTa/XLM-RoBERTa/CamemBERT/ELECTRA"

_LAYERS = transformers_classes(CLASSES, "Layer")


def is_bert_family_layer(module: nn.Module) -> bool:
    return class_in(type(module), _LAYERS)


class BertFamilyFFN(FFNAdapter):
    family = "bert"
    supports = f"{SUPPORTS} layers (transformers)"

    def match(self, module: nn.Module) -> str | None:
        if not is_bert_family_layer(module):
            return None
        return "decoder_ffn" if getattr(module, "is_decoder", False) else "encoder_ffn"

    def linears(self, module: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        return module.intermediate.dense, module.output.dense


class BertFamilyLayers(LayerAdapter):
    supports = "BERT-family encoder layers"

    def match(self, module: nn.Module) -> bool:
        return is_bert_family_layer(module)

    def stack_kind(self, stack: nn.ModuleList) -> str:
        return "decoder_layers" if getattr(stack[0], "is_decoder", False) else "encoder_layers"


FAMILY = register_family(Family(
    name="bert",
    supports=SUPPORTS,
    structures={
        "heads": (BertFamilyAdapter(CLASSES, supports=f"{SUPPORTS} attention (transformers)"),),
        "ffn": (BertFamilyFFN(),),
        "layers": (BertFamilyLayers(),),
    },
    stock_config=encoder_shape,
))
