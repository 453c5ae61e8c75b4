"""Model configurations: validation, round trip, hashing (``liquidssm.configs``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from liquidssm.configs import LrcSSMConfig, SequenceModelConfig, config_from_dict


def test_model_configs_validate_round_trip_and_hash():
    c = SequenceModelConfig(d_output=10, n_tokens=18, layer="liquid", liquid_order=5)
    assert config_from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.config_hash() == SequenceModelConfig(d_output=10, n_tokens=18, layer="liquid",
                                                  liquid_order=5).config_hash()
    assert c.replace(d_model=8).config_hash() != c.config_hash()
    with pytest.raises(ValueError, match="liquid_order"):
        SequenceModelConfig(d_output=2, d_input=1, liquid_order=1)
    with pytest.raises(ValueError, match="d_input, n_tokens"):
        SequenceModelConfig(d_output=2)
    with pytest.raises(ValueError, match="n_blocks"):
        LrcSSMConfig(d_input=2, d_output=2, n_blocks=0)
    with pytest.raises(ValueError, match="unknown field"):
        c.replace(order=3)


def test_config_from_dict_names_bad_input():
    with pytest.raises(ValueError, match="unknown model 'Foo'"):
        config_from_dict({"model": "Foo"})
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['p'\]"):
        config_from_dict({"model": "LrcSSMModel", "d_input": 2, "d_output": 2, "p": 3})
    with pytest.raises(TypeError, match="elastance"):
        LrcSSMConfig(d_input=2, d_output=2, elastance=1)


def test_configs_import_without_torch():
    code = "import sys, liquidssm.configs; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
