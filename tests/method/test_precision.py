"""The mixed-precision settings are one list (`raykd.precision`), checked alike by the training
loop's `FitConfig` and the chain's `ChainConfig`, and importing it loads no torch (so a chain
config or a search space validates without it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from raykd.errors import ConfigError
from raykd.method.config import ChainConfig
from raykd.precision import PRECISIONS
from raykd.training import FitConfig


def test_one_list_for_the_loop_and_the_chain():
    import raykd.method.config
    import raykd.training

    assert raykd.training.PRECISIONS is raykd.method.config.PRECISIONS is PRECISIONS


@pytest.mark.parametrize("make", [FitConfig, ChainConfig])
def test_both_configs_take_every_setting_and_refuse_others(make):
    for value in PRECISIONS:
        assert make(mixed_precision=value).mixed_precision == value
    with pytest.raises(ConfigError, match="mixed_precision must be one of"):
        make(mixed_precision="fp16")


def test_the_chain_config_validates_without_torch():
    code = ("import sys, raykd.method.config\n"
            "raykd.method.config.ChainConfig(mixed_precision='bf16')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
