"""PPG-DaLiA heart-rate regression (LrcSSM Table 7, App. C) from the original release, Log-NCDE processing.

LrcSSM Table 7; chapter reproductions/25_lrcssm_table7. Release (Reiss et al. 2019, UCI "PPG-DaLiA")
under ``<data root>/ppg_dalia/``: :data:`LAYOUT`; registry entry: :data:`SPEC`. One pickle per
subject holds a dict: ``signal`` (``wrist``: ``ACC`` (N, 3) at 32 Hz, ``BVP`` (N, 1) at 64 Hz,
``EDA`` and ``TEMP`` (N, 1) at 4 Hz; ``chest``: RespiBAN signals, unused), ``label`` (the ECG
heart rate of 8-s windows shifted by 2 s, i.e. one value every 2 s), ``activity``,
``questionnaire``, ``rpeaks``, ``subject``. The pickles are read with a restricted unpickler
(:func:`load_subject`): only NumPy arrays and numeric NumPy scalars are rebuilt.

Processing, as the Log-NCDE pipeline that LinOSS and LrcSSM follow is described (reference
§5.3; its code is not used here):

1. the six wrist channels (ACC x 3, BVP, EDA, TEMP) brought to one rate, ``rate`` Hz (64 in the
   benchmark), **by repeating the last sample** of the slower channels (our choice: the
   description does not say how they were aligned);
2. each channel min-max scaled to [-1, 1] over all subjects, and the heart rate too
   (:func:`scaling`);
3. per subject, the recording cut into three contiguous blocks of 70/15/15 % whose roles
   (train, val, test) follow one of the six orders, drawn per subject; the released script draws
   them with Python's unseeded ``random``, **we draw them with** ``numpy.random.default_rng(seed)``
   (deterministic; different from any one run of the original);
4. windows of ``window`` steps (49,920 = 780 s at 64 Hz) every ``stride`` steps (4,992) inside each
   block, with one target per ``2 * rate`` steps (128: one heart rate every 2 s), so 390 targets
   per window. Target ``j`` of a window starting at step ``s`` is the label of the 8-s window
   that starts at ``s + 2 rate j`` steps.

Items: ``(x (window, 6) float32, y (window // (2 rate),) float32)``.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice
from liquidssm.data._common import Archive, CorruptDataError, dataset_dir, require_file
from liquidssm.data.safe_pickle import (
    DAMAGE_ERRORS,
    NumpyOnlyUnpickler,
    UnsafePickleError,
    damage_message,
)
from liquidssm.data.spec import DatasetSpec

__all__ = ["NAME", "SUBDIR", "LAYOUT", "SPEC", "SUBJECTS", "RATES", "CHANNELS", "load_subject",
           "subject_arrays", "scaling", "split_blocks", "window_starts", "PPGDaLiA", "write_fixture"]

NAME = "ppg_dalia"
SUBDIR = "ppg_dalia/PPG_FieldStudy"
SUBJECTS = tuple(f"S{k}" for k in range(1, 16))
#: sampling rates (Hz) of the wrist signals (Empatica E4) and of the heart-rate label
RATES = {"ACC": 32, "BVP": 64, "EDA": 4, "TEMP": 4}
LABEL_RATE = 0.5  # one heart rate every 2 s (8-s windows shifted by 2 s)
CHANNELS = ("ACC_x", "ACC_y", "ACC_z", "BVP", "EDA", "TEMP")
LAYOUT = ("  ppg_dalia/PPG_FieldStudy/S<k>/S<k>.pkl   for k = 1..15 (one dict per subject: signal, label, ...)\n"
          "  (the other files of the release -- S<k>_E4/, S<k>_quest.csv, S<k>_activity.csv -- are not read)")
ARCHIVE = Archive("https://archive.ics.uci.edu/static/public/495/ppg+dalia.zip", "ppg+dalia.zip",
                  note="UCI PPG-DaLiA (zip holding PPG_FieldStudy.zip); URL unverified")
_SPLITS = ("train", "val", "test")


def _numeric(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind not in "biufc" or dt.hasobject:
        raise UnsafePickleError(f"numpy scalar of dtype {dt} refused: only numbers load")
    return dt


def _scalar(dtype: Any, data: Any = None) -> Any:
    """NumPy's ``multiarray.scalar(dtype, bytes)`` for numeric dtypes only (questionnaire values)."""
    dt = _numeric(dtype)
    raw = data.encode("latin1") if isinstance(data, str) else data
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != dt.itemsize:
        raise UnsafePickleError(f"numpy scalar: expected {dt.itemsize} bytes of {dt}, got {raw!r:.40}")
    return np.frombuffer(raw, dtype=dt, count=1)[0]


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()`` as protocol-2 pickles spell an empty bytes object (never ``bytes(n)``, which allocates)."""
    if args:
        raise UnsafePickleError(f"bytes{args!r:.40} refused: only the empty bytes() is allowed")
    return b""


class _SubjectUnpickler(NumpyOnlyUnpickler):
    """The NumPy-only unpickler, reading Python 2 era strings as latin-1, plus numeric NumPy scalars."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, source)
        pickle.Unpickler.__init__(self, file, encoding="latin1")
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            self._allowed[(module, "scalar")] = _scalar
        for module in ("__builtin__", "builtins"):
            self._allowed[(module, "bytes")] = _empty_bytes


def load_subject(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One subject's pickle as a dict, without running foreign code (NumPy arrays/scalars, builtins only)."""
    path = Path(require_file(Path(path), NAME))
    with open(path, "rb") as f:
        try:
            obj = _SubjectUnpickler(f, str(path)).load()
        except UnsafePickleError:
            raise
        except DAMAGE_ERRORS as e:
            raise CorruptDataError(damage_message(path, e)) from None
    if not isinstance(obj, dict) or "signal" not in obj or "label" not in obj:
        raise CorruptDataError(f"{path}: expected a dict with 'signal' and 'label', got {type(obj).__name__}"
                               + (f" with keys {sorted(obj)}" if isinstance(obj, dict) else ""))
    return obj


def subject_arrays(record: dict[str, Any], rate: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The six wrist channels at ``rate`` Hz and the heart rates: ``(X (N, 6) float64, hr (M,))``.

    Each channel is brought to ``rate`` by repeating its last sample (sample ``floor(t r)`` of a
    channel recorded at ``r`` Hz at time ``t``). ``N`` is cut to the last complete label period
    covered by every channel and by the labels: ``N = 2 rate M'`` with ``M' <= M`` labels.
    """
    if not isinstance(rate, int) or rate < 1:
        raise ValueError(f"rate: expected a positive integer (Hz), got {rate!r}")
    try:
        wrist = record["signal"]["wrist"]
        parts = {k: np.asarray(wrist[k], dtype=np.float64) for k in RATES}
    except (KeyError, TypeError) as e:
        raise CorruptDataError(f"subject record: missing wrist signal {e}") from None
    hr = np.asarray(record["label"], dtype=np.float64).reshape(-1)
    if parts["ACC"].ndim != 2 or parts["ACC"].shape[1] != 3:
        raise CorruptDataError(f"subject record: wrist ACC expected shape (N, 3), got {parts['ACC'].shape}")
    duration = min(len(parts[k]) / r for k, r in RATES.items())
    per_label = 2 * rate
    n_labels = min(len(hr), int(math.floor(duration * LABEL_RATE)))
    if n_labels < 1:
        raise CorruptDataError(f"subject record: shorter than one label period ({duration:.1f} s)")
    n = n_labels * per_label
    t = np.arange(n) / rate
    cols = []
    for k, r in RATES.items():
        idx = np.minimum((t * r).astype(np.int64), len(parts[k]) - 1)
        v = parts[k][idx]
        cols.append(v if v.ndim == 2 else v[:, None])
    X = np.concatenate(cols, axis=1).reshape(n, -1)[:, :6]
    return X, hr[:n_labels]


def scaling(values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(min, max)`` over every array in ``values`` (the [-1, 1] min-max scaling's range)."""
    stacked = [v.reshape(len(v), -1) for v in values]
    lo = np.min([v.min(axis=0) for v in stacked], axis=0)
    hi = np.max([v.max(axis=0) for v in stacked], axis=0)
    return lo, hi


def _to_pm1(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.where(hi > lo, hi - lo, 1.0)
    return 2.0 * (v - lo) / span - 1.0


def split_blocks(n_labels: int, seed: int, subject: str) -> dict[str, tuple[int, int]]:
    """Contiguous 70/15/15 blocks of one subject's label periods, in one of the six orders.

    Returns ``{split: (first label, end label)}``. The order is drawn with
    ``numpy.random.default_rng([seed, subject number])`` (the original draws it unseeded).
    """
    sizes = {"train": int(0.7 * n_labels), "val": int(0.15 * n_labels)}
    sizes["test"] = n_labels - sizes["train"] - sizes["val"]
    orders = list(itertools.permutations(_SPLITS))
    number = int(subject.lstrip("S")) if subject.lstrip("S").isdigit() else 0
    order = orders[int(np.random.default_rng([seed, number]).integers(len(orders)))]
    out, start = {}, 0
    for split in order:
        out[split] = (start, start + sizes[split])
        start += sizes[split]
    return out


def window_starts(n_steps: int, window: int, stride: int) -> list[int]:
    """Start steps of every full window of ``window`` steps, every ``stride`` steps, in ``n_steps``."""
    if n_steps < window:
        return []
    return list(range(0, n_steps - window + 1, stride))


class PPGDaLiA(Dataset):
    """One split of PPG-DaLiA as windows: item ``(x (window, 6) float32, y (window // (2 rate),) float32)``.

    ``rate`` (Hz, 64 in the benchmark), ``window`` and ``stride`` in steps at that rate; ``window``
    must be a multiple of ``2 rate`` (one target per 2 s). ``subjects``: the subject folders to
    read (default: every ``S<k>`` present; a missing one of :data:`SUBJECTS` is an error only if
    asked for). Scaling ranges come from all subjects read, as in the benchmark.
    """

    def __init__(self, split: str = "train", seed: int = 2345, root: str | os.PathLike[str] | None = None,
                 rate: int = 64, window: int = 49920, stride: int = 4992,
                 subjects: tuple[str, ...] | None = None) -> None:
        check_choice(split, "split", _SPLITS)
        per_label = 2 * rate
        if not isinstance(window, int) or window < per_label or window % per_label:
            raise ValueError(f"window: expected a positive multiple of 2 * rate = {per_label} steps, got {window!r}")
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride: expected a positive number of steps, got {stride!r}")
        base = dataset_dir(SPEC, root)
        names = subjects if subjects is not None else tuple(s for s in SUBJECTS if (base / s).is_dir())
        if not names:
            raise CorruptDataError(f"{base}: no subject folders S1..S15 found\nexpected layout:\n{LAYOUT}")
        arrays = {s: subject_arrays(load_subject(base / s / f"{s}.pkl"), rate) for s in names}
        lo_x, hi_x = scaling([a[0] for a in arrays.values()])
        lo_y, hi_y = scaling([a[1][:, None] for a in arrays.values()])
        xs, ys = [], []
        for s, (X, hr) in arrays.items():
            first, end = split_blocks(len(hr), seed, s)[split]
            Xs = _to_pm1(X[first * per_label:end * per_label], lo_x, hi_x)
            hs = _to_pm1(hr[first:end, None], lo_y, hi_y)[:, 0]
            for start in window_starts(len(Xs), window, stride):
                if start % per_label:  # windows start on a label boundary (stride is a multiple in practice)
                    continue
                j = start // per_label
                xs.append(Xs[start:start + window])
                ys.append(hs[j:j + window // per_label])
        if not xs:
            raise CorruptDataError(f"{base}: split {split!r} has no full window of {window} steps "
                                   f"(at {rate} Hz); the recordings are too short for this window")
        self.x = torch.from_numpy(np.stack(xs).astype(np.float32))
        self.y = torch.from_numpy(np.stack(ys).astype(np.float32))
        self.subjects, self.rate, self.window = names, rate, window

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def write_fixture(root: str | os.PathLike[str], n_subjects: int = 4, minutes: float = 15.0,
                  seed: int = 0) -> Path:
    """Subject pickles in the release layout at the real sampling rates, with a learnable target.

    The heart rate follows a slow random walk between 60 and 160 bpm; the wrist ``EDA`` channel
    carries it (plus noise), ``BVP`` is a pulse wave at that rate, ``ACC`` and ``TEMP`` are noise:
    a model can learn the target from the inputs. Returns ``<root>/ppg_dalia/PPG_FieldStudy``.
    """
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR
    seconds = int(minutes * 60)
    for k in range(1, n_subjects + 1):
        t_lab = np.arange(int(seconds * LABEL_RATE)) / LABEL_RATE
        hr = np.clip(110 + np.cumsum(rng.normal(0, 2.0, len(t_lab))), 60, 160)

        def hr_at(t: np.ndarray, hr: np.ndarray = hr) -> np.ndarray:
            return hr[np.minimum((t * LABEL_RATE).astype(int), len(hr) - 1)]

        t64, t32, t4 = (np.arange(seconds * r) / r for r in (64, 32, 4))
        phase = 2 * np.pi * np.cumsum(hr_at(t64) / 60.0) / 64
        record = {
            "signal": {"wrist": {"ACC": rng.normal(0, 1, (len(t32), 3)),
                                 "BVP": (50 * np.sin(phase) + rng.normal(0, 5, len(t64)))[:, None],
                                 "EDA": (hr_at(t4) / 40.0 + rng.normal(0, 0.05, len(t4)))[:, None],
                                 "TEMP": (33 + rng.normal(0, 0.1, len(t4)))[:, None]},
                       "chest": {}},
            "label": hr, "activity": np.zeros((len(t4), 1)), "rpeaks": np.zeros(0, dtype=np.int64),
            "questionnaire": {"AGE": 30.0, "Gender": " m"}, "subject": f"S{k}",
        }
        d = out / f"S{k}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"S{k}.pkl").write_bytes(pickle.dumps(record, protocol=2))
    return out


def write_release_fixture(root: str | os.PathLike[str], seed: int = 0) -> Path:
    """All 15 subjects of the release layout, two minutes each (``liquidssm data fixtures ppg_dalia``)."""
    return write_fixture(root, n_subjects=len(SUBJECTS), minutes=2.0, seed=seed)


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT, papers="LrcSSM Table 7",
    required=tuple(f"{SUBDIR}/{s}/{s}.pkl" for s in SUBJECTS),
    archives=(ARCHIVE,), marker="PPG_FieldStudy", target=SUBDIR, fixture=write_release_fixture,
)
