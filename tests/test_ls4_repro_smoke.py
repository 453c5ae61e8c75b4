"""Liquid-S4 reproductions, trained: one smoke experiment per chapter through the engine's ``fit``.

Each chapter of ``book/reproductions/10``-``15`` smoke-trains its representative pair under nbval;
the tests here train a *different* cell of each chapter through the same code path as ``full``
(:func:`liquidssm.repro.train.fit`, the task builders, the results files), so that together they
cover every kind of task: retrieval pairs (AAN), regression (BIDMC HR), grayscale images
(LRA-CIFAR), audio with its zero-shot evaluation (Speech Commands), the Figure 1 sweep (IMDB).
Every run must reach its entry's smoke target. One thread per run: the models are tiny, and a
busy shared CPU slows multi-threaded kernels far more than it slows one thread.
"""

from __future__ import annotations

import pytest
import torch

from liquidssm.repro import tables
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.papers.liquid_s4 import experiments as ls4

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fit(exp_id: str, tmp_path):
    from liquidssm.repro.train import fit

    run_dir = tmp_path / "run" / exp_id
    rec = fit(exp_id, "smoke", results_dir=tmp_path / "results", run_dir=run_dir,
              cache_dir=tmp_path / "cache", progress=False)
    return rec, run_dir


def _reached(exp_id: str, value: float) -> bool:
    exp = get_experiment(exp_id)
    return value <= exp.smoke_target if not exp.maximise else value >= exp.smoke_target


@pytest.mark.parametrize("exp_id", [
    "ls4-t1-aan",         # chapter 10 (Table 1): the retrieval head on document pairs
    "ls4-t2-hr",          # chapter 11 (Table 2): regression, model selected on validation RMSE
    "ls4-t1-cifar",       # chapter 12 (Table 3's grayscale sibling): 1024-pixel sequences
    "ls4-f1-imdb-p2",     # chapter 15 (Figure 1): a sweep point on character-level text
])
def test_one_smoke_experiment_per_chapter_learns(exp_id, tmp_path):
    rec, _ = _fit(exp_id, tmp_path)
    assert rec["status"] == "complete" and rec["data"]["source"] in ("fixture", "generated")
    assert _reached(exp_id, rec["value"]), (exp_id, rec["value"], get_experiment(exp_id).smoke_target)
    if rec["chance"] is not None:
        assert rec["value"] > rec["chance"]


@pytest.mark.parametrize("source,target", [
    ("ls4-t4-sc35-16khz-s4", "ls4-t4-sc35-8khz-s4"),   # chapter 13 (Table 4)
    ("ls4-ts2-sc10-16khz", "ls4-ts2-sc10-8khz"),       # chapter 14 (Table S2)
])
def test_speech_smoke_run_and_its_zero_shot_evaluation(source, target, tmp_path):
    from liquidssm.repro import results
    from liquidssm.repro.zeroshot import evaluate_zero_shot

    rec, run_dir = _fit(source, tmp_path)
    assert _reached(source, rec["value"]), (source, rec["value"])
    shot = evaluate_zero_shot(target, "smoke", results_dir=tmp_path / "results", run_dir=run_dir,
                              cache_dir=tmp_path / "cache")
    saved = results.read_result(results.result_path(target, "smoke", rec["seed"], tmp_path / "results"))
    assert saved["value"] == shot["value"] and saved["zero_shot"]["of"] == source
    assert saved["zero_shot"]["source_value"] == rec["value"] and saved["training"]["steps"] == 0
    assert saved["data"]["n_val"] == rec["data"]["n_val"]  # the same clips, at half the rate
    exp = get_experiment(target)
    if exp.smoke_target is not None:
        assert shot["value"] >= exp.smoke_target, (target, shot["value"])  # S4: rate-invariant
    df = results.load_results(tmp_path / "results")
    assert set(df["experiment"]) == {source, target}


def test_every_smoke_target_sits_above_guessing(tmp_path):
    """Chance and the majority class (or the mean predictor) on each entry's smoke data."""
    for exp in ls4.ENTRIES:
        if exp.smoke_target is None:
            continue
        base = tables.baselines(exp.id, "smoke", cache_dir=tmp_path / "cache")
        if not exp.maximise:
            assert exp.smoke_target < 0.75 * base["mean_rmse"], (exp.id, base)
        else:
            assert exp.smoke_target > max(base["chance"], base["majority"]) + 5, (exp.id, base)
