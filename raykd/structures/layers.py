"""Whole layers: drop a transformer layer from its stack.

A stack is an `nn.ModuleList` whose children are all layers of one registered family (a
`LayerAdapter` of `raykd.structures.families`: BERT-family layers of transformers,
"encoder_layers", whose forward loops `for layer in self.layer`; Llama-layout decoder layers or
raykd's `raykd.nn.DecoderLayer`, "decoder_layers"). Dropping layer i removes it from the list, so the
forward loop skips it: the model then computes what it computed with that layer replaced by the
identity (the equivalence tests compare against exactly that). The original indices of the layers
present are kept on the list (`layer_ids`).

A family whose layers are numbered (a Llama-layout model indexes its KV cache by each attention's
`layer_idx`, and its config counts the layers) renumbers them in its adapter's `renumber` hook,
called after every drop (`raykd.structures.families.llama`).

Attention and FFN sublayers are not dropped on their own: a sublayer goes by removing all its heads
or channels, after which it contributes only its output bias. In a pre-LayerNorm residual layer
(raykd's decoder) a layer with no heads and no channels is close to the identity; in a post-LN
BERT layer it is not (the LayerNorms still apply), which is why dropping a layer is its own
structure. Every other structure is numbered over the layers that remain, so a shape map applies
layers first (`raykd.structures.shape`).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar

from torch import nn

from raykd.errors import ModelFormatError
from raykd.structures.family import adapters_for
from raykd.structures.keys import BlockId

LAYER_KINDS: tuple[str, ...] = ("encoder_layers", "decoder_layers")
LAYER_IDS = "layer_ids"

LayerMap = dict[str, list[int]]


class LayerAdapter(ABC):
    """One architecture family's transformer layers (registered in its `Family`, under "layers")."""

    supports: ClassVar[str] = ""

    @abstractmethod
    def match(self, module: nn.Module) -> bool:
        """Whether `module` is one layer of this family."""

    @abstractmethod
    def stack_kind(self, stack: nn.ModuleList) -> str:
        """The kind ("encoder_layers" / "decoder_layers") of a non-empty stack of this family's layers."""

    def renumber(self, stack: nn.ModuleList) -> None:
        """Update what numbers the layers (a KV cache index, the config's layer count) after some of
        `stack` were dropped (`layer_ids(stack)`: the original ids of those kept). Nothing by default."""


def _stack_adapter(module: nn.Module) -> LayerAdapter | None:
    """The adapter whose layers are every child of `module`, if it is such a ModuleList."""
    if not isinstance(module, nn.ModuleList) or len(module) == 0:
        return None
    for adapter in adapters_for("layers"):
        if all(adapter.match(m) for m in module):
            return adapter
    return None


def _stack_kind(module: nn.Module) -> str | None:
    adapter = _stack_adapter(module)
    return None if adapter is None else adapter.stack_kind(module)  # type: ignore[arg-type]


def find_layer_stacks(model: nn.Module) -> dict[str, nn.ModuleList]:
    """{kind: the ModuleList holding that kind's layers}; ValueError if a kind occurs twice."""
    out: dict[str, nn.ModuleList] = {}
    for name, module in model.named_modules():
        kind = _stack_kind(module)
        if kind is None:
            continue
        if kind in out:
            raise ValueError(f"model has two {kind} stacks (the second at {name!r}); raykd supports one of each")
        out[kind] = module  # type: ignore[assignment]
    return {k: out[k] for k in LAYER_KINDS if k in out}


def layer_ids(stack: nn.ModuleList) -> list[int]:
    ids = getattr(stack, LAYER_IDS, None)
    return list(range(len(stack))) if ids is None else [int(i) for i in ids]


def layer_counts(model: nn.Module) -> dict[str, int]:
    return {k: len(s) for k, s in find_layer_stacks(model).items()}


def layer_map(model: nn.Module) -> LayerMap:
    """{kind: [original ids of the layers kept]} (JSON-serialisable)."""
    return {k: layer_ids(s) for k, s in find_layer_stacks(model).items()}


def _keep(stack: nn.ModuleList, keep: list[int]) -> None:
    ids = layer_ids(stack)
    kept = [stack[i] for i in keep]
    for i in range(len(stack) - 1, -1, -1):
        del stack[i]
    for module in kept:
        stack.append(module)
    setattr(stack, LAYER_IDS, [ids[i] for i in keep])
    adapter = _stack_adapter(stack)
    if adapter is not None:
        adapter.renumber(stack)


def drop_layers(model: nn.Module, layers: Mapping[str, Iterable[int]]) -> LayerMap:
    """Remove the layers at positions `layers` ({kind: positions}) from their stacks; return the
    new layer map. A stack must keep at least one layer (a model with no encoder layer is not a
    smaller model of the same family)."""
    stacks = find_layer_stacks(model)
    plan = []
    for kind, positions in layers.items():
        if kind not in stacks:
            raise ValueError(f"model has no {kind} (it has: {', '.join(stacks) or 'none'})")
        stack = stacks[kind]
        drop = {int(p) for p in positions}
        bad = sorted(p for p in drop if not 0 <= p < len(stack))
        if bad:
            raise ValueError(f"{kind} has {len(stack)} layers; positions {bad} out of range")
        if len(drop) >= len(stack):
            raise ValueError(f"dropping {len(drop)} of {len(stack)} {kind} would leave none; keep at least one")
        plan.append((stack, [i for i in range(len(stack)) if i not in drop]))
    for stack, keep in plan:
        _keep(stack, keep)
    return layer_map(model)


def apply_layer_map(model: nn.Module, kept: Mapping[str, list[int]]) -> nn.Module:
    """Drop from a freshly built `model` every layer `kept` does not list (before loading
    weights); a kind the map does not name stays as built. ModelFormatError when it does not fit."""
    stacks = find_layer_stacks(model)
    if not isinstance(kept, Mapping):
        raise ModelFormatError(f"layer map must be a mapping kind -> kept layer ids, got {type(kept).__name__}")
    plan = []
    for kind, ids in kept.items():
        if kind not in stacks:
            raise ModelFormatError(f"layer map names {kind}, but the model has {sorted(stacks) or 'none'}")
        present = {lid: i for i, lid in enumerate(layer_ids(stacks[kind]))}
        try:
            keep = [present[int(i)] for i in ids]
        except (KeyError, TypeError, ValueError):
            raise ModelFormatError(f"layer map keeps {kind} {ids!r}, but the model has layers {list(present)}") from None
        if not keep or keep != sorted(set(keep)):
            raise ModelFormatError(f"layer map {kind}: layer ids {ids!r} are empty, repeat or are out of order")
        if len(keep) != len(stacks[kind]):
            plan.append((stacks[kind], keep))
    for stack, keep in plan:
        _keep(stack, keep)
    return model


# --- which layer a structure lives in, and the hidden states between layers -----------------------

STACK_OF: dict[str, str] = {
    "encoder_self": "encoder_layers", "decoder_self": "decoder_layers", "decoder_cross": "decoder_layers",
    "encoder_ffn": "encoder_layers", "decoder_ffn": "decoder_layers",
}
"""The layer stack an attention or FFN kind lives in."""
QUERY_KIND_OF: dict[str, str] = {"encoder_layers": "encoder_self", "decoder_layers": "decoder_self"}
"""The attention kind whose query mask marks a stack's real positions (a task's `query_masks`)."""


def original_layer_ids(model: nn.Module, modules: Iterable[nn.Module]) -> list[int | None]:
    """The original id of the layer holding each of `modules` (None: not inside a known stack).

    Attention and FFN blocks are numbered over the layers that remain; this is how a student's
    block is matched to its teacher's after layers were dropped."""
    owner: dict[int, int] = {}
    for stack in find_layer_stacks(model).values():
        for lid, layer in zip(layer_ids(stack), stack):
            for sub in layer.modules():
                owner[id(sub)] = lid
    return [owner.get(id(m)) for m in modules]


def block_layer_ids(model: nn.Module, blocks: Iterable[object]) -> list[int]:
    """Original layer id per block (anything with `.layer` and `.module`); a block outside any
    known stack keeps its position (its model has no droppable layers, so positions are ids)."""
    blocks = list(blocks)
    ids = original_layer_ids(model, [b.module for b in blocks])  # type: ignore[attr-defined]
    return [b.layer if lid is None else lid for b, lid in zip(blocks, ids)]  # type: ignore[attr-defined]


class HiddenCapture:
    """What `capture_hidden` records: per (stack kind, original layer id), the layer's input and
    output hidden states of its last call (B, L, d)."""

    def __init__(self) -> None:
        self.inputs: dict[BlockId, object] = {}
        self.outputs: dict[BlockId, object] = {}

    def clear(self) -> None:
        self.inputs.clear()
        self.outputs.clear()


def _first_tensor(value: object) -> object:
    return value[0] if isinstance(value, (tuple, list)) else value


@contextlib.contextmanager
def capture_hidden(model: nn.Module, *, keep_grad: bool = False, inputs: bool = False) -> Iterator[HiddenCapture]:
    """Record every layer's output (and, with `inputs`, its input) hidden states while inside.
    Keys are original layer ids, so a student with dropped layers lines up with its teacher."""
    cap = HiddenCapture()
    handles = []
    for kind, stack in find_layer_stacks(model).items():
        for lid, layer in zip(layer_ids(stack), stack):
            key = (kind, lid)

            def post(_m: nn.Module, _args: tuple, out: object, key: BlockId = key) -> None:
                h = _first_tensor(out)
                cap.outputs[key] = h if keep_grad else h.detach()  # type: ignore[union-attr]

            handles.append(layer.register_forward_hook(post))
            if inputs:
                def pre(_m: nn.Module, args: tuple, kwargs: dict, key: BlockId = key) -> None:
                    h = args[0] if args else kwargs["hidden_states"]
                    cap.inputs[key] = h if keep_grad else h.detach()

                handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
    try:
        yield cap
    finally:
        for h in handles:
            h.remove()
