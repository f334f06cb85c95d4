"""A transformers model class from a module that writes its own attention without transformers'
`AttentionInterface`, as remote-code models often do: transformers then declines to switch the
class's attention implementation at run time (it only logs a warning). Kept in a module of its
own because transformers decides this from the source of the class's module (and caches the
answer on the class, inherited by subclasses: so this one derives from `PreTrainedModel` itself,
not from a model class another test may already have switched)."""

from __future__ import annotations

from torch import nn
from transformers import BertConfig, PreTrainedModel
from transformers.models.bert.modeling_bert import BertEncoder


class HandWrittenSelfAttention(nn.Module):  # what transformers looks for; never instantiated
    pass


class HandWrittenModel(PreTrainedModel):
    """BERT layers (raykd's BERT adapter finds their blocks) in a model transformers will not switch."""

    config_class = BertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.encoder = BertEncoder(config)
        self.post_init()
