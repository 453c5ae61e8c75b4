"""``liquidssm data status|download|prepare|generate|fixtures`` (forwarded from ``liquidssm``).

Chapter reproductions/01_lra_synthetic_data. ``download`` is the only command that touches the
network and is never run by tests; ``prepare`` verifies checksums (where a published one is
known) and unpacks into the release layout under the data root (``--root``, else
``$LIQUIDSSM_DATA``, else ``<repo>/data/raw``; see :mod:`liquidssm.paths`). Nothing that exists
is replaced unless ``--force`` is given, and then by renames of complete copies; errors are
reported in one line by :mod:`liquidssm.cli`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import zipfile
from pathlib import Path

from liquidssm.cliutil import int_at_least, positive_float
from liquidssm.data._common import (
    CorruptDataError,
    data_root,
    fresh_dir_beside,
    replace_path,
    sha256_file,
)
from liquidssm.data.registry import DATASETS, get
from liquidssm.data.spec import DatasetSpec
from liquidssm.paths import RepositoryNotFoundError


def status_rows(root: str | None = None) -> list[dict[str, str]]:
    """One row per dataset: name, state (present/missing/partial), path, checksum status."""
    rows = []
    base = data_root(root)
    for spec in DATASETS.values():
        missing = spec.missing(root)
        if not missing:
            state = "present"
        elif len(missing) == len(spec.required):
            state = "missing"
        else:
            state = f"partial ({len(missing)}/{len(spec.required)} missing, e.g. {missing[0].relative_to(base)})"
        if not spec.archives:
            check = "n/a (copied from the LrcSSM repository)"
        else:
            known = [a for a in spec.archives if a.sha256 or a.md5]
            check = ("published " + ",".join("sha256" if a.sha256 else "md5" for a in known)
                     if known else "unverified (no published checksum known)")
        rows.append({"name": spec.name, "state": state, "path": str(base / spec.subdir),
                     "checksum": check, "used by": spec.papers})
    return rows


def _cmd_status(args: argparse.Namespace) -> int:
    rows = status_rows(args.root)
    print(f"data root: {data_root(args.root)}")
    w = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("name", "state", "checksum")}
    print(f"{'name':<{w['name']}}  {'state':<{w['state']}}  {'checksum':<{w['checksum']}}  used by")
    for r in rows:
        print(f"{r['name']:<{w['name']}}  {r['state']:<{w['state']}}  "
              f"{r['checksum']:<{w['checksum']}}  {r['used by']}")
    for r in rows:
        if r["state"] != "present":
            spec = get(r["name"])
            print(f"\n{r['name']}: expected at {r['path']}\n{spec.layout}\n"
                  f"  fetch: liquidssm data download {r['name']} && liquidssm data prepare {r['name']}")
    return 0


def _download(url: str, dest: Path, timeout: float) -> None:
    """Fetch ``url`` to ``dest`` through ``dest.part``; a failure removes the partial file."""
    import urllib.request

    from tqdm import tqdm

    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cmd_download(args: argparse.Namespace) -> int:
    spec = get(args.name)
    if not spec.archives:
        print(f"{spec.name}: no archive to download; clone https://github.com/MoniFarsang/LrcSSM and "
              f"run `liquidssm data prepare {spec.name} --from <clone>/experiments/lrc_ssm`")
        return 0
    dl = data_root(args.root) / "_downloads"
    created = not dl.exists()
    try:
        for a in spec.archives:
            dest = dl / a.filename
            print(f"{a.url} -> {dest}" + (f"  ({a.note})" if a.note else ""))
            if args.dry_run or dest.exists():
                continue
            dl.mkdir(parents=True, exist_ok=True)
            try:
                _download(a.url, dest, args.timeout)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:  # network, not disk
                raise ConnectionError(f"download of {a.url} failed ({exc}); nothing partial was kept; "
                                      f"retry, or fetch it yourself and run `liquidssm data prepare "
                                      f"{spec.name} --from FILE`") from exc
    finally:
        if created and dl.is_dir() and not any(dl.iterdir()):
            dl.rmdir()
    return 0


def _extract(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into a hidden sibling of ``dest`` and rename it to ``dest`` when complete.

    An interrupted or failed extraction therefore never leaves a ``dest`` that later runs would
    trust. Members that would land outside ``dest`` are refused (``..``, absolute names, and
    tar links through tarfile's ``data`` filter).
    """
    tmp = fresh_dir_beside(dest)
    try:
        _safe_extract(archive, tmp)
        os.replace(tmp, dest)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise CorruptDataError(f"{archive}: cannot unpack ({type(exc).__name__}: {exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _safe_extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                name = Path(m)
                if name.is_absolute() or ".." in name.parts or not (root / name).resolve().is_relative_to(root):
                    raise CorruptDataError(f"{archive}: member {m!r} would escape {dest}")
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")


def _wanted(spec: DatasetSpec) -> set[str]:
    """Names directly under ``spec.target`` that the dataset needs (from its ``required`` paths)."""
    names = set()
    for r in spec.required:
        rel = Path(r)
        try:
            rel = rel.relative_to(spec.target)
        except ValueError:
            rel = Path(rel.name)
        names.add(rel.parts[0])
    return names


def _items(spec: DatasetSpec, search: Path, hit: Path, target: Path) -> tuple[list[tuple[Path, Path]], int]:
    """``(source, destination)`` pairs to place for one search folder, and how many entries were skipped.

    ``"dir"`` places the marker folder itself; ``"parent"`` and ``"files"`` only the entries the
    dataset needs (never every sibling of the marker in a folder the user pointed at).
    """
    wanted = _wanted(spec)
    if spec.move == "dir":
        return [(hit, target)], 0
    if spec.move == "parent":
        siblings = list(hit.parent.iterdir())
        chosen = [p for p in siblings if p.name in wanted]
        return [(p, target / p.name) for p in chosen], len(siblings) - len(chosen)
    found: dict[str, Path] = {}
    for p in sorted(search.rglob("*.ts"), key=lambda q: len(q.parts)):
        if p.name in wanted and p.is_file():
            found.setdefault(p.name, p)
    return [(p, target / name) for name, p in sorted(found.items())], 0


def _place(src: Path, dst: Path, move: bool, force: bool) -> str:
    """Put ``src`` at ``dst`` (moved from our own extraction, else copied); an existing ``dst`` is
    kept unless ``force``, and then replaced by renames (:func:`~liquidssm.data._common.replace_path`)."""
    if dst.exists() and not force:
        return f"kept existing {dst} (pass --force to replace it)"
    staging = fresh_dir_beside(dst)
    try:
        tmp = staging / src.name
        if move:  # our own extraction directory: move (the release is large)
            shutil.move(str(src), str(tmp))
        elif src.is_dir():  # a folder the user pointed at: never modified
            shutil.copytree(src, tmp)
        else:
            shutil.copy2(src, tmp)
        existed = dst.exists()
        replace_path(tmp, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return f"{'replaced' if existed else 'placed'} {src} -> {dst}"


def prepare(name: str, root: str | None = None, source: str | None = None, force: bool = False) -> list[str]:
    """Verify and unpack ``name``'s archives (or copy from ``source``) into the layout.

    Returns the log lines. Existing files are kept unless ``force`` (then replaced atomically);
    from a folder or archive, only the entries the dataset needs are placed.
    """
    spec = get(name)
    base = data_root(root)
    log: list[str] = []
    if source is not None and Path(source).is_dir():
        search = [Path(source)]
    else:
        archives = [Path(source)] if source else [base / "_downloads" / a.filename for a in spec.archives]
        search = []
        for a_path in archives:
            if not a_path.is_file():
                raise FileNotFoundError(f"{a_path} not found; run `liquidssm data download {name}` "
                                        "first or pass --from PATH")
            a = next((x for x in spec.archives if x.filename == a_path.name), None)
            log.append(f"{a_path.name}: sha256 {sha256_file(a_path)}")
            log.append(f"{a_path.name}: " + (a.verify(a_path) if a else "unverified (not an official file name)"))
            out = base / "_extract" / a_path.name
            if not out.is_dir():  # only a complete extraction is ever renamed to this name
                _extract(a_path, out)
            search.append(out)
    target = base / spec.target
    for s in search:
        hits = sorted(s.rglob(spec.marker), key=lambda p: len(p.parts))
        if not hits:
            log.append(f"{s}: no {spec.marker!r} inside")
            continue
        items, skipped = _items(spec, s, hits[0], target)
        ours = base / "_extract" in s.parents or s.parent == base / "_extract"
        log += [_place(src, dst, move=ours, force=force) for src, dst in items]
        if skipped:
            log.append(f"left {skipped} other entr{'y' if skipped == 1 else 'ies'} next to {hits[0]} "
                       f"(not part of {name})")
    missing = spec.missing(root)
    log.append(f"{name}: " + ("present" if not missing else f"still missing {missing[0]}"))
    return log


def _cmd_prepare(args: argparse.Namespace) -> int:
    for line in prepare(args.name, args.root, args.source, force=args.force):
        print(line)
    return 0 if not get(args.name).missing(args.root) else 1


def _cmd_fixtures(args: argparse.Namespace) -> int:
    names = list(DATASETS) if args.name == "all" else [args.name]
    for n in names:
        t0 = time.perf_counter()
        path = get(n).write_fixture(args.out, force=args.force)
        print(f"{n}: wrote {path} ({time.perf_counter() - t0:.2f} s)")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.task == "listops":
        from liquidssm.data.listops_gen import generate_listops

        n = 96000 if args.n is None else args.n
        sizes = generate_listops(args.out, n_train=n, n_val=args.n_val, n_test=args.n_test,
                                 seed=args.seed, overwrite=args.force)
        print(f"listops: {sizes} in {args.out}")
    else:
        from liquidssm.data.pathfinder_gen import PARAMS, generate_pathfinder

        res = generate_pathfinder(args.out, n_images=200000 if args.n is None else args.n,
                                  params=PARAMS[args.resolution], seed=args.seed,
                                  workers=args.workers, overwrite=args.force)
        print(f"pathfinder{args.resolution}: {res['n_images']} images in {res['n_batches']} "
              f"batches under {args.out}")
    print(f"took {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``liquidssm data``; returns the exit status (errors: :mod:`liquidssm.cli`)."""
    names = list(DATASETS)
    ap = argparse.ArgumentParser(prog="liquidssm data", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("status", help="which datasets are present under the data root")
    s.add_argument("--root", default=None)
    s.set_defaults(fn=_cmd_status)
    d = sub.add_parser("download", help="fetch official archives (network)")
    d.add_argument("name", choices=names)
    d.add_argument("--root", default=None)
    d.add_argument("--dry-run", action="store_true", help="print URLs and destinations only")
    d.add_argument("--timeout", type=positive_float, default=60.0,
                   help="seconds without data before a download is abandoned (default 60)")
    d.set_defaults(fn=_cmd_download)
    p = sub.add_parser("prepare", help="verify checksums and unpack into the release layout")
    p.add_argument("name", choices=names)
    p.add_argument("--root", default=None)
    p.add_argument("--from", dest="source", default=None,
                   help="archive file or unpacked directory to take the data from")
    p.add_argument("--force", action="store_true", help="replace files already in the layout")
    p.set_defaults(fn=_cmd_prepare)
    f = sub.add_parser("fixtures", help="write tiny datasets in the release layouts")
    f.add_argument("name", choices=names + ["all"])
    f.add_argument("--out", required=True)
    f.add_argument("--force", action="store_true", help="replace a dataset folder that already holds data")
    f.set_defaults(fn=_cmd_fixtures)
    g = sub.add_parser("generate", help="run the ListOps or Pathfinder generator")
    g.add_argument("task", choices=["listops", "pathfinder"])
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int_at_least(1), default=None,
                   help="training trees (ListOps, default 96000) or images (Pathfinder, default 200000)")
    g.add_argument("--n-val", type=int_at_least(0), default=2000)
    g.add_argument("--n-test", type=int_at_least(0), default=2000)
    g.add_argument("--resolution", type=int, choices=[32, 64, 128], default=32)
    g.add_argument("--seed", type=int_at_least(0), default=0)
    g.add_argument("--workers", type=int_at_least(1), default=1,
                   help="Pathfinder: processes (the output does not depend on this number)")
    g.add_argument("--force", action="store_true", help="replace files the generator finds in --out")
    g.set_defaults(fn=_cmd_generate)
    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except RepositoryNotFoundError as exc:  # no checkout and no --root / $LIQUIDSSM_DATA
        print(f"liquidssm data: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from liquidssm.cli import main as liquidssm_main

    raise SystemExit(liquidssm_main(["data", *sys.argv[1:]]))
