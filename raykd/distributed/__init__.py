"""Ray Train + Tune + Optuna around the method: the trial worker, the sweep, search spaces, the shared
teacher, and the results callback."""
