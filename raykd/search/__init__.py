"""What the sweep's search decides beyond sampling: constraints on metrics, and multi-objective
successive halving over chain rounds. Ray-free (the Tune scheduler in `raykd.distributed.scheduler`
is a thin shell around `successive_halving`), so the in-process benchmarks use the same rules."""
