"""Bad device names for a training run: refused by ``_checks.check_device`` with the valid names.

The validator is for the engine (``liquidssm.repro.train.fit`` and ``liquidssm train --device``),
to call before any data or model is built; here the validator itself, whatever machine runs the
tests (CUDA availability is monkeypatched both ways).
"""

from __future__ import annotations

import pytest
import torch

from liquidssm._checks import DEVICES, check_device

VALID = r"expected one of \['cpu', 'cuda', 'gpu', 'auto'\]"

BAD_DEVICES = [
    ("tpu", ValueError, VALID + r", got 'tpu'$"),
    ("mps", ValueError, VALID + r", got 'mps'$"),
    ("CUDA", ValueError, VALID + r", got 'CUDA' \(names are lower case: 'cuda'\)"),
    ("cuda:1", ValueError, VALID + r", got 'cuda:1' \(a device kind without an index; the number of GPUs is the "
                                   r"devices argument\)"),
    ("", ValueError, VALID + r", got ''"),
    (0, TypeError, VALID + r", got int 0"),
    (None, TypeError, VALID + r", got NoneType None"),
    (torch.device("cpu"), TypeError, VALID + r", got device device\(type='cpu'\)"),
]


@pytest.mark.parametrize("device,exc,pattern", BAD_DEVICES, ids=[repr(d[0]) for d in BAD_DEVICES])
def test_unknown_devices_are_refused_with_the_valid_names(device, exc, pattern):
    with pytest.raises(exc, match="device: " + pattern):
        check_device(device)


def test_cuda_without_a_gpu_is_refused_before_any_work(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "gpu"):
        with pytest.raises(ValueError, match=rf"device: '{name}' asks for a CUDA GPU, but torch.cuda.is_available\(\) "
                                             r"is False on this machine \(torch .*\); use device='cpu' or 'auto'"):
            check_device(name)
    assert check_device("gpu", require_available=False) == "cuda"  # a launcher submitting elsewhere
    assert check_device("auto") == "auto" and check_device("cpu") == "cpu"


def test_valid_devices_are_returned_as_lightning_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [check_device(d) for d in DEVICES] == ["cpu", "cuda", "cuda", "auto"]
    with pytest.raises(ValueError, match="accelerator: expected one of"):
        check_device("xla", name="accelerator")
