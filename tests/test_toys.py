"""liquidssm.toys: the correlation task and the training harness of the "does liquid help?" toys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from liquidssm import toys


@pytest.mark.parametrize("a", [0.0, 0.5])
def test_task_is_balanced_and_sign_invariant(a):
    u, y = toys.correlation_task(4000, 32, seed=0, a=a)
    assert u.shape == (4000, 32, 1) and u.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(y.double().mean()) - 0.5) < 0.05
    if a == 0.0:  # the label is a function of u that ignores its sign
        stat = (u[:, 1:, 0].double() * u[:, :-1, 0].double()).sum(-1)
        assert torch.equal((stat > 0).long(), y)
        assert torch.equal(((-u)[:, 1:, 0].double() * (-u)[:, :-1, 0].double()).sum(-1) > 0, y.bool())


def test_ar_task_has_the_promised_correlation():
    u, y = toys.correlation_task(2000, 200, seed=1, a=0.8)
    x = u[..., 0].double()
    r = (x[:, 1:] * x[:, :-1]).mean(-1) / (x * x).mean(-1)
    assert float(r[y == 1].mean()) == pytest.approx(0.8, abs=0.05)
    assert float(r[y == 0].mean()) == pytest.approx(-0.8, abs=0.05)


def test_task_is_deterministic_and_validated():
    assert torch.equal(toys.correlation_task(5, 8, seed=3)[0], toys.correlation_task(5, 8, seed=3)[0])
    with pytest.raises(ValueError, match="a:"):
        toys.correlation_task(5, 8, seed=3, a=1.0)
    with pytest.raises(ValueError, match="lag"):
        toys.correlation_task(5, 8, seed=3, lag=8)


class ProductModel(nn.Module):
    """Mean of u_t u_(t-1), scaled: the statistic that defines the white-noise label."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.1]))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        s = (u[:, 1:, 0] * u[:, :-1, 0]).mean(-1, keepdim=True)
        return torch.cat([-self.w * s, self.w * s], dim=-1)


def test_train_classifier_learns_the_statistic():
    train, test = toys.correlation_task(512, 32, seed=0), toys.correlation_task(512, 32, seed=1)
    result = toys.train_classifier(ProductModel(), train, test, steps=50, lr=0.5, batch_size=64, seed=0)
    assert result["test_accuracy"] == 1.0 and result["train_accuracy"] == 1.0 and result["seconds"] >= 0


def test_compare_is_reproducible_per_seed():
    factories = {"product": ProductModel, "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 2))}
    kw = dict(n_train=256, n_test=256, L=16, steps=20, lr=0.1, batch_size=32)
    first = toys.compare(factories, [0, 1], **kw)
    second = toys.compare(factories, [0, 1], **kw)
    assert [(r["model"], r["seed"]) for r in first] == [("product", 0), ("linear", 0), ("product", 1), ("linear", 1)]
    assert [r["test_accuracy"] for r in first] == [r["test_accuracy"] for r in second]
    assert all(r["parameters"] > 0 for r in first)


def test_train_classifier_validates():
    data = toys.correlation_task(8, 4, seed=0)
    with pytest.raises(ValueError, match="lr"):
        toys.train_classifier(ProductModel(), data, data, steps=1, lr=0.0, batch_size=2, seed=0)
