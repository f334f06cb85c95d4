"""Hidden channels: the embedding / residual-stream width of a model, removable as one set.

Minitron and Sheared-LLaMA prune the hidden size ("embedding channels"): channel c of the
residual stream is column c of every embedding table, column c of every projection that *reads*
the stream (Q/K/V, the FFN's first projections, a pooler, a classifier, an LM head, a task model's
readers of the encoder states), row c (and bias c) of every projection that *writes* it
(attention and FFN output projections), and entry c of every LayerNorm / RMSNorm over it. The
same ids are removed everywhere, so the kept channels are one list for the whole model
(`hidden_map`), and `config.hidden_size` becomes their count.

Exactness. Removing channels is *not* the same function as zeroing them: a LayerNorm / RMSNorm
computes its statistics (mean, variance, RMS) over the channels present, so over fewer channels
after pruning. What pruning equals exactly is the unpruned model whose every norm over the stream
takes its statistics over the kept channels only and outputs 0 on the others, and whose square
consumers (a pooler or head dense layer H -> H) output 0 on the pruned channels (`masked_hidden`):
in both families every reader of the stream reads it through such a norm, so pruned channels then
reach nothing (tested to 1e-5). Zeroing the pruned channels in the embeddings and every writer
gives the same function only where the norms' statistics do not change (an RMSNorm with eps = 0
rescaled by sqrt(H/H'); never for LayerNorm, whose mean changes).

Families: BERT family (`*Model` with `embeddings` and `encoder.layer`: BERT, RoBERTa, XLM-R,
CamemBERT, ELECTRA without an embedding projection; heads on top: pooler, sequence
classification, masked LM; raykd's MWP solver on top of such an encoder) and Llama family
(`embed_tokens`, `layers`, `norm`: Llama, Mistral, Qwen2, Qwen3, SmolLM2; `lm_head` tied or not,
`score`). A BERT-family model with cross-attention (its keys read another model's width), any
other module with parameters that this file does not place, or another family is refused with one
`UnsupportedModelError` line.

The kept original ids live on the base model module (`raykd_hidden_ids`, with the original width
`raykd_hidden_width`) as FFN channel ids live on their block. The map on disk is
{kind: {"width": original width, "kept": [original ids]}} with kind "encoder_hidden" (BERT
family) or "decoder_hidden" (Llama family); the width lets a loader rebuild the unpruned model from
a config whose `hidden_size` was already reduced (`unpruned_config`).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from raykd.errors import ModelFormatError, RaykdInputError
from raykd.structures.coverage import UnsupportedModelError
from raykd.structures.family import class_in, transformers_classes

HIDDEN_KINDS: tuple[str, ...] = ("encoder_hidden", "decoder_hidden")
HIDDEN_IDS = "raykd_hidden_ids"
HIDDEN_WIDTH = "raykd_hidden_width"
SUPPORTS = ("BERT-family encoders (BERT/RoBERTa/XLM-RoBERTa/CamemBERT/ELECTRA, with pooler, sequence-classification "
            "or masked-LM heads, or under raykd's solver) and Llama-family models (Llama/Mistral/Qwen2/Qwen3/SmolLM2)")

HiddenMap = dict[str, dict[str, Any]]
_SOLVER = frozenset({("raykd.task.model", "SolverModel")})
_BERT_LAYERS = transformers_classes({"bert": "Bert", "roberta": "Roberta", "xlm_roberta": "XLMRoberta",
                                     "camembert": "Camembert", "electra": "Electra"}, "Layer")
_LLAMA_LAYERS = transformers_classes({"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"},
                                     "DecoderLayer")


class HiddenSpecError(RaykdInputError, ValueError):
    """Kept hidden channels that cannot be: none, repeated, or out of range (one line)."""


@dataclass
class HiddenOwners:
    """Every module that owns a slice of a model's hidden dimension, by role.

    `reads` lose input columns, `writes` output rows (and bias entries), `embeds` columns, `norms`
    entries of their weight (and bias); a square consumer (pooler dense: H -> H) is in `reads` and
    `writes`. `stream_norms` are the norms inside the base model (the residual stream's, for
    importance); `independent` the modules with parameters that do not touch the hidden width.
    """

    kind: str
    family: str
    base_name: str
    base: nn.Module = field(repr=False)
    embeds: list[nn.Module] = field(default_factory=list, repr=False)
    reads: list[nn.Linear] = field(default_factory=list, repr=False)
    writes: list[nn.Linear] = field(default_factory=list, repr=False)
    norms: list[nn.Module] = field(default_factory=list, repr=False)
    stream_norms: list[nn.Module] = field(default_factory=list, repr=False)
    independent: list[nn.Module] = field(default_factory=list, repr=False)

    @property
    def width(self) -> int:
        return int(self.embeds[0].weight.shape[1])

    @property
    def ids(self) -> list[int]:
        ids = getattr(self.base, HIDDEN_IDS, None)
        return list(range(self.width)) if ids is None else [int(i) for i in ids]

    @property
    def original_width(self) -> int:
        return int(getattr(self.base, HIDDEN_WIDTH, self.width))

    @property
    def square(self) -> list[nn.Linear]:
        writes = {id(m) for m in self.writes}
        return [m for m in self.reads if id(m) in writes]


# -- finding the owners ------------------------------------------------------------------------

def _is_bert_base(m: nn.Module) -> bool:
    emb, enc = getattr(m, "embeddings", None), getattr(m, "encoder", None)
    layers = getattr(enc, "layer", None)
    return (isinstance(getattr(emb, "word_embeddings", None), nn.Embedding) and isinstance(layers, nn.ModuleList)
            and len(layers) > 0 and all(class_in(type(x), _BERT_LAYERS) for x in layers))


def _is_llama_base(m: nn.Module) -> bool:
    layers = getattr(m, "layers", None)
    return (isinstance(getattr(m, "embed_tokens", None), nn.Embedding) and isinstance(layers, nn.ModuleList)
            and len(layers) > 0 and all(class_in(type(x), _LLAMA_LAYERS) for x in layers) and hasattr(m, "norm"))


def _bert_owners(name: str, base: nn.Module) -> HiddenOwners:
    own = HiddenOwners("encoder_hidden", "bert", name, base)
    emb = base.embeddings
    for attr in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        if isinstance(getattr(emb, attr, None), nn.Embedding):
            own.embeds.append(getattr(emb, attr))
    own.norms.append(emb.LayerNorm)
    for i, layer in enumerate(base.encoder.layer):
        if getattr(layer, "crossattention", None) is not None:
            raise UnsupportedModelError(f"hidden-size pruning of {type(base).__name__}: layer {i} has cross-attention, "
                                        f"whose keys and values read another model's hidden size")
        sa = layer.attention.self
        own.reads += [sa.query, sa.key, sa.value, layer.intermediate.dense]
        own.writes += [layer.attention.output.dense, layer.output.dense]
        own.norms += [layer.attention.output.LayerNorm, layer.output.LayerNorm]
    own.stream_norms = list(own.norms)
    pooler = getattr(base, "pooler", None)
    if pooler is not None:
        own.reads.append(pooler.dense)
        own.writes.append(pooler.dense)
    return own


def _llama_owners(name: str, base: nn.Module) -> HiddenOwners:
    own = HiddenOwners("decoder_hidden", "llama", name, base)
    own.embeds.append(base.embed_tokens)
    for layer in base.layers:
        at, mlp = layer.self_attn, layer.mlp
        own.reads += [at.q_proj, at.k_proj, at.v_proj, mlp.gate_proj, mlp.up_proj]
        own.writes += [at.o_proj, mlp.down_proj]
        own.norms += [layer.input_layernorm, layer.post_attention_layernorm]
        # Qwen3's q_norm / k_norm act on one head's width, not the stream
        own.independent += [m for n, m in at.named_children() if n not in ("q_proj", "k_proj", "v_proj", "o_proj")]
    own.norms.append(base.norm)
    own.stream_norms = list(own.norms)
    return own


# Modules around a BERT/Llama base: (path relative to the model, role). "none": has parameters
# that do not touch the hidden width (a vocabulary bias).
_HEADS: dict[str, tuple[tuple[str, str], ...]] = {
    "bert": (("classifier", "read"), ("classifier.dense", "square"), ("classifier.out_proj", "read"),
             ("cls.predictions", "none"), ("cls.predictions.transform.dense", "square"),
             ("cls.predictions.transform.LayerNorm", "norm"), ("cls.predictions.decoder", "read"),
             ("lm_head", "none"), ("lm_head.dense", "square"), ("lm_head.layer_norm", "norm"),
             ("lm_head.decoder", "read")),
    "llama": (("lm_head", "read"), ("score", "read")),
}


def _solver_roles(model: nn.Module) -> dict[str, str]:
    """raykd's MWP solver: what reads the encoder states (memory and the number states)."""
    from raykd.nn.decoder import DecoderLayer

    roles = {n: "none" for n, m in model.named_modules() if not n.startswith("encoder.") and n != "encoder"
             and any(True for _ in m.parameters(recurse=False))}
    if isinstance(model.memory_proj, nn.Linear):
        roles["memory_proj"] = "read"
        return roles
    for n, m in model.named_modules():  # memory_proj is the identity: the decoder reads the states itself
        if isinstance(m, DecoderLayer):
            roles[f"{n}.cross_attn.k"] = roles[f"{n}.cross_attn.v"] = "read"
    roles["number_input"] = roles["pointer_key"] = "read"
    return roles


def find_hidden(model: nn.Module) -> HiddenOwners:
    """The owners of `model`'s hidden dimension; UnsupportedModelError (one line) when raykd cannot
    place every module with parameters (another family, cross-attention, an unknown head)."""
    bases = [(n, m, "bert") for n, m in model.named_modules() if _is_bert_base(m)]
    bases += [(n, m, "llama") for n, m in model.named_modules() if _is_llama_base(m)]
    if len(bases) != 1:
        what = "no" if not bases else f"{len(bases)}"
        raise UnsupportedModelError(f"hidden-size pruning: {type(model).__name__} has {what} BERT-family or Llama-family "
                                    f"base model{'s' if bases else ''}; supported: {SUPPORTS}")
    name, base, family = bases[0]
    own = _bert_owners(name, base) if family == "bert" else _llama_owners(name, base)
    if class_in(type(model), _SOLVER) and name == "encoder":
        roles = _solver_roles(model)
    else:
        roles = dict(_HEADS[family])
    modules = dict(model.named_modules())
    for path, role in roles.items():
        m = modules.get(path)
        if m is None:
            continue
        if role == "read" and isinstance(m, nn.Linear):
            own.reads.append(m)
        elif role == "square" and isinstance(m, nn.Linear):
            own.reads.append(m)
            own.writes.append(m)
        elif role == "norm" and isinstance(m, nn.LayerNorm):
            own.norms.append(m)
        elif role == "none":
            own.independent.append(m)
    placed = {id(m) for group in (own.embeds, own.reads, own.writes, own.norms) for m in group}
    placed |= {id(m) for m in own.independent}
    for path, m in model.named_modules():
        if any(True for _ in m.parameters(recurse=False)) and id(m) not in placed:
            raise UnsupportedModelError(f"hidden-size pruning: {type(m).__name__} at {path!r} has parameters and raykd does not "
                                        f"know how it reads or writes the hidden size of {type(model).__name__}; "
                                        f"supported: {SUPPORTS}")
    return own


def hidden_width(model: nn.Module) -> int:
    """The number of hidden channels present (the count a registry reports)."""
    return find_hidden(model).width


def hidden_map(model: nn.Module) -> HiddenMap:
    """{kind: {"width": original width, "kept": [original ids]}} ({} for a model without a
    supported hidden dimension: nothing of it can be pruned). JSON-serialisable."""
    try:
        own = find_hidden(model)
    except UnsupportedModelError:
        return {}
    return {own.kind: {"width": own.original_width, "kept": own.ids}}


# -- surgery -----------------------------------------------------------------------------------

def _validate(keep: Iterable[int], width: int) -> list[int]:
    try:
        items = list(keep)
    except TypeError:
        raise HiddenSpecError(f"hidden channels to keep must be a list of positions, got {type(keep).__name__}") from None
    try:
        if any(isinstance(k, bool) for k in items):
            raise TypeError
        ids = [operator.index(k) for k in items]
    except TypeError:
        raise HiddenSpecError("hidden channels to keep must be integer positions") from None
    if not ids:
        raise HiddenSpecError(f"keeping no hidden channels (of {width}) leaves no model: keep at least one")
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise HiddenSpecError(f"hidden channel positions repeat: {dup[:5]}")
    bad = sorted(i for i in ids if not 0 <= i < width)
    if bad:
        raise HiddenSpecError(f"hidden channel positions {bad[:5]} out of range (the model has {width} hidden channels)")
    return sorted(ids)


_Done = dict[int, tuple[nn.Parameter, nn.Parameter]]


def _cut(module: nn.Module, name: str, dim: int, index: torch.Tensor, done: _Done) -> None:
    """Keep `index` along `dim` of parameter `name`; a tensor shared by several modules (tied
    embeddings) is cut once and stays shared (`done`: id of the old tensor -> (old, new); the old
    one is held so its id cannot be reused meanwhile)."""
    p = getattr(module, name, None)
    if p is None:
        return
    if id(p) in done:
        new = done[id(p)][1]
    else:
        with torch.no_grad():
            new = nn.Parameter(p.detach().index_select(dim, index.to(p.device)).contiguous(), requires_grad=p.requires_grad)
        done[id(p)] = (p, new)
    setattr(module, name, new)


def _keep(own: HiddenOwners, keep: list[int]) -> None:
    index = torch.tensor(keep, dtype=torch.long)
    n = len(keep)
    ids, width = own.ids, own.original_width  # read before the embeddings shrink
    done: _Done = {}
    for m in own.embeds:
        _cut(m, "weight", 1, index, done)
        m.embedding_dim = n
    for m in own.reads:
        _cut(m, "weight", 1, index, done)
        m.in_features = n
    done_rows: _Done = {}  # a square Linear's rows are a second cut of its new weight
    for m in own.writes:
        _cut(m, "weight", 0, index, done_rows)
        _cut(m, "bias", 0, index, done_rows)
        m.out_features = n
    for m in own.norms:
        _cut(m, "weight", 0, index, done)
        _cut(m, "bias", 0, index, done)
        if hasattr(m, "normalized_shape"):
            m.normalized_shape = (n,)
    for layer in getattr(own.base, "layers", []) if own.family == "llama" else []:
        if hasattr(layer.mlp, "hidden_size"):
            layer.mlp.hidden_size = n
    setattr(own.base, HIDDEN_WIDTH, width)
    setattr(own.base, HIDDEN_IDS, [ids[i] for i in keep])
    config = getattr(own.base, "config", None)
    if config is not None:
        if own.family == "llama" and getattr(config, "head_dim", None) is None:
            config.head_dim = int(own.base.layers[0].self_attn.head_dim)  # else derived from the new width
        config.hidden_size = n


def prune_hidden(model: nn.Module, keep: Sequence[int]) -> HiddenMap:
    """Keep the hidden channels at positions `keep` (current positions, any order, each once)
    and remove the others physically everywhere; return the new hidden map.

    HiddenSpecError (one line) for an empty, repeated or out-of-range `keep`, before anything
    changes. New Parameters keep dtype, device and requires_grad (rebuild optimizers); tied
    embeddings stay tied. `config.hidden_size` becomes len(keep)."""
    own = find_hidden(model)
    chosen = _validate(keep, own.width)
    if len(chosen) != own.width:
        _keep(own, chosen)
    return hidden_map(model)


def apply_hidden_map(model: nn.Module, kept: Mapping[str, Any]) -> nn.Module:
    """Shrink a freshly built `model` to the hidden channels a saved map keeps (before loading
    weights); an empty map leaves it as built. ModelFormatError when the map does not fit."""
    if not isinstance(kept, Mapping):
        raise ModelFormatError(f"hidden map must be a mapping kind -> {{width, kept}}, got {type(kept).__name__}")
    if not kept:
        return model
    try:
        own = find_hidden(model)
    except UnsupportedModelError as exc:
        raise ModelFormatError(f"the config has a hidden map, but {exc}") from None
    if set(kept) != {own.kind}:
        raise ModelFormatError(f"hidden map names {sorted(kept)}, but the model's hidden dimension is {own.kind!r}")
    entry = kept[own.kind]
    if not isinstance(entry, Mapping) or not isinstance(entry.get("kept"), list):
        raise ModelFormatError(f"hidden map {own.kind} must be {{'width': int, 'kept': [ids]}}")
    if entry.get("width") != own.original_width:
        raise ModelFormatError(f"hidden map {own.kind} is of a model {entry.get('width')!r} channels wide, "
                               f"but the model built has {own.original_width}")
    present = {c: i for i, c in enumerate(own.ids)}
    try:
        keep = [present[int(c)] for c in entry["kept"]]
    except (KeyError, TypeError, ValueError):
        raise ModelFormatError(f"hidden map {own.kind} keeps channels the model ({own.width} channels) does not have") from None
    if not keep or keep != sorted(set(keep)):
        raise ModelFormatError(f"hidden map {own.kind}: channel ids are empty, repeat or are out of order")
    if len(keep) != own.width:
        _keep(own, keep)
    return model


def unpruned_config(config: Mapping[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    """A model config (dict) with `hidden_size` set back to the width the hidden map `kept` was
    cut from: what to build before `apply_hidden_map` when the saved config holds the pruned width."""
    out = dict(config)
    for entry in kept.values():
        if isinstance(entry, Mapping) and isinstance(entry.get("width"), int):
            out["hidden_size"] = entry["width"]
    return out


# -- the exact equivalent without surgery --------------------------------------------------------

def _masked_norm(module: nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    xs = x.index_select(-1, keep)
    if isinstance(module, nn.LayerNorm):
        bias = None if module.bias is None else module.bias[keep]
        y = F.layer_norm(xs, (xs.shape[-1],), module.weight[keep], bias, module.eps)
    else:  # RMSNorm (Llama family: float32 statistics, weight applied in the input dtype)
        eps = getattr(module, "variance_epsilon", None)
        eps = module.eps if eps is None else eps
        h = xs.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        y = module.weight[keep] * h.to(x.dtype)
    out = x.new_zeros(x.shape, dtype=y.dtype)
    return out.index_copy(-1, keep, y)


@contextlib.contextmanager
def masked_hidden(model: nn.Module, keep: Sequence[int]) -> Iterator[nn.Module]:
    """For the duration, `model` (unchanged in shape) computes exactly what `prune_hidden(model,
    keep)` would compute on the kept channels: every norm over the hidden dimension takes its
    statistics over the kept channels and outputs 0 on the others, and square consumers output 0
    on them. The reference the equivalence tests compare the surgery with."""
    own = find_hidden(model)
    chosen = _validate(keep, own.width)
    handles = []
    kept = torch.tensor(chosen, dtype=torch.long)
    for m in own.norms:
        def norm_hook(mod: nn.Module, args: tuple, _out: torch.Tensor) -> torch.Tensor:
            return _masked_norm(mod, args[0], kept.to(args[0].device))
        handles.append(m.register_forward_hook(norm_hook))
    drop = sorted(set(range(own.width)) - set(chosen))
    for m in own.square:
        def zero_hook(_mod: nn.Module, _args: tuple, out: torch.Tensor) -> torch.Tensor:
            return out.index_fill(-1, torch.tensor(drop, dtype=torch.long, device=out.device), 0.0)
        if drop:
            handles.append(m.register_forward_hook(zero_hook))
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


# -- what a structure registry needs -------------------------------------------------------------

@dataclass(frozen=True)
class HiddenBlock:
    """The hidden dimension as a registry sees a width kind: one block (layer 0) per model, whose
    units are the channels present."""

    kind: str
    layer: int
    width: int
    channel_ids: list[int] = field(compare=False)


def hidden_sizes(model: nn.Module) -> dict[str, list[int]]:
    """{kind: [channels present]} ({} without a supported hidden dimension)."""
    return {kind: [len(entry["kept"])] for kind, entry in hidden_map(model).items()}


def hidden_blocks(model: nn.Module) -> list[HiddenBlock]:
    try:
        own = find_hidden(model)
    except UnsupportedModelError:
        return []
    return [HiddenBlock(own.kind, 0, own.width, own.ids)]


def remove_hidden(model: nn.Module, selection: Mapping[str, Any]) -> HiddenMap:
    """A registry's `remove`: {kind: {0: [positions to remove]}} (or {kind: [positions]}) -> the new map."""
    own = find_hidden(model)
    drop: set[int] = set()
    for kind, chosen in selection.items():
        if kind != own.kind:
            raise HiddenSpecError(f"the model's hidden dimension is {own.kind!r}, not {kind!r}")
        positions = chosen.get(0, chosen.get("0", [])) if isinstance(chosen, Mapping) else chosen
        drop |= set(_validate(positions, own.width)) if positions else set()
    return prune_hidden(model, [c for c in range(own.width) if c not in drop])


def register_hidden_structure() -> Any:
    """Register "hidden" in `raykd.structures.registry` (idempotent) and return its kind. Not done
    at import: registering adds `hidden_map` to every saved shape and `hidden_p_min` /
    `hidden_p_max` chain settings, which the caller opts into."""
    from raykd.structures import registry

    if "hidden" in registry.structure_names():
        return registry.structure_kind("hidden")
    return registry.register_structure(registry.StructureKind(
        name="hidden", unit="hidden channels", count_key="hidden_channels", shape_key="hidden_map",
        p_min="hidden_p_min", p_max="hidden_p_max", sizes=hidden_sizes, shape_of=hidden_map,
        apply_shape=apply_hidden_map, remove=remove_hidden, blocks=hidden_blocks, block_size=lambda b: b.width, narrows_hidden_states=True))
