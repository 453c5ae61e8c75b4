"""Dataset specs owned by their loaders, collected by the registry; public collate functions."""

from __future__ import annotations

import pytest
import torch

from liquidssm.data import (
    DatasetMissingError,
    DatasetSpec,
    aan,
    bidmc,
    cifar,
    imdb,
    listops,
    pad_collate,
    pad_pair_collate,
    pathfinder,
    ppg_dalia,
    speech_commands,
    uea,
)
from liquidssm.data._common import dataset_dir
from liquidssm.data.collate import pad_sequences
from liquidssm.data.registry import DATASETS, get

OWNERS = {"listops": listops.SPEC, "imdb": imdb.SPEC, "aan": aan.SPEC, "cifar10": cifar.SPEC,
          "pathfinder32": pathfinder.SPEC, "pathx": pathfinder.PATHX_SPEC,
          "speech_commands": speech_commands.SPEC, "bidmc": bidmc.SPEC, "uea": uea.SPEC,
          "lrcssm_splits": uea.LRCSSM_SPLITS_SPEC, "ppg_dalia": ppg_dalia.SPEC}


def test_registry_only_collects_the_loaders_specs():
    assert list(DATASETS) == list(OWNERS)
    for name, spec in OWNERS.items():
        assert DATASETS[name] is spec and get(name) is spec
        assert all(r.startswith(spec.subdir + "/") for r in spec.required), name
        assert spec.layout.startswith("  ") and spec.fixture is not None and spec.papers, name
    with pytest.raises(KeyError, match="valid names: listops"):
        get("nope")


def test_layout_is_written_once_in_the_loader():
    for module in (listops, imdb, aan, cifar, speech_commands, bidmc, uea):
        assert module.SPEC.layout == module.LAYOUT
    assert "pathfinder128/" in pathfinder.PATHX_SPEC.layout and "<R>" not in pathfinder.SPEC.layout
    assert uea.LRCSSM_SPLITS_SPEC.layout == uea.LRCSSM_SPLITS_LAYOUT


def test_every_fixture_makes_its_dataset_present(tmp_path):
    for name, spec in DATASETS.items():
        if name in ("pathx", "speech_commands", "uea"):
            continue  # larger fixtures; written by the loader tests
        assert spec.missing(tmp_path), name
        spec.fixture(tmp_path)
        assert spec.missing(tmp_path) == [], name


def test_pathfinder_spec_for_any_resolution(tmp_path):
    spec = pathfinder.spec_for(64)
    assert spec.name == "pathfinder64" and spec.subdir == "pathfinder/pathfinder64"
    assert "64 x 64" in spec.layout and spec.papers == ""
    with pytest.raises(DatasetMissingError, match=r"(?s)pathfinder64.*expected layout:.*pathfinder64/curv"):
        pathfinder.PathFinder(resolution=64, root=tmp_path)
    with pytest.raises(ValueError, match="resolution"):
        pathfinder.spec_for(48)


def test_dataset_dir_names_the_layout_from_the_callers_spec(tmp_path):
    spec = DatasetSpec(name="toy", subdir="toy", layout="  toy/a.txt", required=("toy/a.txt",),
                       archives=(), marker="a.txt", target="toy")
    with pytest.raises(DatasetMissingError, match=r"(?s)'toy'.*expected layout:\n  toy/a.txt\n.*fixtures toy"):
        dataset_dir(spec, tmp_path)
    (tmp_path / "toy" / "deeper").mkdir(parents=True)
    assert dataset_dir(spec, tmp_path) == tmp_path / "toy"
    assert dataset_dir(spec, tmp_path, "deeper") == tmp_path / "toy" / "deeper"
    assert spec.missing(tmp_path) == [tmp_path / "toy" / "a.txt"]


def test_spec_validation():
    with pytest.raises(ValueError, match="move must be"):
        DatasetSpec(name="x", subdir="x", layout="", required=("x",), archives=(), marker="m",
                    target="x", move="copy")
    with pytest.raises(ValueError, match="required"):
        DatasetSpec(name="x", subdir="x", layout="", required=(), archives=(), marker="m",
                    target="x")


def test_pad_sequences_and_collates():
    a, b = torch.tensor([3, 4, 5]), torch.tensor([7])
    x, lengths = pad_sequences([a, b], pad=9)
    assert x.tolist() == [[3, 4, 5], [7, 9, 9]] and lengths.tolist() == [3, 1]
    x, y, lengths = pad_collate([(a, 1), (b, 0)])
    assert x.shape == (2, 3) and y.tolist() == [1, 0] and lengths.tolist() == [3, 1]
    x, y, lengths = pad_pair_collate([(a, b, 1), (b, a, 0)])
    assert x.tolist() == [[3, 4, 5], [7, 0, 0], [7, 0, 0], [3, 4, 5]]
    assert y.tolist() == [1, 0] and lengths.tolist() == [3, 1, 1, 3]
    assert aan.AAN.collate is pad_pair_collate
    with pytest.raises(ValueError, match="empty batch"):
        pad_collate([])
