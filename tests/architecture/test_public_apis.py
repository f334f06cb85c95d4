"""raykd uses only the public APIs of the libraries it stands on, so a minor release of Optuna or
Ray cannot break it silently (issue 36): no import of a private module or name from them, and no
read of another library's private attribute. A check on the source, so it fails the moment such
a use comes back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import raykd

SOURCES = sorted(Path(raykd.__file__).parent.rglob("*.py"))
GUARDED = ("optuna", "ray", "moocore")
# Private attributes of other libraries' objects that raykd used to read (Ray's OptunaSearch).
FOREIGN_PRIVATE = ("_ot_trials", "_ot_study", "_system_config")
# transformers' attention implementation is switched with its public `set_attn_implementation`;
# transformers 5 has no public getter for it, so reading `config._attn_implementation` is allowed,
# writing it (what raykd's attention capture did before) is not.
FOREIGN_PRIVATE_WRITES = ("_attn_implementation",)


def _private_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in GUARDED:
            private = [p for p in node.module.split(".") if p.startswith("_")]
            private += [a.name for a in node.names if a.name.startswith("_")]
            if private:
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in GUARDED and any(p.startswith("_") for p in a.name.split(".")):
                    found.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.Attribute) and node.attr in FOREIGN_PRIVATE:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in FOREIGN_PRIVATE:
            found.append(f"line {node.value.lineno}: {node.arg}=")
        elif isinstance(node, ast.Constant) and node.value in FOREIGN_PRIVATE:
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_the_check_finds_what_raykd_used_before():
    """The detector itself: each of the private uses raykd had is found."""
    before = (
        "from optuna.study._multi_objective import _is_pareto_front\n"
        "from optuna._hypervolume import compute_hypervolume\n"
        "x = self._ot_trials[trial_id]\n"
        "ray.init(_system_config={'worker_niceness': 5})\n"
    )
    assert len(_private_uses(ast.parse(before))) == 4


def _private_writes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        for target in targets:
            found += [f"line {n.lineno}: .{n.attr} =" for n in ast.walk(target)
                      if isinstance(n, ast.Attribute) and n.attr in FOREIGN_PRIVATE_WRITES]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in FOREIGN_PRIVATE_WRITES):
            found.append(f"line {node.lineno}: setattr(..., {node.args[1].value!r}, ...)")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(Path(raykd.__file__).parent)))
def test_no_private_api_of_optuna_or_ray_and_no_write_to_a_private_transformers_attribute(path):
    tree = ast.parse(path.read_text(), str(path))  # parsed once for both checks
    assert _private_uses(tree) == []
    assert _private_writes(tree) == []


def test_the_write_check_finds_what_the_attention_capture_did_before():
    before = (
        "for cfg, _ in configs.values():\n"
        "    cfg._attn_implementation = CAPTURE_IMPLEMENTATION\n"
        "setattr(model.config, '_attn_implementation', 'eager')\n"
        "old = cfg._attn_implementation  # a read: allowed\n"
    )
    assert len(_private_writes(ast.parse(before))) == 2
