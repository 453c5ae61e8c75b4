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

One run per run folder: :func:`acquire_lock` writes ``run.lock`` (PID, host, start time, SLURM
job id) into the folder before any work, created with a hard link from a complete temporary file
so the check-and-create is atomic on local and shared (NFS) filesystems alike (``fcntl`` locks are
not reliable on every NFS mount, and ``O_EXCL`` creation leaves a moment when the file exists
empty); a second run of the same folder is refused with the holder's PID and what to do. A lock
whose process is dead on this host, or that a requeued SLURM job left under its own job id, is
stale: it is taken over with a warning.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import random
import re
import socket
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
    "RunLockedError",
    "RunLock",
    "check_run_dir",
    "writable_folder",
    "acquire_lock",
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


# ------------------------------------------------------------------------------------------------
# one run per run folder
# ------------------------------------------------------------------------------------------------

LOCK = "run.lock"


class RunLockedError(CheckpointError):
    """Another run holds the run folder; the message names its PID, host and start time."""


def check_run_dir(folder: str | os.PathLike[str]) -> Path:
    """Create the run folder if needed and prove it writable, before any training step."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"run_dir: {folder} is a file, not a folder; choose another with "
                              "--run-dir or remove the file")
    problem = writable_folder(folder)
    if problem:
        raise CheckpointError(f"run_dir: {folder} is not writable ({problem}); choose another "
                              "with --run-dir")
    return folder


def writable_folder(folder: Path) -> str | None:
    """Create ``folder`` if needed and write a probe file in it: ``None``, or why that failed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _stale(info: dict[str, Any]) -> str | None:
    """Why a lock's holder is gone (``None`` when it may still run)."""
    job = os.environ.get("SLURM_JOB_ID")
    if job and info.get("slurm_job_id") == job:
        return f"it was left by this SLURM job ({job}) before a requeue"
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        if not _alive(info["pid"]):
            return f"its process {info['pid']} is no longer running on this host"
    return None


class RunLock:
    """The lock of one run folder, held from :func:`acquire_lock` to :meth:`release`."""

    def __init__(self, path: Path, info: dict[str, Any]) -> None:
        self.path, self.info = path, info

    def release(self) -> None:
        """Remove the lock file if it is still this run's (never another run's)."""
        held = _holder(self.path)
        if held is not None and held.get("token") == self.info["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_lock(folder: str | os.PathLike[str]) -> RunLock:
    """Take the lock of run folder ``folder`` (created if needed) or raise :class:`RunLockedError`."""
    folder = check_run_dir(folder)
    path = folder / LOCK
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "token": os.urandom(8).hex()}
    tmp = folder / f".{LOCK}.{os.getpid()}.{info['token']}"
    tmp.write_text(json.dumps(info), encoding="utf-8")
    try:
        for _ in range(3):
            try:
                os.link(tmp, path)  # atomic: fails if a lock exists, never leaves it half-written
                return RunLock(path, info)
            except FileExistsError:
                held = _holder(path)
                why = "its lock file cannot be read" if held is None else _stale(held)
                if why is None:
                    raise RunLockedError(
                        f"run_dir: {folder} is in use by another run (PID {held['pid']} on "
                        f"{held['host']}, started {held['started']}); wait for it to finish or stop "
                        f"it; if that run is gone, delete {path}") from None
                warnings.warn(f"{path}: taking over a stale lock ({why})", RuntimeWarning,
                              stacklevel=2)
                path.unlink(missing_ok=True)
        raise RunLockedError(f"run_dir: {folder}: could not take the lock {path} after three tries")
    finally:
        tmp.unlink(missing_ok=True)
