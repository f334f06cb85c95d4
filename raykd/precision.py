"""The mixed-precision settings a training run may ask for, defined once for the training loop's
`FitConfig` (`raykd.training`) and the chain's `ChainConfig` (`raykd.method.config`). A module of
its own, importing nothing, so validating a chain config or a search space loads no torch."""

PRECISIONS = ("auto", "bf16", "fp32")  # "auto": bf16 autocast on CUDA, fp32 elsewhere; "bf16": any device
