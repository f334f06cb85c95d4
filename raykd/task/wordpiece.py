"""A WordPiece vocabulary computed deterministically (the tiny preset's tokenizer).

`tokenizers`' WordPieceTrainer (BPE with a '##' continuation prefix underneath) keeps word counts
in a randomly seeded hash map and breaks ties between equally frequent pairs by token id, and
those ids depend on the map's order: the same texts give a different vocabulary on every call
(huggingface/tokenizers#1794, open; measured here: 9 distinct results in 30 calls on the
synthetic:800 train split), so every tiny teacher, and every sweep built on one, differed. This
module runs the same algorithm with every tie broken by a fixed order; the result is then handed
to `tokenizers.models.WordPiece`, which does the tokenising.
"""

from __future__ import annotations

import heapq


def wordpiece_vocab(word_counts: dict[str, int], vocab_size: int, specials: list[str], prefix: str = "##") -> dict[str, int]:
    """The vocabulary `tokenizers`' WordPieceTrainer (BPE with a '##' continuation prefix, min_frequency=1)
    computes, but with every tie broken by a fixed order: ids are given to specials, then the alphabet by
    code point, then '##' continuation characters by code point; words are visited sorted; among pairs of
    equal count the one with the smaller (id, id) merges first. No hash-map order reaches the result."""
    id2w: list[str] = []
    w2id: dict[str, int] = {}

    def add(token: str) -> int:
        if token not in w2id:
            w2id[token] = len(id2w)
            id2w.append(token)
        return w2id[token]

    for token in specials:
        add(token)
    for c in sorted({c for word in word_counts for c in word}):
        add(c)
    for c in sorted({c for word in word_counts for c in word[1:]}):
        add(prefix + c)
    order = sorted(word_counts)
    words = [[w2id[w[0]]] + [w2id[prefix + c] for c in w[1:]] for w in order]
    counts = [word_counts[w] for w in order]
    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + counts[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)
    while len(w2id) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        current = pair_counts.get(pair, 0)
        if -neg != current:  # stale entry: requeue with the current count
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < 1:
            break
        a, b = id2w[pair[0]], id2w[pair[1]]
        new_id = add(a + (b[len(prefix):] if b.startswith(prefix) else b))
        touched: dict[tuple[int, int], int] = {}
        for i in sorted(where.pop(pair, ())):
            old = words[i]
            for p in zip(old, old[1:]):
                touched[p] = touched.get(p, 0) - counts[i]
            new, j = [], 0
            while j < len(old):
                if j + 1 < len(old) and old[j] == pair[0] and old[j + 1] == pair[1]:
                    new.append(new_id)
                    j += 2
                else:
                    new.append(old[j])
                    j += 1
            words[i] = new
            for p in zip(new, new[1:]):
                touched[p] = touched.get(p, 0) + counts[i]
                where.setdefault(p, set()).add(i)
        for p, delta in touched.items():
            if delta:
                pair_counts[p] = pair_counts.get(p, 0) + delta
                if delta > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
    return w2id
