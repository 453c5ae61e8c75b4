"""``liquidssm data status|download|prepare|generate|fixtures`` (forwarded from ``liquidssm``).

Chapter reproductions/01_lra_synthetic_data. ``download`` is the only command that touches the
network and is never run by tests; ``prepare`` verifies checksums (where a published one is
known) and unpacks into the release layout under the data root (``--root``, else
``$LIQUIDSSM_DATA``, else ``<repo>/data/raw``; see :mod:`liquidssm.paths`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path

from liquidssm.data._common import data_root, sha256_file
from liquidssm.data.registry import DATASETS, get
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


def _download(url: str, dest: Path) -> None:
    import urllib.request

    from tqdm import tqdm

    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url) as resp, open(tmp, "wb") as f:  # noqa: S310 (explicit command)
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                f.write(chunk)
                bar.update(len(chunk))
    tmp.replace(dest)


def _cmd_download(args: argparse.Namespace) -> int:
    spec = get(args.name)
    if not spec.archives:
        print(f"{spec.name}: no archive to download; clone https://github.com/MoniFarsang/LrcSSM and "
              f"run `liquidssm data prepare {spec.name} --from <clone>/experiments/lrc_ssm`")
        return 0
    dl = data_root(args.root) / "_downloads"
    for a in spec.archives:
        dest = dl / a.filename
        print(f"{a.url} -> {dest}" + (f"  ({a.note})" if a.note else ""))
        if args.dry_run or dest.exists():
            continue
        dl.mkdir(parents=True, exist_ok=True)
        _download(a.url, dest)
    return 0


def _safe_extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                target = (dest / m).resolve()
                if not str(target).startswith(str(dest.resolve())):
                    raise ValueError(f"{archive}: member {m!r} would escape {dest}")
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")


def prepare(name: str, root: str | None = None, source: str | None = None) -> list[str]:
    """Verify and unpack ``name``'s archives (or copy from ``source``) into the layout."""
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
            if not out.exists():
                _safe_extract(a_path, out)
            search.append(out)
    target = base / spec.target
    for s in search:
        hits = sorted(s.rglob(spec.marker), key=lambda p: len(p.parts))
        if not hits:
            continue
        hit = hits[0]
        if spec.move == "dir":
            src_items = [(hit, target)]
        elif spec.move == "parent":
            src_items = [(p, target / p.name) for p in hit.parent.iterdir()]
        else:  # files: every file named like the marker pattern's siblings
            src_items = [(p, target / p.name) for p in s.rglob("*.ts")]
        ours = base / "_extract" in s.parents or s.parent == base / "_extract"
        for src, dst in src_items:
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if ours:  # our own extraction directory: move (the release is large)
                shutil.move(str(src), str(dst))
            else:  # a directory the user pointed at: never modify it
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        log.append(f"placed {hit} -> {target}")
    missing = spec.missing(root)
    log.append(f"{name}: " + ("present" if not missing else f"still missing {missing[0]}"))
    return log


def _cmd_prepare(args: argparse.Namespace) -> int:
    for line in prepare(args.name, args.root, args.source):
        print(line)
    return 0 if not get(args.name).missing(args.root) else 1


def _cmd_fixtures(args: argparse.Namespace) -> int:
    names = list(DATASETS) if args.name == "all" else [args.name]
    for n in names:
        t0 = time.perf_counter()
        path = get(n).fixture(args.out)
        print(f"{n}: wrote {path} ({time.perf_counter() - t0:.2f} s)")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.task == "listops":
        from liquidssm.data.listops_gen import generate_listops

        n = args.n or 96000
        sizes = generate_listops(args.out, n_train=n, n_val=args.n_val, n_test=args.n_test,
                                 seed=args.seed)
        print(f"listops: {sizes} in {args.out}")
    else:
        from liquidssm.data.pathfinder_gen import PARAMS, generate_pathfinder

        res = generate_pathfinder(args.out, n_images=args.n or 200000,
                                  params=PARAMS[args.resolution], seed=args.seed,
                                  workers=args.workers)
        print(f"pathfinder{args.resolution}: {res['n_images']} images in {res['n_batches']} "
              f"batches under {args.out}")
    print(f"took {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``liquidssm data``; returns the exit status."""
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
    d.set_defaults(fn=_cmd_download)
    p = sub.add_parser("prepare", help="verify checksums and unpack into the release layout")
    p.add_argument("name", choices=names)
    p.add_argument("--root", default=None)
    p.add_argument("--from", dest="source", default=None,
                   help="archive file or unpacked directory to take the data from")
    p.set_defaults(fn=_cmd_prepare)
    f = sub.add_parser("fixtures", help="write tiny datasets in the release layouts")
    f.add_argument("name", choices=names + ["all"])
    f.add_argument("--out", required=True)
    f.set_defaults(fn=_cmd_fixtures)
    g = sub.add_parser("generate", help="run the ListOps or Pathfinder generator")
    g.add_argument("task", choices=["listops", "pathfinder"])
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=None,
                   help="training trees (ListOps, default 96000) or images (Pathfinder, default 200000)")
    g.add_argument("--n-val", type=int, default=2000)
    g.add_argument("--n-test", type=int, default=2000)
    g.add_argument("--resolution", type=int, choices=[32, 64, 128], default=32)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=1,
                   help="Pathfinder: processes (the output does not depend on this number)")
    g.set_defaults(fn=_cmd_generate)
    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except RepositoryNotFoundError as exc:  # no checkout and no --root / $LIQUIDSSM_DATA
        print(f"liquidssm data: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
