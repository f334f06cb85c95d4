"""The math-word-problem task: the equation solver (encoder + pointer decoder), its data features,
decoding (KV cache), training of teachers, and solver save/load."""
