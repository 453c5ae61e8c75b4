"""Every ``full`` registry entry steps: one forward and backward at its full sequence length and
width on a synthetic batch of its task's real shapes, with a finite loss and finite gradients.

Issue 20 item 4; :func:`liquidssm.repro.plan.step_check` does the work (shared with
``liquidssm plan``). What is and is not the full run, so CI stays within its budget on 2 cores:

* batch 1 for every entry (one document pair for AAN), full length, full width (``d_model``,
  ``d_state``, liquid order and window, heads): the memory and time of a full batch are
  ``liquidssm plan``'s business, not CI's;
* one block of the entry's ``n_blocks`` (the blocks are copies of one layer; the parameter count is
  taken on the full-depth model and checked positive);
* eager solvers and the pure-torch Cauchy backend (keops's one-off compile is not for CI; both
  backends agree in ``tests/test_cauchy.py``);
* entries whose step is the very same computation are stepped once
  (:func:`~liquidssm.repro.plan.step_groups`: a zero-shot cell and its source).
"""

from __future__ import annotations

import math

import pytest
import torch

from liquidssm.repro import plan

GROUPS = plan.step_groups()


@pytest.mark.slow
@pytest.mark.parametrize("ids", list(GROUPS.values()), ids=lambda ids: ids[0])
def test_full_entry_steps(ids):
    torch.set_num_threads(1)
    out = plan.step_check(ids[0])
    assert math.isfinite(out["loss"]), (ids, out)
    assert out["finite_grads"], (ids, out)
    assert out["parameters"] > 0


def test_groups_cover_every_entry():
    from liquidssm.repro.experiments import EXPERIMENTS

    covered = [i for ids in GROUPS.values() for i in ids]
    assert sorted(covered) == sorted(EXPERIMENTS)
    # the zero-shot cells share their source's computation
    assert any(len(ids) > 1 and any("8khz" in i for i in ids) for ids in GROUPS.values())
