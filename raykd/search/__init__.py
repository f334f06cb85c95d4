"""What a sweep searches and decides, without Ray: the space (YAML schema, validation, the Optuna
sampler it names: `space`), constraints on metrics, multi-objective successive halving over chain
rounds, and the pre-flight checks of a new sweep. Ray-free (Ray Tune's view of a space is
`raykd.distributed.space`; the Tune scheduler in `raykd.distributed.scheduler` is a thin shell
around `successive_halving`), so analysis and the in-process benchmarks use the same rules."""
