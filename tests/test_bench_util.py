"""Measurement helpers of the benchmarks: operator counts and saved-for-backward memory."""

from __future__ import annotations

import torch

from liquidssm.bench._util import OperatorCounter, saved_for_backward_mb


def test_operator_counter_counts_aten_calls():
    x = torch.randn(4)
    with OperatorCounter() as one:
        x + 1
    with OperatorCounter() as three:
        ((x + 1) * 2).exp()
    assert one.n == 1 and three.n == 3


def test_saved_for_backward_counts_what_autograd_keeps():
    w = torch.randn(256, 256, requires_grad=True)  # float32: 256 KiB
    x = torch.randn(256, 256)
    mb = saved_for_backward_mb(lambda: (w * x).sum())  # d/dw needs x only: 256 KiB
    assert abs(mb - 256 * 256 * 4 / 2**20) < 1e-9
    both = saved_for_backward_mb(lambda: (w * w).sum())  # w * w keeps w twice
    assert abs(both - 2 * 256 * 256 * 4 / 2**20) < 1e-9
    assert saved_for_backward_mb(lambda: x + 1) == 0.0  # nothing needs a gradient
