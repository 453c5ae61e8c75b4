"""What this machine offers the book: package versions, CPU/GPU, and the kernel backends detected.

Used by the appendix page *Reproduction environment* and by ``liquidssm env`` (which also prints
the folders of :mod:`liquidssm.paths`). Nothing here
downloads or compiles anything unless asked: :func:`keops_status` only tries a compile when
``compile=True``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from liquidssm import paths

PACKAGES = (
    "liquidssm", "torch", "numpy", "scipy", "pandas", "matplotlib", "sympy", "pykeops",
    "jupyter-book", "sphinx", "myst-nb", "jupytext", "papermill", "nbval", "pytest",
    "sphinx-proof", "sphinx-exercise", "sphinx-mathjax-offline",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution in ``names`` ("not installed" when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _checkout_or_package_dir() -> Path:
    """The repository root (:func:`liquidssm.paths.repo_root`), else this package's folder."""
    try:
        return paths.repo_root()
    except paths.RepositoryNotFoundError:
        return Path(__file__).resolve().parent


def git_commit(root: str | os.PathLike[str] | None = None) -> str:
    """The checkout's commit hash (with ``+dirty`` for local changes), or ``"unknown"``.

    ``root`` defaults to the repository root of :mod:`liquidssm.paths`.
    """
    try:
        cwd = root or _checkout_or_package_dir()
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, falling back to :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class KeopsStatus:
    """Whether pykeops imports and (optionally) compiles on this machine."""

    installed: bool
    compiled: bool | None
    message: str


def keops_status(compile: bool = False) -> KeopsStatus:
    """Report pykeops availability; with ``compile=True`` also run a tiny reduction."""
    os.environ.setdefault("KEOPS_VERBOSE", "0")
    os.environ.setdefault("PYKEOPS_VERBOSE", "0")
    try:
        pykeops = importlib.import_module("pykeops")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return KeopsStatus(False, None, f"pykeops not importable: {exc}")
    if not compile:
        return KeopsStatus(True, None, f"pykeops {pykeops.__version__} importable (compile not tried)")
    try:
        from pykeops.torch import LazyTensor

        x = LazyTensor(torch.randn(4, 1, 1, dtype=torch.float64))
        y = LazyTensor(torch.randn(1, 3, 1, dtype=torch.float64))
        (x - y).sum(dim=1)
        return KeopsStatus(True, True, f"pykeops {pykeops.__version__} compiles and runs")
    except Exception as exc:  # noqa: BLE001
        return KeopsStatus(True, False, f"pykeops {pykeops.__version__} cannot compile/run: {exc}")


def summary(compile_keops: bool = False) -> dict[str, str]:
    """A flat dictionary describing the machine, used by the environment page and results files."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "cuda available": str(torch.cuda.is_available()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "git commit": git_commit(),
        "keops": keops_status(compile_keops).message,
    }
    return info


def main(argv: list[str] | None = None) -> int:
    """``liquidssm env``: print the machine summary, package versions and file locations."""
    import argparse

    parser = argparse.ArgumentParser(prog="liquidssm env", description=__doc__.splitlines()[0])
    parser.add_argument("--compile-keops", action="store_true", help="also try a tiny pykeops compile")
    args = parser.parse_args(argv)
    rows = {**summary(args.compile_keops), **package_versions(), **paths.describe()}
    width = max(map(len, rows)) + 2
    for key, value in rows.items():
        print(f"{key:<{width}}{value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
