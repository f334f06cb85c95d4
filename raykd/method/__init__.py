"""The compression method, structure-agnostic and free of Ray: importance, schedule, pruner,
distillation losses, the recursive chain, per-round measurement and the latency table."""
