"""Speech Commands, the .ts parser, BIDMC, UEA and the LrcSSM split pickles (safe loading)."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch

from liquidssm.data import (
    CorruptDataError,
    DatasetMissingError,
    bidmc,
    safe_pickle,
    speech_commands,
    tsfile,
    uea,
)


@pytest.fixture(scope="module")
def sc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sc")
    speech_commands.write_fixture(root)  # one train, val and test clip per word
    return root


def test_speech_commands_official_lists(sc_root):
    base = sc_root / "speech_commands"
    val = set((base / "validation_list.txt").read_text().split())
    tr = speech_commands.SpeechCommands("train", root=sc_root)
    va = speech_commands.SpeechCommands("val", root=sc_root)
    te = speech_commands.SpeechCommands("test", root=sc_root)
    assert (len(tr), len(va), len(te)) == (35, 35, 35)
    assert {f"{p.parent.name}/{p.name}" for p, _ in va.items} == val
    x, y = va[0]
    assert x.shape == (16000, 1) and y == 0
    raw = speech_commands.read_wav(va.items[0][0])
    torch.testing.assert_close(x[: len(raw), 0], torch.from_numpy(raw))
    assert (x[len(raw):] == 0).all()  # zero-padded at the end
    x8, _ = speech_commands.SpeechCommands("val", root=sc_root, resolution=2)[0]
    torch.testing.assert_close(x8[:, 0], x[::2, 0])
    sc10 = speech_commands.SpeechCommands("train", root=sc_root, classes="sc10")
    assert len(sc10) == 10 and sc10.classes[sc10[0][1]] == "yes"


def test_speech_commands_normalisation_and_errors(sc_root, tmp_path):
    tr = speech_commands.SpeechCommands("train", root=sc_root, classes="sc10")
    mean, std = speech_commands.per_time_statistics(tr)
    assert mean.shape == (16000,)
    normed = speech_commands.SpeechCommands("train", root=sc_root, classes="sc10",
                                            normalize=(mean, std))
    stack = torch.stack([normed[i][0][:, 0] for i in range(len(normed))])
    assert stack[:, 100].mean().abs() < 1e-4  # every time index standardised separately
    bad = tmp_path / "bad.wav"
    speech_commands.write_wav(bad, np.zeros(100))
    data = bad.read_bytes()
    bad.write_bytes(data[:-20])
    with pytest.raises(CorruptDataError, match=r"bad.wav: header announces 100 frames"):
        speech_commands.read_wav(bad)
    bad.write_bytes(b"RIFFxxxxWAVEjunk")
    with pytest.raises(CorruptDataError, match="bad.wav: not a readable WAV"):
        speech_commands.read_wav(bad)
    with pytest.raises(DatasetMissingError, match="speech_commands"):
        speech_commands.SpeechCommands("train", root=tmp_path)
    partial = tmp_path / "p"
    speech_commands.write_fixture(partial, classes=("yes", "no"))
    with pytest.raises(DatasetMissingError, match=r"missing class folder .*speech_commands/up"):
        speech_commands.SpeechCommands("train", root=partial, classes="sc10")


def test_ts_roundtrip_and_errors(tmp_path):
    X = np.arange(24, dtype=float).reshape(2, 4, 3)
    p = tmp_path / "a.ts"
    tsfile.write_ts(p, X, ["x", "y"], "Toy", ["x", "y"])
    d = tsfile.read_ts(p)
    assert d.X.shape == (2, 4, 3) and (d.X == X).all() and d.y == ["x", "y"]
    assert d.class_labels == ["x", "y"] and d.header["problemname"] == "Toy"
    text = p.read_text().splitlines()
    p.write_text("\n".join(text[:-1] + [text[-1].replace(":y", ":z")]) + "\n")
    with pytest.raises(CorruptDataError, match=rf"a.ts:{len(text)}: class 'z'"):
        tsfile.read_ts(p)
    p.write_text("\n".join(text[:-1] + [text[-1].replace("13.0", "1e")]) + "\n")
    with pytest.raises(CorruptDataError, match=rf"a.ts:{len(text)}: value '1e'"):
        tsfile.read_ts(p)
    p.write_text("\n".join(text[:-1] + ["1,2,3,4:5,6,7,8:y"]) + "\n")
    with pytest.raises(CorruptDataError, match="2 dimensions, header says 3"):
        tsfile.read_ts(p)
    p.write_text("\n".join(text[:-1] + ["1,2,3:5,6,7,8:9,9,9,9:y"]) + "\n")
    with pytest.raises(CorruptDataError, match="lengths"):
        tsfile.read_ts(p)
    p.write_text("\n".join(text[:-3]) + "\n")  # no @data
    with pytest.raises(CorruptDataError, match="no @data"):
        tsfile.read_ts(p)


def test_bidmc_split_like_s4(tmp_path):
    bidmc.write_fixture(tmp_path, n_train=20, n_test=8)
    parts = {s: bidmc.BIDMC(s, target="HR", root=tmp_path) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [19, 4, 5]
    x, y = parts["train"][0]
    assert x.shape == (64, 2) and y.dtype == torch.float32
    split = bidmc.s4_bidmc_split(28)
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(28))
    # scikit-learn's ShuffleSplit: RandomState(0).permutation, test = first ceil(0.3 n)
    perm = np.random.RandomState(0).permutation(28)
    assert set(split["train"]) == set(perm[9:])
    try:
        from sklearn.model_selection import train_test_split
    except ImportError:
        return
    tr, rest = train_test_split(np.arange(28), test_size=0.3, random_state=0)
    assert (tr == split["train"]).all()


def test_bidmc_missing_names_path(tmp_path):
    (tmp_path / "bidmc").mkdir()
    with pytest.raises(DatasetMissingError, match=r"BIDMC32RR_TRAIN.ts"):
        bidmc.BIDMC("train", root=tmp_path)


def test_uea_merge_dedup_split(tmp_path):
    uea.write_fixture(tmp_path, names=("Heartbeat", "EthanolConcentration"), n_train=16, n_test=12)
    X, y, classes = uea.load_merged("Heart", root=tmp_path)
    assert X.shape == (27, 24, 61) and classes == ["abnormal", "normal"]  # 28 - 1 duplicate
    assert len(np.unique(X.reshape(27, -1), axis=0)) == 27
    sizes = [len(uea.UEA("Ethanol", s, seed=2345, root=tmp_path)) for s in ("train", "val", "test")]
    assert sizes == [18, 4, 5] and sum(sizes) == 27
    s = uea.split_indices(409, 2345)  # Heartbeat's real size -> LrcSSM's 286/61/62
    assert [len(s[k]) for k in ("train", "val", "test")] == [286, 61, 62]
    a = uea.UEA("Ethanol", "test", seed=3456, root=tmp_path)
    b = uea.UEA("Ethanol", "test", seed=3456, root=tmp_path)
    c = uea.UEA("Ethanol", "test", seed=4567, root=tmp_path)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    t = uea.UEA("Ethanol", "train", root=tmp_path, include_time=True)
    assert t.x.shape[-1] == 4 and t.x[0, 3, 0].item() == pytest.approx(3 / 24)
    with pytest.raises(ValueError, match="name"):
        uea.load_merged("Nope", root=tmp_path)


def test_lrcssm_split_pickles_load_safely(tmp_path):
    base = uea.write_lrcssm_split_fixture(tmp_path, "SCP1", seed=2345, n=20, length=16, channels=6)
    raw = safe_pickle.load_array_pickle(base / "X_train.pkl")
    assert raw.shape == (14, 16, 7) and raw.dtype == np.float32
    d = uea.load_lrcssm_split("SCP1", 2345, root=tmp_path)
    x, y = d["train"]
    assert x.shape == (14, 16, 6) and y.dtype == torch.long
    torch.testing.assert_close(x, torch.from_numpy(raw[..., 1:]))  # column 0 (time) dropped
    keep = uea.load_lrcssm_split("SCP1", 2345, root=tmp_path, drop_first_channel=False)
    assert keep["val"][0].shape[-1] == 7
    # plain NumPy pickles (any protocol) also load
    p = tmp_path / "plain.pkl"
    p.write_bytes(pickle.dumps(np.eye(3), protocol=2))
    assert (safe_pickle.load_array_pickle(p) == np.eye(3)).all()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    p = tmp_path / "X_train.pkl"
    p.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"refusing to load global (posix|os)\.system"):
        safe_pickle.load_array_pickle(p)
    p.write_bytes(pickle.dumps({"a": 1}))  # harmless but not an array
    with pytest.raises(safe_pickle.UnsafePickleError, match="expected an array"):
        safe_pickle.load_array_pickle(p)
    p.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(safe_pickle.UnsafePickleError, match="builtins.eval"):
        safe_pickle.load_array_pickle(p)
    good = safe_pickle.dumps_like_jax(np.ones((2, 2), np.float32))
    p.write_bytes(good[:-10])
    with pytest.raises(pickle.UnpicklingError, match="corrupt or truncated"):
        safe_pickle.load_array_pickle(p)
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle.NumpyOnlyUnpickler(io.BytesIO(b"c_codecs\nencode\n(Vx\nVutf-7\ntR.")).load()
