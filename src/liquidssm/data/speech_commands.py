"""Speech Commands v0.02 loader (35 classes and the SC10 subset), 16 kHz and 8 kHz zero-shot.

Liquid-S4 Table 4 (SC35, 16 kHz and 8 kHz) and Table S2 (SC10); chapter
reproductions/01_lra_synthetic_data. Release ``speech_commands_v0.02.tar.gz`` unpacked under
``<data root>/speech_commands/``: :data:`LAYOUT`; registry entry: :data:`SPEC`.

Train = every clip in a class folder that is in neither list. WAVs are read with the standard
library ``wave`` module (no torchaudio); samples are scaled to [-1, 1) by 1/32768 and zero-padded
at the end to 16000. ``resolution=2`` subsamples by 2 (the 8 kHz zero-shot test of S4 and
Liquid-S4). Labels index :data:`ALL_CLASSES` (alphabetical; S4 uses its own fixed order, a
permutation that does not change accuracies). S4 standardises every time index separately with
training statistics; :func:`per_time_statistics` computes them and ``normalize=`` applies them.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import (
    Archive,
    CorruptDataError,
    DatasetMissingError,
    dataset_dir,
    read_text_lines,
    require_file,
)
from liquidssm.data.spec import DatasetSpec

NAME = "speech_commands"
SUBDIR = "speech_commands"
LAYOUT = ("  speech_commands/<word>/<speaker>_nohash_<n>.wav   (35 words, 16-bit PCM mono, 16 kHz, "
          "<= 1 s)\n"
          "  speech_commands/{validation_list,testing_list}.txt   \"<word>/<file>.wav\" per line\n"
          "  speech_commands/_background_noise_/   ignored")
ARCHIVE = Archive("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                  "speech_commands_v0.02.tar.gz", note="tar without a top directory")
ALL_CLASSES = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)
SC10_CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16000


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16-bit PCM mono WAV as float32 in [-1, 1); errors name the file."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise CorruptDataError(
                    f"{path}: expected 16-bit mono PCM, got {w.getnchannels()} channel(s) of "
                    f"{8 * w.getsampwidth()} bits")
            if w.getframerate() != SAMPLE_RATE:
                raise CorruptDataError(f"{path}: sample rate {w.getframerate()} Hz, expected 16000")
            n = w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise CorruptDataError(f"{path}: not a readable WAV file ({e})") from None
    if len(raw) != 2 * n:
        raise CorruptDataError(f"{path}: header announces {n} frames but the data holds {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _read_list(path: Path) -> set[str]:
    """The ``<word>/<file>.wav`` entries of a split list (errors name the file and line)."""
    return {line.strip() for _, line in read_text_lines(path) if line.strip()}


class SpeechCommands(Dataset):
    """Clips as sequences: item ``(x (16000 // resolution, 1) float32, y int)``.

    ``classes="all"`` (35, Liquid-S4 Table 4) or ``"sc10"`` (Table S2); ``split`` in
    ``train``/``val``/``test`` from the official lists. ``normalize=(mean, std)`` with tensors of
    shape ``(16000,)`` applies S4's per-time-index standardisation (before subsampling).
    """

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None,
                 classes: str = "all", resolution: int = 1,
                 normalize: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        check_choice(split, "split", ("train", "val", "test"))
        check_choice(classes, "classes", ("all", "sc10"))
        if resolution not in (1, 2):
            raise ValueError(f"resolution must be 1 (16 kHz) or 2 (8 kHz), got {resolution}")
        base = dataset_dir(SPEC, root)
        val = _read_list(require_file(base / "validation_list.txt", NAME))
        test = _read_list(require_file(base / "testing_list.txt", NAME))
        self.classes = ALL_CLASSES if classes == "all" else SC10_CLASSES
        self.items: list[tuple[Path, int]] = []
        for lab, word in enumerate(self.classes):
            d = base / word
            if not d.is_dir():
                raise DatasetMissingError(
                    f"dataset 'speech_commands': missing class folder {d} (expected "
                    f"{SUBDIR}/<word>/*.wav for the {len(self.classes)} words); run "
                    "`liquidssm data download speech_commands`")
            clips = sorted(p for p in d.glob("*.wav") if p.is_file())
            if not clips:
                raise CorruptDataError(f"dataset 'speech_commands': class folder {d} holds no .wav clips; an "
                                       "interrupted download or copy? Fetch the dataset again")
            for p in clips:
                rel = f"{word}/{p.name}"
                which = "val" if rel in val else "test" if rel in test else "train"
                if which == split:
                    self.items.append((p, lab))
        self.resolution = resolution
        self.normalize = _check_normalize(normalize)

    def __len__(self) -> int:
        return len(self.items)

    def waveform(self, i: int) -> torch.Tensor:
        """Zero-padded 16 kHz waveform ``(16000,)`` of item ``i``."""
        path = self.items[i][0]
        x = read_wav(path)
        if len(x) > SAMPLE_RATE:
            raise CorruptDataError(f"{path}: {len(x)} samples, longer than one second (16000)")
        out = torch.zeros(SAMPLE_RATE)
        out[: len(x)] = torch.from_numpy(x)
        return out

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.waveform(i)
        if self.normalize is not None:
            mean, std = self.normalize
            x = (x - mean) / std
        return x[:: self.resolution].unsqueeze(-1), self.items[i][1]


def _check_normalize(normalize: object) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``None`` or ``(mean, std)``: finite tensors of shape ``(16000,)`` with ``std > 0``."""
    if normalize is None:
        return None
    if not isinstance(normalize, (tuple, list)) or len(normalize) != 2:
        raise TypeError(f"normalize: expected None or a pair (mean, std), got {type(normalize).__name__}")
    out = []
    for name, t in zip(("mean", "std"), normalize, strict=True):
        t = torch.as_tensor(t, dtype=torch.float32)
        if t.shape != (SAMPLE_RATE,) or not bool(torch.isfinite(t).all()):
            raise ValueError(f"normalize {name}: expected {SAMPLE_RATE} finite values (one per time index), got "
                             f"shape {tuple(t.shape)}")
        out.append(t)
    if bool((out[1] <= 0).any()):
        raise ValueError("normalize std: expected values > 0 (per_time_statistics clamps them at 1e-8)")
    return out[0], out[1]


def per_time_statistics(ds: SpeechCommands) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std ``(16000,)`` over the dataset for every time index separately (S4's quirk)."""
    s = torch.zeros(SAMPLE_RATE, dtype=torch.float64)
    s2 = torch.zeros(SAMPLE_RATE, dtype=torch.float64)
    for i in range(len(ds)):
        x = ds.waveform(i).double()
        s += x
        s2 += x * x
    n = max(len(ds), 1)
    mean = s / n
    std = (s2 / n - mean**2).clamp_min(0).sqrt()
    return mean.float(), std.float().clamp_min(1e-8)


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write float samples in [-1, 1) as 16-bit mono PCM."""
    data = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def fixture_clip(label: int, n_classes: int, rng: np.random.Generator, n: int,
                 rate: int = SAMPLE_RATE) -> np.ndarray:
    """One clip of ``n`` samples for class ``label``: a tone whose pitch codes the class.

    Pitches are spaced geometrically from 150 Hz to 1500 Hz (below the 4 kHz Nyquist limit of
    the 8 kHz zero-shot test, so the class survives halving the sampling rate); random phase,
    loudness and a little noise.
    """
    f = 150.0 * 10.0 ** (label / max(n_classes - 1, 1))
    t = np.arange(n) / rate
    amp = rng.uniform(0.2, 0.5)
    x = amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return x + 0.02 * rng.standard_normal(n)


def write_fixture(root: str | os.PathLike[str], classes: str | tuple[str, ...] = "all",
                  n_train: int = 1, n_val: int = 1, n_test: int = 1, clip_samples: int = 2000,
                  seed: int = 0) -> Path:
    """Speech Commands v0.02 layout: ``<word>/<speaker>_nohash_<k>.wav`` at 16 kHz, 16-bit mono.

    ``n_train + n_val + n_test`` clips per word of ``classes`` (``"all"``: the 35 words,
    ``"sc10"``: the SC10 words, or a tuple of words of :data:`ALL_CLASSES` for a partial tree),
    each ``clip_samples`` long (the loader zero-pads to 16000) with the tone of
    :func:`fixture_clip` for the word's index in ``classes``; ``validation_list.txt`` and
    ``testing_list.txt`` name the validation and test clips as the release does, and
    ``_background_noise_/`` is present (and ignored, as in the release). The defaults are the
    tiny stand-in of ``liquidssm data fixtures speech_commands``; the Liquid-S4 smoke tasks pass
    their sizes. Returns ``<root>/speech_commands``.
    """
    if isinstance(classes, str):
        check_choice(classes, "classes", ("all", "sc10"))
        words = ALL_CLASSES if classes == "all" else SC10_CLASSES
    else:
        words = tuple(classes)
        unknown = [w for w in words if w not in ALL_CLASSES]
        if not words or unknown:
            raise ValueError(f"classes: expected 'all', 'sc10' or a non-empty tuple of Speech Commands "
                             f"words, got {classes!r}" + (f" (unknown: {unknown})" if unknown else ""))
    check_int(n_train, "n_train", minimum=1)
    check_int(n_val, "n_val", minimum=0)
    check_int(n_test, "n_test", minimum=0)
    check_int(clip_samples, "clip_samples", minimum=1, maximum=SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR
    val, test = [], []
    for c, word in enumerate(words):
        d = out / word
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n_train + n_val + n_test):
            name = f"{rng.integers(0, 16**8):08x}_nohash_{k}.wav"
            write_wav(d / name, fixture_clip(c, len(words), rng, clip_samples))
            if k >= n_train + n_val:
                test.append(f"{word}/{name}")
            elif k >= n_train:
                val.append(f"{word}/{name}")
    (out / "validation_list.txt").write_text("\n".join(val) + "\n")
    (out / "testing_list.txt").write_text("\n".join(test) + "\n")
    (out / "_background_noise_").mkdir(exist_ok=True)
    write_wav(out / "_background_noise_" / "white_noise.wav", 0.1 * rng.standard_normal(4000))
    return out


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT,
    papers="Liquid-S4 Table 4 (SC35) and Table S2 (SC10)",
    required=(f"{SUBDIR}/validation_list.txt", f"{SUBDIR}/testing_list.txt",
              *(f"{SUBDIR}/{w}" for w in ALL_CLASSES)),
    archives=(ARCHIVE,), marker="validation_list.txt", target=SUBDIR, move="parent",
    fixture=write_fixture,
)
