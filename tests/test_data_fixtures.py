"""The fixture writers of IMDB, AAN, CIFAR-10, Speech Commands and BIDMC: one per dataset.

Each ``liquidssm.data.<name>.write_fixture`` serves ``liquidssm data fixtures`` (its defaults,
through the dataset's ``SPEC``) and the Liquid-S4 smoke tasks (their sizes). Either way its files
must load with the release loader and carry a learnable signal: a hand-made statistic, with no
model, separates the classes or follows the target. Every test runs both ways: ``"spec"`` writes
the defaults through :meth:`~liquidssm.data.spec.DatasetSpec.write_fixture`, ``"sized"`` calls
the writer with larger sizes and another seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from liquidssm.data import aan, bidmc, cifar, imdb, speech_commands
from liquidssm.data.spec import DatasetSpec

WAYS = ("spec", "sized")


def _write(way: str, spec: DatasetSpec, writer: Callable[..., Path], root: Path, **sized) -> Path:
    """Write a fixture under ``root`` by ``way`` and return the dataset folder the loader opens."""
    if way == "spec":
        out = spec.write_fixture(root)
        assert not spec.missing(root)  # `liquidssm data status` would call it present
    else:
        out = writer(root, **sized, seed=1)
    assert out == root / spec.subdir
    return out


@pytest.mark.parametrize("way", WAYS)
def test_imdb_fixture_words_depend_on_the_label(tmp_path, way):
    _write(way, imdb.SPEC, imdb.write_fixture, tmp_path, n_train=60, n_test=30)
    ds = imdb.IMDB("test", root=tmp_path, l_max=4096, min_freq=1)
    score = [sum(t.count(w) for w in imdb.FIXTURE_POSITIVE) - sum(t.count(w) for w in imdb.FIXTURE_NEGATIVE)
             for t in ds.texts]
    labels = [y for _, y in ds.items]
    acc = np.mean([(s > 0) == (y == 1) for s, y in zip(score, labels, strict=True)])
    assert acc > 0.8 and np.mean(labels) == 0.5, acc
    # release-like text, kept as characters by the loader: markup, capitals, non-ASCII
    assert all(t.endswith(imdb.FIXTURE_CLOSING) and t[0].isupper() for t in ds.texts)
    assert {"<", "é", "—"} <= set(ds.vocab.stoi)


@pytest.mark.parametrize("way", WAYS)
def test_aan_fixture_pairs_share_a_topic_exactly_when_labelled_1(tmp_path, way):
    _write(way, aan.SPEC, aan.write_fixture, tmp_path, n_train=40, n_val=10, n_test=100)
    rows = aan.AAN("test", root=tmp_path).rows

    def topic(text: str) -> int:
        return int(np.argmax([sum(text.count(w) for w in words) for words in aan.FIXTURE_TOPICS]))

    acc = np.mean([(topic(r[3]) == topic(r[4])) == (r[0] == 1) for r in rows])
    assert acc > 0.85 and np.mean([r[0] for r in rows]) == 0.5, acc
    assert any('"' in r[3] + r[4] for r in rows)  # quote characters, as in the release


@pytest.mark.parametrize("way", WAYS)
def test_cifar_fixture_stripes_code_the_class(tmp_path, way):
    _write(way, cifar.SPEC, cifar.write_fixture, tmp_path, n_per_batch=40)
    for grayscale in (True, False):
        ds = cifar.CIFAR10Sequence("test", root=tmp_path, grayscale=grayscale)
        img = ds.x.reshape(len(ds), 32, 32, -1).mean(-1)
        rows = torch.fft.rfft(img.mean(2) - img.mean((1, 2))[:, None], dim=-1).abs()  # horizontal
        cols = torch.fft.rfft(img.mean(1) - img.mean((1, 2))[:, None], dim=-1).abs()  # vertical
        pred = torch.cat([rows, cols], -1).argmax(-1)  # the dominant stripe frequency and orientation
        by_class = {c: torch.mode(pred[ds.y == c]).values.item() for c in range(10)}
        assert len(set(by_class.values())) == 10  # ten distinct signatures
        acc = np.mean([by_class[int(c)] == int(p) for c, p in zip(ds.y, pred, strict=True)])
        assert acc > 0.9, (grayscale, acc)


@pytest.mark.parametrize("way,classes", [("spec", "all"), ("sized", "all"), ("sized", "sc10")])
def test_speech_fixture_pitch_codes_the_class_at_both_rates(tmp_path, way, classes):
    _write(way, speech_commands.SPEC, speech_commands.write_fixture, tmp_path, classes=classes,
           n_train=2, n_val=1, n_test=1, clip_samples=1000)
    n = 1000 if way == "sized" else 2000  # clip_samples
    for resolution in (1, 2):
        ds = speech_commands.SpeechCommands("val", root=tmp_path, classes=classes, resolution=resolution)
        peaks = []
        for i in range(len(ds)):
            x = ds[i][0][: n // resolution, 0]
            spec = torch.fft.rfft(x, n=8000 // resolution).abs()
            peaks.append(int(spec.argmax()) * 2)  # Hz: bins of 16000/8000 = 2 Hz at either rate
        labels = [y for _, y in ds.items]
        assert len(ds) == len(ds.classes) and labels == sorted(labels)
        assert all(a < b for a, b in zip(peaks, peaks[1:])), peaks  # pitch rises with the class


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("target", bidmc.TARGETS)
def test_bidmc_fixture_series_encode_the_target(tmp_path, way, target):
    _write(way, bidmc.SPEC, bidmc.write_fixture, tmp_path, n_train=60, n_test=40, length=200)
    ds = bidmc.BIDMC("train", target=target, root=tmp_path)
    x, y = ds.x.double(), ds.y.double()
    if target == "SpO2":
        feat = x[:, :, 0].std(1)  # the "PPG" pulse amplitude (the "ECG" one does not change)
    else:
        channel = 1 if target == "HR" else 0
        spec = torch.fft.rfft(x[:, :, channel] - x[:, :, channel].mean(1, keepdim=True), dim=1).abs()
        band = slice(1, 5) if target == "RR" else slice(4, 13)
        feat = (spec[:, band].argmax(1) + band.start).double()
    r = np.corrcoef(feat.numpy(), y.numpy())[0, 1]
    assert r > 0.8, (target, r)


@pytest.mark.parametrize("call,pattern", [
    (lambda r: imdb.write_fixture(r, n_train=0), "n_train: expected an int >= 1"),
    (lambda r: aan.write_fixture(r, n_val=2.0), "n_val: expected an int"),
    (lambda r: cifar.write_fixture(r, n_per_batch="3"), "n_per_batch: expected an int"),
    (lambda r: speech_commands.write_fixture(r, classes="sc35"), "classes: expected one of"),
    (lambda r: speech_commands.write_fixture(r, classes=("yes", "maybe")), r"unknown: \['maybe'\]"),
    (lambda r: speech_commands.write_fixture(r, clip_samples=16001), "clip_samples: expected an int <= 16000"),
    (lambda r: bidmc.write_fixture(r, length=0), "length: expected an int >= 1"),
])
def test_fixture_sizes_are_checked_before_anything_is_written(tmp_path, call, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []
