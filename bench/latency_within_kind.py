"""Do per-layer savings add within one kind? The table's uniform encoder variants (every layer at
k heads) and 5 seeded uneven encoder shapes, timed together (paired ratios, 25 rounds); prints the
additive prediction against the measurement (untrained MiniLM solver, ASDiv-A valid batch 8).

    python bench/latency_within_kind.py decode
"""
import sys, copy, random, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from raykd.data import load_splits
from raykd.structures import prune_heads
from raykd.measure import compare_latency
from raykd.measure.latency import uniform_variant
from raykd.task.mwp import MWPTask
from raykd.task.teacher import SolverSpec, build_solver_from_spec
torch.set_num_threads(1)
splits = load_splits("../shared/data/asdiv-a", seed=0)
model, tok = build_solver_from_spec(SolverSpec(encoder="minilm"), splits["train"], seed=0)
model.eval(); task = MWPTask(tok, model.vocab, splits); batch = next(iter(task.batches("valid", 8)))
wl = sys.argv[1]
H = 12; L = 6
models = {"dense": model}
for k in range(H):
    models[f"u{k}"] = uniform_variant(model, "encoder_self", k)
rng = random.Random(0)
shapes = []
for i in range(5):
    counts = [rng.randint(0, 12) for _ in range(L)]
    m = copy.deepcopy(model); prune_heads(m, {"encoder_self": {l: list(range(c, H)) for l, c in enumerate(counts) if c < H}})
    models[f"s{i}"] = m.eval(); shapes.append(counts)
lat = compare_latency({n: (lambda m=m: task.run(m, batch, wl)) for n, m in models.items()}, rounds=25, warmup=2, num_threads=1, reference="dense")
d = lat.stats["dense"].median_ms
ms = {n: d / lat.paired_speedup[n] for n in models}
saving = [(d - ms[f"u{k}"]) / L for k in range(H)] + [0.0]
print("per-layer saving by kept heads", [round(x, 2) for x in saving])
for i, c in enumerate(shapes):
    pred = d - sum(saving[x] for x in c)
    print(c, "pred", round(d / pred, 3), "meas", round(lat.paired_speedup[f"s{i}"], 3))
