"""The architecture families raykd can prune: one module each, one `register_family(...)` each.

A family module says, in one `Family` registration, where every prunable structure lives in the
models of that family: its head adapter(s) ("heads"), its FFN adapter(s) ("ffn"), its layer-stack
adapter with the renumber hook ("layers"), the transformers classes they match, the human
"supports" text raykd names when it refuses a model, and how its stock config is written
(`raykd.structures.hf_export`). Everything that finds structures (`heads`, `ffn`, `layers`,
`coverage`, `hf_export`) asks the registry (`raykd.structures.family`) rather than a list of its own.

Built in: `bert` (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA), `gemma` (Gemma: the worked
example of a Llama-layout family that needs only its file), `llama` (Llama, Mistral, Qwen2, Qwen3,
SmolLM2) and `raykd_nn` (raykd's own decoder, `raykd.nn`). Every module of this package is imported
when the registry is first used (`raykd.structures.family`), in name order (a module another builds on, `llama` for `gemma`,
registers first), so adding a family is adding one file here. Families are asked in that order
(the first adapter that matches a module wins; the families' modules match disjoint classes). A family outside raykd calls
`register_family` itself. See docs/structures.md, "How to add a family".
"""

from __future__ import annotations

import importlib
import pkgutil

from raykd.structures.family import (
    Family,
    adapters_for,
    add_adapters,
    family_of,
    register_family,
    registered_families,
    unregister_family,
)

__all__ = ["Family", "adapters_for", "add_adapters", "family_of", "register_family", "registered_families",
           "unregister_family"]


def _import_builtin() -> None:
    """Import (and so register) every family module of this package, in name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_builtin()
