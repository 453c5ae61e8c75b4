"""Exact resume: what a checkpoint holds, how it is written and how a damaged one is survived.

Chapter ``reproductions/02_how_reproductions_run``; facts in ``shared/reference/engine-notes.md``.
Saving only the model, optimiser and step does not resume exactly. A checkpoint here also holds
every random-number generator's state (Python, NumPy, torch, CUDA), the epoch and the batch index
within it (the sampler's order is a pure function of the run seed and the epoch), the best
validation result so far and the configuration hash. Everything is stored as tensors and plain
Python values, so it loads with ``torch.load(weights_only=True)``: no unsafe unpickling.

Files are written atomically (temporary file, ``fsync``, rename, ``fsync`` of the folder) as
``step-<n>.pt``; the last two are kept. The model at the best validation evaluation is written
by the same writer as ``best.pt`` (:func:`save_best`). A truncated or corrupt file is named in a
warning and the previous good one is used.
"""

from __future__ import annotations

import io
import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "ConfigMismatchError",
    "atomic_write",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "save_best",
    "load_best",
    "list_checkpoints",
    "load_latest",
    "load_model_weights",
]

CHECKPOINT_VERSION = 1
_NAME = re.compile(r"^step-(\d{9})\.pt$")


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that cannot be read; the message names the file."""


class ConfigMismatchError(CheckpointError):
    """The checkpoint was written by a run with other settings (a different configuration hash)."""


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename, fsync dir.

    A reader sees either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def rng_state() -> dict[str, Any]:
    """Every RNG state as tensors/lists (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states returned by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(folder: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``folder``, newest (highest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)), reverse=True)  # type: ignore[union-attr]


BEST = "best.pt"


def _write(path: Path, state: dict[str, Any]) -> Path:
    """The one checkpoint writer: ``state`` plus the format version, serialised, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"version": CHECKPOINT_VERSION, **state}, buf)
    return atomic_write(path, buf.getvalue())


def save_checkpoint(folder: str | os.PathLike[str], state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` (must hold ``"step"``) as ``folder/step-<n>.pt`` atomically; keep the newest ``keep``."""
    folder = Path(folder)
    path = _write(folder / f"step-{int(state['step']):09d}.pt", state)
    for old in list_checkpoints(folder)[keep:]:
        old.unlink(missing_ok=True)
    return path


def save_best(folder: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (model, step, configuration hash) as ``folder/best.pt`` atomically."""
    return _write(Path(folder) / BEST, state)


def load_best(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The state in ``folder/best.pt``, or ``None`` when the run kept none (``weights_only=True``)."""
    path = Path(folder) / BEST
    return _read(path) if path.exists() else None


def _read(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, unsupported type: all "unreadable"
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: not a version-{CHECKPOINT_VERSION} checkpoint of this engine")
    return state


def load_latest(folder: str | os.PathLike[str], config_hash: str | None = None
                ) -> tuple[dict[str, Any], Path] | None:
    """The newest readable checkpoint in ``folder`` and its path, or ``None`` if there is none.

    An unreadable file is reported with a warning naming it and the previous one is tried. A
    checkpoint whose ``config_hash`` differs raises :class:`ConfigMismatchError` (nothing is
    deleted; restart explicitly to start afresh).
    """
    candidates = list_checkpoints(folder)
    for path in candidates:
        try:
            state = _read(path)
        except CheckpointError as exc:
            warnings.warn(f"{exc}; falling back to the previous checkpoint", RuntimeWarning, stacklevel=2)
            continue
        if config_hash is not None and state.get("config_hash") != config_hash:
            raise ConfigMismatchError(
                f"{path}: written by a run with configuration hash {state.get('config_hash')}, "
                f"this run has {config_hash} (the settings changed); pass --restart (restart=True) "
                "to discard the old checkpoints and start afresh")
        return state, path
    if candidates:
        raise CheckpointError(f"{folder}: none of the checkpoints {[p.name for p in candidates]} "
                              "could be read; pass --restart (restart=True) to start afresh")
    return None


def load_model_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The model ``state_dict`` in a checkpoint or ``best.pt`` file (``weights_only=True``)."""
    state = _read(Path(path))
    return state["model"]
