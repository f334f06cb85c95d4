"""The same texts give the same tokenizer, and the same data and seed the same teacher, in every
process (the tokenizers trainer's hash-map tie-breaking made both differ; see raykd/task/wordpiece.py)."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

from raykd.task.encoders import SPECIAL_TOKENS, train_tiny_tokenizer
from raykd.task.wordpiece import wordpiece_vocab

VOCAB_HASH = """
import hashlib, json
from raykd.data import load_splits
from raykd.task.encoders import train_tiny_tokenizer
tok = train_tiny_tokenizer(p.text for p in load_splits("synthetic:800")["train"])
print(hashlib.sha256(json.dumps(sorted(tok.get_vocab().items())).encode()).hexdigest())
"""

TRAIN_TEACHER = """
import sys, torch
torch.set_num_threads(1)
from raykd.data import load_splits
from raykd.task.teacher import SolverSpec, train_teacher
from raykd.training import FitConfig
train_teacher(load_splits("synthetic:300:3"), SolverSpec(preset="tiny"), FitConfig(epochs=1, max_steps=6, seed=0),
              sys.argv[1], progress=False)
"""


def _python(code: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def _vocab_hash(tokenizer) -> str:
    return hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()


def test_the_tiny_tokenizer_is_the_same_in_every_process_and_call(synthetic_splits):
    from raykd.data import load_splits

    texts = [p.text for p in load_splits("synthetic:800")["train"]]
    here = {_vocab_hash(train_tiny_tokenizer(texts)) for _ in range(5)}
    elsewhere = {_python(VOCAB_HASH) for _ in range(2)}
    assert len(here) == 1 and elsewhere == here
    tok = train_tiny_tokenizer(texts)
    assert tok.unk_token_id not in {i for t in texts for i in tok(t)["input_ids"]}  # every training word is covered
    assert [tok.convert_ids_to_tokens(i) for i in range(len(SPECIAL_TOKENS))] == SPECIAL_TOKENS


def test_wordpiece_vocab_ignores_input_order_and_respects_the_cap():
    counts = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5, "gun": 7, "nub": 3}
    items = list(counts.items())
    vocabs = set()
    for seed in range(5):
        random.Random(seed).shuffle(items)
        vocabs.add(json.dumps(wordpiece_vocab(dict(items), 100, ["[UNK]"])))
    assert len(vocabs) == 1
    vocab = json.loads(vocabs.pop())
    assert vocab["[UNK]"] == 0 and {"h", "p", "b", "g", "n", "##u", "##g", "##s", "##n", "##b"} <= set(vocab)
    # 1 special + 7 characters + 5 continuation characters, then the merges, most frequent pair first:
    # ("##u", "##n") occurs in pun/bun/gun 12 + 4 + 7 = 23 times, ("##u", "##g") 20, ("p", "##u") 17
    merged = sorted(vocab, key=vocab.get)[13:]
    assert merged[:2] == ["##un", "##ug"]
    assert len(wordpiece_vocab(counts, 14, ["[UNK]"])) == 14


def test_the_same_data_and_seed_train_the_same_teacher_in_two_processes(tmp_path: Path):
    for run in ("a", "b"):
        _python(TRAIN_TEACHER, str(tmp_path / run))
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
