"""Results carried between checkouts: ``liquidssm results export`` and ``liquidssm results import``.

Chapter ``reproductions/02_how_reproductions_run``. A GPU box writes results files under its own
``data/results``; :func:`export_results` packs the chosen ones into one ``.tar.gz`` (members
``<experiment>/<profile>-seed<k>.json``, and ``released/...`` for the released variant: the
layout of the results folder itself); :func:`plan_import` reads such an archive, or a results
folder, in another checkout and says per file what it would do; :func:`apply_import` does it.

Every incoming file is checked before anything is written: its name must be a results file's
name (no other path, no link, no device), its size below :data:`MAX_FILE_BYTES` (the archive's
total below :data:`MAX_TOTAL_BYTES`), its content a record that
:func:`liquidssm.repro.results.validate_record` accepts (schema, types, finite value, provenance),
naming the same experiment, profile and seed as its file name, of an experiment in today's
registry, with the ``config_hash`` today's registry gives that run (a record of other settings
would be a different experiment under the same name). Nothing is extracted to disk: members are
read into memory and the destination path is rebuilt from the validated experiment id, profile
and seed, so no archive can write outside the results folder. An existing result is never
replaced without ``force``, and the plan says which side is newer; every write is atomic
(:func:`liquidssm.repro.checkpoint.atomic_write`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from liquidssm import paths
from liquidssm.repro import results as res
from liquidssm.repro.checkpoint import atomic_write

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "MAX_MEMBERS",
    "TransferError",
    "FilePlan",
    "export_results",
    "plan_import",
    "apply_import",
    "expected_config_hash",
    "describe",
]

#: the largest results file accepted (a record with a long history is well under 1 MiB)
MAX_FILE_BYTES = 16 * 1024 * 1024
#: the most bytes read from one archive or folder (a guard against decompression bombs)
MAX_TOTAL_BYTES = 512 * 1024 * 1024
#: the most members read from one archive or folder
MAX_MEMBERS = 100_000

_NAME = re.compile(r"^(?:(?P<variant>released)/)?(?P<experiment>[A-Za-z0-9][A-Za-z0-9._-]*)/"
                   r"(?P<profile>smoke|full)-seed(?P<seed>-?[0-9]+)\.json$")


class TransferError(ValueError):
    """An export or import that cannot go ahead (the message names the file and the field)."""


@dataclasses.dataclass(frozen=True)
class FilePlan:
    """What an import does with one incoming file.

    ``action``: ``"new"`` (written), ``"identical"`` (already there, byte for byte: skipped),
    ``"keep"`` (a different result exists; skipped without ``force``), ``"overwrite"`` (a different
    result exists and ``force`` replaces it) or ``"reject"`` (the file fails a check: ``reason``
    names the field). ``newer`` says, for ``keep``/``overwrite``, which side finished later
    (``"incoming"``, ``"existing"`` or ``"same time"``).
    """

    name: str
    action: str
    reason: str = ""
    destination: Path | None = None
    newer: str = ""
    data: bytes = dataclasses.field(default=b"", repr=False)


def expected_config_hash(experiment_id: str, profile: str, variant: str = "paper") -> str:
    """The ``config_hash`` today's registry gives a run of ``experiment_id`` (``variant`` applied)."""
    from liquidssm.repro.experiments import get_experiment
    from liquidssm.repro.runs import variant_overrides
    from liquidssm.repro.spec import resolve

    spec = resolve(get_experiment(experiment_id), profile,
                   variant_overrides(experiment_id, profile, variant))
    return spec.config_hash()


def _member_name(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _selected(record: dict[str, Any], table: str | None, paper: str | None,
              profile: str | None) -> bool:
    return ((table is None or str(record["table"]) == str(table))
            and (paper is None or record["paper"] == paper)
            and (profile is None or record["profile"] == profile))


def export_results(out: str | os.PathLike[str], *, table: str | None = None,
                   paper: str | None = None, profile: str | None = None,
                   results_dir: str | os.PathLike[str] | None = None,
                   force: bool = False) -> tuple[Path, list[str], list[str]]:
    """Pack the chosen results files into ``out`` (``.tar.gz``), atomically.

    Takes every results file of the results folder (default :func:`liquidssm.paths.results_dir`,
    its ``released/`` variant folder included) that :func:`~liquidssm.repro.results.read_result`
    accepts and that matches ``table``/``paper``/``profile``. Returns ``(out, member names,
    skipped files with why)``. Refuses an existing ``out`` without ``force`` and an export with
    nothing in it.
    """
    out = Path(out)
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise TransferError(f"--out: expected a FILE.tar.gz, got {str(out)!r}")
    if out.exists() and not force:
        raise TransferError(f"--out: {out} exists; pass --force to replace it")
    base = Path(results_dir) if results_dir is not None else paths.results_dir()
    if not base.is_dir():
        raise TransferError(f"results folder {base} does not exist; nothing to export")
    files = sorted(base.glob("*/*-seed*.json")) + sorted(base.glob("released/*/*-seed*.json"))
    members, skipped = [], []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            name = _member_name(path, base)
            if path.is_symlink() or not _NAME.match(name):
                skipped.append(f"{name}: not a results file's name or a link")
                continue
            try:
                record = res.read_result(path)
            except res.ResultsError as exc:
                skipped.append(str(exc))
                continue
            if not _selected(record, table, paper, profile):
                continue
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(path.stat().st_mtime)
            tar.addfile(info, io.BytesIO(data))
            members.append(name)
    if not members:
        raise TransferError(f"no results file under {base} matches table={table!r}, "
                            f"paper={paper!r}, profile={profile!r}")
    atomic_write(out, buffer.getvalue())
    return out, members, skipped


def _read_archive(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    """``(member name, bytes or None, why refused)`` for each member of a ``.tar.gz``, in memory."""
    total = 0
    try:
        tar = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise TransferError(f"{path}: not a readable tar archive ({exc})") from exc
    with tar:
        for count, member in enumerate(tar, start=1):
            if count > MAX_MEMBERS:
                raise TransferError(f"{path}: more than {MAX_MEMBERS} members; refused")
            if member.isdir():
                continue
            if not member.isfile():
                kind = "a link" if member.issym() or member.islnk() else "not a regular file"
                yield member.name, None, f"{kind}; only plain results files are imported"
                continue
            if member.size > MAX_FILE_BYTES:
                yield member.name, None, f"{member.size} bytes, over the {MAX_FILE_BYTES}-byte limit"
                continue
            total += member.size
            if total > MAX_TOTAL_BYTES:
                raise TransferError(f"{path}: more than {MAX_TOTAL_BYTES} bytes of results; refused")
            handle = tar.extractfile(member)
            data = handle.read(MAX_FILE_BYTES + 1) if handle is not None else b""
            if len(data) > MAX_FILE_BYTES:
                yield member.name, None, f"over the {MAX_FILE_BYTES}-byte limit"
                continue
            yield member.name, data, ""


def _read_folder(base: Path) -> Iterator[tuple[str, bytes | None, str]]:
    """The same for a results folder: every ``*.json`` under it (links refused, never followed)."""
    total = 0
    for count, path in enumerate(sorted(base.rglob("*.json")), start=1):
        if count > MAX_MEMBERS:
            raise TransferError(f"{base}: more than {MAX_MEMBERS} files; refused")
        name = _member_name(path, base)
        if path.is_symlink() or any((base / p).is_symlink() for p in path.relative_to(base).parents):
            yield name, None, "a link; only plain results files are imported"
            continue
        if not path.is_file():
            yield name, None, "not a regular file"
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            yield name, None, f"{size} bytes, over the {MAX_FILE_BYTES}-byte limit"
            continue
        total += size
        if total > MAX_TOTAL_BYTES:
            raise TransferError(f"{base}: more than {MAX_TOTAL_BYTES} bytes of results; refused")
        yield name, path.read_bytes(), ""


def _check(name: str, data: bytes) -> tuple[dict[str, Any], str]:
    """Validate one incoming file; return (record, variant) or raise TransferError naming the field."""
    from liquidssm.repro.experiments import EXPERIMENTS

    m = _NAME.match(name)
    if m is None or ".." in name.split("/"):
        raise TransferError(f"{name}: not a results file's name (expected "
                            "[released/]<experiment>/<smoke|full>-seed<k>.json)")
    try:
        record = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TransferError(f"{name}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise TransferError(f"{name}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    try:
        res.validate_record(record, name)
    except res.ResultsError as exc:
        raise TransferError(str(exc)) from exc
    for field, want in (("experiment", m["experiment"]), ("profile", m["profile"]),
                        ("seed", int(m["seed"]))):
        if record[field] != want:
            raise TransferError(f"{name}: field {field!r}: the file name says {want!r}, the record "
                                f"{record[field]!r}")
    if record["experiment"] not in EXPERIMENTS:
        raise TransferError(f"{name}: field 'experiment': {record['experiment']!r} is not in "
                            "today's registry")
    variant = m["variant"] or "paper"
    if record.get("status", "complete") != "complete":
        raise TransferError(f"{name}: field 'status': expected 'complete', got {record['status']!r}")
    want = expected_config_hash(record["experiment"], record["profile"], variant)
    if record["config_hash"] != want:
        raise TransferError(f"{name}: field 'config_hash': today's registry gives {want} for "
                            f"{record['experiment']} ({record['profile']}, variant {variant}), the "
                            f"record has {record['config_hash']} (made with other settings)")
    return record, variant


def _newer(incoming: dict[str, Any], existing_path: Path) -> str:
    try:
        existing = json.loads(existing_path.read_text(encoding="utf-8"))
        theirs = str(existing["provenance"]["finished_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return "incoming (the existing file is unreadable)"
    ours = str(incoming["provenance"]["finished_at"])
    return "incoming" if ours > theirs else "existing" if theirs > ours else "same time"


def plan_import(source: str | os.PathLike[str], *,
                results_dir: str | os.PathLike[str] | None = None,
                force: bool = False) -> list[FilePlan]:
    """What importing ``source`` (a results folder or a ``.tar.gz``) would do, file by file.

    Reads and checks every file (see the module docstring) and compares it with the results
    folder (default :func:`liquidssm.paths.results_dir`); writes nothing.
    """
    source = Path(source)
    if source.is_symlink():
        raise TransferError(f"{source}: a link; pass the folder or archive itself")
    if source.is_dir():
        items = _read_folder(source)
    elif source.is_file():
        items = _read_archive(source)
    else:
        raise TransferError(f"{source}: no such folder or archive")
    base = Path(results_dir) if results_dir is not None else paths.results_dir()
    plans, seen = [], set()
    for name, data, refused in items:
        if data is None:
            plans.append(FilePlan(name, "reject", refused))
            continue
        try:
            record, variant = _check(name, data)
        except TransferError as exc:
            plans.append(FilePlan(name, "reject", str(exc)))
            continue
        dest = paths.result_file(record["experiment"], record["profile"], record["seed"],
                                 paths.run_results_dir(variant, base))
        if dest in seen:
            plans.append(FilePlan(name, "reject", f"{name}: a second file for the same run"))
            continue
        seen.add(dest)
        if not dest.exists():
            plans.append(FilePlan(name, "new", "", dest, data=data))
        elif dest.read_bytes() == data:
            plans.append(FilePlan(name, "identical", "", dest))
        else:
            newer = _newer(record, dest)
            plans.append(FilePlan(name, "overwrite" if force else "keep",
                                  "" if force else "a different result exists; --force replaces it",
                                  dest, newer, data=data))
    return plans


def apply_import(plans: list[FilePlan]) -> list[Path]:
    """Write the ``new`` and ``overwrite`` files of :func:`plan_import`, each atomically."""
    written = []
    for p in plans:
        if p.action in ("new", "overwrite") and p.destination is not None:
            p.destination.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(p.destination, p.data)
            written.append(p.destination)
    return written


def describe(plans: list[FilePlan], *, root: Path | None = None) -> list[str]:
    """One line per file: the action, the name, and where it goes or why not (paths relative)."""
    lines = []
    for p in plans:
        where = ""
        if p.destination is not None:
            try:
                where = str(p.destination.relative_to(root)) if root else str(p.destination)
            except ValueError:
                where = str(p.destination)
        extra = {"new": f"-> {where}", "identical": f"already at {where}",
                 "keep": f"{p.reason} (newer: {p.newer})",
                 "overwrite": f"-> {where}, replacing the existing result (newer: {p.newer})",
                 "reject": p.reason}[p.action]
        lines.append(f"{p.action:<9} {p.name}: {extra}")
    return lines
