"""Do per-kind savings add up? Dense, each attention kind alone at half its heads, and all kinds
together at half, timed side by side (paired ratios); prints each kind's saving alone, their sum,
and the saving of pruning all kinds at once (untrained MiniLM solver, ASDiv-A valid batch 8).

    python bench/latency_additivity.py decode      # or: forward
"""
import sys, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from raykd.data import load_splits
from raykd.structures import head_counts, prune_heads
from raykd.measure import compare_latency
from raykd.measure.latency import uniform_variant
from raykd.task.mwp import MWPTask
from raykd.task.teacher import SolverSpec, build_solver_from_spec
import copy
torch.set_num_threads(1)
splits = load_splits("../shared/data/asdiv-a", seed=0)
model, tok = build_solver_from_spec(SolverSpec(encoder="minilm"), splits["train"], seed=0)
model.eval()
task = MWPTask(tok, model.vocab, splits)
batch = next(iter(task.batches("valid", 8)))
wl = sys.argv[1] if len(sys.argv) > 1 else "decode"
H = {k: v[0] for k, v in head_counts(model).items()}
half = {k: h // 2 for k, h in H.items()}
models = {"dense": model}
for k in H:
    models[k] = uniform_variant(model, k, half[k])
allm = copy.deepcopy(model)
for k in H:
    counts = head_counts(allm)[k]
    prune_heads(allm, {k: {l: list(range(half[k], h)) for l, h in enumerate(counts)}})
models["all"] = allm.eval()
lat = compare_latency({n: (lambda m=m: task.run(m, batch, wl)) for n, m in models.items()}, rounds=40, warmup=3, num_threads=1, reference="dense")
d = lat.stats["dense"].median_ms
ms = {n: d / lat.paired_speedup[n] for n in models}
singles = {k: d - ms[k] for k in H}
print(wl, "dense", round(d, 1), "singles saving", {k: round(v, 2) for k, v in singles.items()}, "sum", round(sum(singles.values()), 2), "all saving", round(d - ms["all"], 2))
