"""Reasoning traces: step-by-step solutions, their pruning (DRP-style) and distillation targets.

`format` fixes the text form every part of raykd reads and writes; the rest builds on it:
`derive` (traces from a gold equation), `steps` (skill-tagged steps and the step/value graph),
`prune` (the rule-based pruner and the gold-answer acceptance), `llm_pruner` (an LLM-prompted
pruner), `filter` (the correctness filter), `tokens` (token counts), `io` (traces files, GSM8K
solutions). See docs/traces.md.
"""
