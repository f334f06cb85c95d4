"""Every structure's importance statistics of one model, measured in one calibration pass.

`StructureStats` holds heads (`HeadStats`: weight norm, attention entropy, Taylor), FFN channels
(`ChannelStats`: weight norm, mean |activation|, Taylor) and layers (`LayerStats`: Block
Influence, and on request the distillation-loss increase when skipped). None of them depends on alpha, so a sweep measures its teacher once and shares the
file across trials (`structure_stats.json`; a sweep's older `head_stats.json`, heads only, still
loads). The model is left in eval mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from raykd.method.importance.ffn import ChannelStats, channel_weight_norms
from raykd.method.importance.heads import HeadStats, collect_head_stats
from raykd.method.importance.layers import LayerStats, block_influence_sums, distill_loss_increase
from raykd.method.importance.registry import importance_of
from raykd.structures import find_ffn_blocks, find_layer_stacks
from raykd.structures.layers import QUERY_KIND_OF, STACK_OF, block_layer_ids, capture_hidden, layer_ids
from raykd.structures.keys import BlockPosition

if TYPE_CHECKING:
    from raykd.method.config import ChainConfig
    from raykd.task_interface import Task

STATS_NAME = "structure_stats.json"
LEGACY_STATS_NAME = "head_stats.json"


@dataclass
class StructureStats:
    heads: HeadStats
    ffn: dict[BlockPosition, ChannelStats] = field(default_factory=dict)
    layers: dict[BlockPosition, LayerStats] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # plug-in structure kinds' statistics, by kind name

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "heads": json.loads(self.heads.to_json()),
            "ffn": [{"kind": k, "layer": l, **vars(s)} for (k, l), s in sorted(self.ffn.items())],
            "layers": [{"kind": k, "layer": l, **s.to_row()} for (k, l), s in sorted(self.layers.items())],
        }
        if self.extra:  # (absent without plug-in kinds: the file is what it always was)
            data["extra"] = {name: importance_of(name).to_json(v) for name, v in sorted(self.extra.items())}
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "StructureStats":
        data = json.loads(text)
        if isinstance(data, list):  # a head_stats.json: heads only
            return cls(HeadStats.from_json(text))
        ffn = {(r.pop("kind"), int(r.pop("layer"))): ChannelStats(**r) for r in data.get("ffn", [])}
        layers = {(r.pop("kind"), int(r.pop("layer"))): LayerStats(**r) for r in data.get("layers", [])}
        extra = {name: importance_of(name).from_json(v) for name, v in data.get("extra", {}).items()}
        return cls(HeadStats.from_json(json.dumps(data["heads"])), ffn, layers, extra)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "StructureStats":
        from raykd.errors import ConfigError

        try:
            return cls.from_json(Path(path).read_text())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not readable importance statistics ({exc})") from None

    def fits_config(self, model: nn.Module, config: "ChainConfig") -> bool:
        """`fits` for what `config` prunes and ranks by: whether a chain (or the forecast) may plan
        `model` with these statistics instead of collecting its own."""
        on = config.prunes
        return self.fits(model, ffn=on.get("ffn", False), layers=on.get("layers", False),
                         taylor=config.importance == "taylor", distill_loss=needs_layer_distill(config),
                         kinds=[k for k, v in on.items() if v])

    def fits(self, model: nn.Module, *, ffn: bool, layers: bool, taylor: bool, distill_loss: bool = False,
             kinds: Iterable[str] = ()) -> bool:
        """True when these statistics describe `model`'s present structures and hold what the
        chain needs (FFN statistics when FFNs are pruned, layers' when layers are, Taylor, the
        layers' distillation-loss increase, the statistics of each plug-in kind in `kinds` that
        collects its own)."""
        if not self.heads.matches(model):
            return False
        for name in kinds:
            entry = importance_of(name)
            if entry.collect is not None and (name not in self.extra or not entry.fits(self.extra[name], model)):
                return False
        if taylor and not all(len(b.taylor) == len(b.head_ids) for b in self.heads.blocks.values()):
            return False
        if ffn:
            present = {(b.kind, b.layer): b.channel_ids for b in find_ffn_blocks(model)}
            if present != {k: s.channel_ids for k, s in self.ffn.items()}:
                return False
            if taylor and not all(len(s.taylor) == len(s.channel_ids) for s in self.ffn.values()):
                return False
        if layers:
            present_layers = {(k, i): lid for k, st in find_layer_stacks(model).items() for i, lid in enumerate(layer_ids(st))}
            if present_layers != {k: s.layer_id for k, s in self.layers.items()}:
                return False
            if distill_loss and any(s.distill_loss is None for s in self.layers.values()):
                return False
        return True


def needs_layer_distill(config: "ChainConfig") -> bool:
    """Layers are ranked by the distillation-loss increase when skipped (one pass per layer and batch)."""
    return bool(config.prunes.get("layers")) and config.layer_importance == "distill-loss" and config.importance != "random"


def collect_stats(model: nn.Module, task: "Task", *, split: str = "train", batches: int = 8, batch_size: int = 32,
                  taylor: bool = False, ffn: bool = True, layers: bool = True, layer_distill: bool = False,
                  tau: float = 1.0, kinds: Iterable[str] = ()) -> StructureStats:
    """Heads' statistics, and (by default) FFN channels' and layers', in one pass over `batches`
    batches of `split` (the calibration set). `layer_distill` adds each layer's distillation-loss
    increase when skipped (KL at temperature `tau`), one more forward pass per layer and batch.
    `kinds`: structure kinds the chain prunes; a plug-in kind among them that collects its own
    statistics (`KindImportance.collect`) does so after that pass, into `extra`."""
    from raykd.structures.coverage import check_supported

    own = [name for name in kinds if importance_of(name).collect is not None]
    check_supported(model, ["heads"] + (["ffn"] if ffn else []) + (["layers"] if layers else []) + own)
    ffn_blocks = find_ffn_blocks(model) if ffn else []
    ffn_layer = block_layer_ids(model, ffn_blocks)
    acts = _FFNActivations(ffn_blocks, taylor)
    bi_sum: dict[BlockPosition, float] = {}
    bi_rows: dict[BlockPosition, int] = {}
    stacks = find_layer_stacks(model) if layers else {}

    def each_batch(batch: Any, masks: dict[str, torch.Tensor], hidden: Any) -> None:
        if hidden is None:
            return
        for kind, stack in stacks.items():
            for pos, lid in enumerate(layer_ids(stack)):
                x, y = hidden.inputs.get((kind, lid)), hidden.outputs.get((kind, lid))
                if x is None or y is None:
                    continue
                s, n = block_influence_sums(x, y, masks[QUERY_KIND_OF[kind]])
                bi_sum[(kind, pos)] = bi_sum.get((kind, pos), 0.0) + s
                bi_rows[(kind, pos)] = bi_rows.get((kind, pos), 0) + n

    hidden_ctx = capture_hidden(model, inputs=True) if stacks else None
    heads = collect_head_stats(model, task, split=split, batches=batches, batch_size=batch_size, taylor=taylor,
                                    extra=acts, hidden=hidden_ctx, on_batch=each_batch)
    out = StructureStats(heads)
    for block, lid in zip(ffn_blocks, ffn_layer):
        key = (block.kind, block.layer)
        activation = (acts.abs_sum[key] / acts.rows[key]).tolist() if acts.rows.get(key) else []
        tay = (acts.taylor_sum[key] / max(1, acts.examples)).tolist() if taylor else []
        out.ffn[key] = ChannelStats(block.channel_ids, lid, channel_weight_norms(block).tolist(), activation, tay)
    for kind, stack in stacks.items():
        for pos, lid in enumerate(layer_ids(stack)):
            rows = bi_rows.get((kind, pos), 0)
            out.layers[(kind, pos)] = LayerStats(lid, bi_sum.get((kind, pos), 0.0) / rows if rows else 0.0)
    if layers and layer_distill:
        for key, value in distill_loss_increase(model, task, split=split, batches=batches, batch_size=batch_size,
                                                tau=tau).items():
            out.layers[key].distill_loss = value
    for name in own:
        collect = importance_of(name).collect
        assert collect is not None
        out.extra[name] = collect(model, task, split=split, batches=batches, batch_size=batch_size)
    return out


class _FFNActivations:
    """Context: while open, accumulates each FFN block's mean |activation| (input of its down
    projection) over real positions, and keeps the grad-retaining activation for Taylor scores."""

    def __init__(self, blocks: list, taylor: bool) -> None:
        self.blocks, self.taylor, self.handles = blocks, taylor, []
        self.abs_sum: dict[BlockPosition, torch.Tensor] = {}
        self.rows: dict[BlockPosition, int] = {}
        self.taylor_sum: dict[BlockPosition, torch.Tensor] = {}
        self.kept: dict[BlockPosition, torch.Tensor] = {}
        self.examples = 0
        self.masks: dict[str, torch.Tensor] = {}

    def __enter__(self) -> "_FFNActivations":
        for block in self.blocks:
            key = (block.kind, block.layer)
            self.abs_sum[key] = torch.zeros(block.width)
            self.taylor_sum[key] = torch.zeros(block.width)

            def hook(_m: nn.Module, args: tuple, key: BlockPosition = key, kind: str = block.kind) -> None:
                a = args[0]
                mask = self.masks[QUERY_KIND_OF[STACK_OF[kind]]]
                if a.shape[:2] != mask.shape:
                    raise ValueError(f"{kind} activation {tuple(a.shape)} does not line up with its mask {tuple(mask.shape)}")
                rows = mask.bool().to(a.device)
                self.abs_sum[key] += (a.detach().float().abs() * rows[..., None]).sum(dim=(0, 1)).cpu()
                self.rows[key] = self.rows.get(key, 0) + int(rows.sum())
                if self.taylor and a.requires_grad:
                    a.retain_grad()
                    self.kept[key] = a

            self.handles.append(block.down.register_forward_pre_hook(hook))
        return self

    def after_backward(self, examples: int) -> None:
        """Fold the kept activations' gradients into the Taylor sums (call after backward)."""
        for key, a in self.kept.items():
            if a.grad is not None:
                self.taylor_sum[key] += (a.detach() * a.grad).sum(dim=1).abs().sum(0).float().cpu()
        self.examples += examples
        self.kept.clear()

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()
        self.kept.clear()
