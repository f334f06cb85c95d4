"""Distillation losses (Algorithm 2 of the paper).

L = lambda1 * (tau^2 * KL(p_T || p_S) + mean over layers of MSE(A_T, A_S))
    + lambda3 * mean over layers of MSE(h_T, h_S) + lambda2 * L_task

(lambda3 = 0 is the paper's loss; the hidden-state term is what carries a student across dropped
layers, TinyBERT/Minitron style.)

Layer mapping: blocks and hidden states are keyed by ORIGINAL layer id, so a student layer is
compared with the teacher layer it was cut from; the teacher's layers the student dropped are
simply not compared (their attention maps and hidden states have no student counterpart).

Head mapping for the attention term (the student has fewer heads than its teacher): every head
carries its original id (`head_ids`), and the student was cut from the teacher, so each student
head has exactly one teacher head with the same id. "kept" compares each student head's map with
that teacher head's map; "mean" compares the head-averaged maps instead (usable when the two
models were pruned independently). Blocks with no heads left in the student are skipped; the
mean runs over the (kind, layer) blocks compared.

A term the loss asks for is never dropped: when a model's capture recorded nothing for it (an
attention implementation raykd cannot hook, layers hidden inside a wrapper), or nothing lines up
between the two models, `EmptyTermError` names the term and the model instead of training on the
remaining terms as if the term were there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F

from raykd.errors import ConfigError
from raykd.structures.keys import BlockId

AttentionMapping = Literal["kept", "mean"]
Models = tuple[str, str]  # how messages name (the teacher, the student): role and class


class EmptyTermError(ConfigError):
    """A distillation term the loss asks for has nothing to compare."""


def _empty(term: str, what: str, teacher: Mapping, student: Mapping, models: Models, switch: str) -> EmptyTermError:
    """The error for a term that would otherwise vanish from the loss: which capture was empty."""
    empty = [name for name, got in zip(models, (teacher, student)) if not got]
    why = (f"capturing the {' and the '.join(empty)} recorded no {what}" if empty
           else f"none of the {what} of the {models[1]} lines up with one of the {models[0]}")
    return EmptyTermError(f"the {term} distillation term has nothing to compare: {why}; raykd does not drop a term "
                          f"silently ({switch} trains without it)")


def response_kl(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor, tau: float
) -> torch.Tensor:
    """tau^2 * KL(softmax(t/tau) || softmax(s/tau)), summed over classes, averaged over masked positions."""
    t = F.log_softmax(teacher_logits[mask].float() / tau, dim=-1)
    s = F.log_softmax(student_logits[mask].float() / tau, dim=-1)
    kl = F.kl_div(s, t, log_target=True, reduction="none").sum(-1)
    return tau**2 * kl.mean() if kl.numel() else student_logits.sum() * 0.0


@dataclass(frozen=True)
class CapturedAttention:
    """Attention probabilities of one block: (B, heads, Lq, Lk), the original ids of its heads,
    and which query rows are real (B, Lq)."""

    probs: torch.Tensor
    head_ids: Sequence[int]
    query_mask: torch.Tensor


def attention_mse(
    teacher: Mapping[BlockId, CapturedAttention],
    student: Mapping[BlockId, CapturedAttention],
    mapping: AttentionMapping = "kept",
    models: Models = ("teacher", "student"),
) -> torch.Tensor:
    """Mean over compared blocks of the MSE between teacher and student attention maps (real
    query rows only); EmptyTermError when no block can be compared (`models` name the two in it)."""
    losses = []
    for key, s in student.items():
        t = teacher.get(key)
        if t is None or len(s.head_ids) == 0 or len(t.head_ids) == 0:
            continue
        if mapping == "kept":
            where = {h: i for i, h in enumerate(t.head_ids)}
            missing = [h for h in s.head_ids if h not in where]
            if missing:
                raise ValueError(f"student heads {missing} of block {key} are not in the teacher: use mapping='mean'")
            t_probs = t.probs[:, [where[h] for h in s.head_ids]]
            s_probs = s.probs
        else:
            t_probs, s_probs = t.probs.mean(1, keepdim=True), s.probs.mean(1, keepdim=True)
        rows = s.query_mask.bool()
        diff = (s_probs - t_probs.detach()).pow(2).sum(-1)  # (B, h, Lq): squared error summed over keys
        per_row = diff.mean(1)[rows]  # average over heads, keep real query rows
        n_keys = s_probs.shape[-1]
        losses.append(per_row.mean() / n_keys if per_row.numel() else diff.sum() * 0.0)
    if not losses:
        raise _empty("attention-map", "attention maps", teacher, student, models, "distill_feature: false")
    return torch.stack(losses).mean()


def hidden_mse(
    teacher: Mapping[tuple[str, int], torch.Tensor],
    student: Mapping[tuple[str, int], torch.Tensor],
    masks: Mapping[str, torch.Tensor],
    models: Models = ("teacher", "student"),
) -> torch.Tensor:
    """Mean over compared layers of the MSE between teacher and student hidden states (B, L, d),
    over real positions (`masks[stack kind]`, B x L) and hidden units; keys (stack kind, original
    layer id). EmptyTermError when no layer can be compared (`models` name the two in it)."""
    losses = []
    for key, s in student.items():
        t = teacher.get(key)
        if t is None:
            continue
        if t.shape != s.shape:
            raise ValueError(f"hidden states of {key} differ in shape: teacher {tuple(t.shape)}, student {tuple(s.shape)}")
        rows = masks[key[0]].bool().to(s.device)
        diff = (s.float() - t.detach().float()).pow(2).mean(-1)  # (B, L)
        losses.append(diff[rows].mean() if bool(rows.any()) else diff.sum() * 0.0)
    if not losses:
        raise _empty("hidden-state", "hidden states", teacher, student, models, "distill_hidden: false or lambda3: 0")
    return torch.stack(losses).mean()


@dataclass(frozen=True)
class LossWeights:
    lambda1: float
    lambda2: float
    tau: float
    response: bool = True  # the KL term (Table 4: "feature-only" turns it off)
    feature: bool = True  # the attention term (Table 4: "response-only" turns it off)
    lambda3: float = 0.0  # the hidden-state term's weight (0: the paper's loss)
    hidden: bool = True  # the hidden-state term (its ablation switch)


def total_loss(
    task_loss: torch.Tensor,
    kl: torch.Tensor | None,
    attention: torch.Tensor | None,
    weights: LossWeights,
    hidden: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """lambda1 * (KL + attention) + lambda3 * hidden + lambda2 * task, with the parts for logging.
    A term switched on with a nonzero weight must be given (EmptyTermError, never left out)."""
    asked = (("response (KL)", weights.response and weights.lambda1 > 0, kl),
             ("attention-map", weights.feature and weights.lambda1 > 0, attention),
             ("hidden-state", weights.hidden and weights.lambda3 > 0, hidden))
    missing = [name for name, on, value in asked if on and value is None]
    if missing:
        raise EmptyTermError(f"the {', '.join(missing)} distillation term(s) have weight but no value: raykd does not "
                             "drop a term silently")
    distill = task_loss.new_zeros(())
    parts = {"task": float(task_loss.detach())}
    if weights.response and kl is not None:
        distill = distill + kl
        parts["kl"] = float(kl.detach())
    if weights.feature and attention is not None:
        distill = distill + attention
        parts["attention_mse"] = float(attention.detach())
    loss = weights.lambda1 * distill + weights.lambda2 * task_loss
    if weights.hidden and weights.lambda3 > 0 and hidden is not None:
        loss = loss + weights.lambda3 * hidden
        parts["hidden_mse"] = float(hidden.detach())
    parts["total"] = float(loss.detach())
    return loss, parts
