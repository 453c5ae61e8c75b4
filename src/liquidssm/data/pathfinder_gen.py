"""Pathfinder generator following the LRA procedure (Linsley et al. 2018; Tay et al. 2021).

Chapter reproductions/01_lra_synthetic_data. Each image holds two *target snakes* (chains of
``contour_length`` short line segments, "paddles", separated by a gap of ``margin``) started
``seed_distance`` apart, ``num_distractor_snakes`` shorter distractor snakes, and two disc
markers. One marker sits on the first tip of a randomly chosen target snake; the other on the
last tip of the *same* snake (label 1, connected) or of the *other* target snake (label 0).

Growth rule (the curvature rule of ``snakes2``): from the last paddle with orientation
``theta``, candidate orientations ``phi`` are spread over the circle (one per arc pixel of the
circle of radius ``paddle_length + margin`` at ``antialias_scale``); each gets the weight
``max(cos(min(continuity * |phi - theta|, pi/2)), 0) ** 2`` times 0 where the candidate's end
is out of the window or comes within ``min_separation`` of any paddle other than its
predecessor; the new paddle is drawn from the normalised weights (when every weight is zero the
snake is stuck and the pair of target snakes is redrawn, up to ``max_snake_retrial`` times;
``snakes2`` instead samples first and retries rejected paddles ``max_paddle_retrial`` times,
which gives the same distribution over admissible paddles).
Collisions are tested on the segment geometry (exact distances) rather than on a rasterised,
dilated mask as in ``snakes2``; the snakes are then rasterised with anti-aliasing at
``antialias_scale`` times the resolution and box-downsampled. The 8-bit image is rescaled so its
maximum is 255, as ``scipy.misc.imsave`` did.

Output layout (the LRA release): ``<out>/imgs/<k>/sample_<i>.png`` and ``<out>/metadata/<k>.npy``
written as **text**, one line per image:
``imgs/<k> sample_<i>.png <i> <label> <continuity> <contour_length> <distractor_length>
<paddle_length> <paddle_thickness> <margin> <n_contrasts>``.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from liquidssm._checks import check_int
from liquidssm.data._common import fresh_dir_beside, refuse_existing, replace_path


@dataclass(frozen=True)
class PathfinderParams:
    """Generator parameters (LRA docstrings of ``lra_benchmarks/data/pathfinder.py``)."""

    window_size: int = 32
    padding: int = 1
    paddle_margin_list: tuple[float, ...] = (1.0,)
    paddle_length: float = 2.0
    paddle_thickness: float = 0.5
    marker_radius: float = 1.5
    contour_length: int = 14
    antialias_scale: int = 2
    seed_distance: float = 7.0
    continuity: float = 1.0
    distractor_length: int = 4
    num_distractor_snakes: int = 5
    snake_contrast_list: tuple[float, ...] = (2.0,)
    paddle_contrast_list: tuple[float, ...] = (0.75,)
    max_paddle_retrial: int = 4
    max_snake_retrial: int = 50
    min_separation: float | None = None  # default: margin + paddle_thickness
    extra: dict = field(default_factory=dict, compare=False)


PARAMS: dict[int, PathfinderParams] = {
    32: PathfinderParams(),
    64: PathfinderParams(window_size=64, seed_distance=12, marker_radius=2.5, paddle_thickness=1.0,
                         paddle_length=5.0, continuity=1.8, distractor_length=4,
                         num_distractor_snakes=int(22 / (14 / 3)), snake_contrast_list=(0.8,),
                         paddle_contrast_list=(1.0,)),
    128: PathfinderParams(window_size=128, paddle_margin_list=(2.0, 3.0), seed_distance=20,
                          marker_radius=3.0, paddle_thickness=1.5, paddle_length=5.0,
                          continuity=1.8, distractor_length=4,
                          num_distractor_snakes=int(35 / (14 / 3)), snake_contrast_list=(0.9,),
                          paddle_contrast_list=(1.0,)),
}


class _Stuck(Exception):
    pass


def _point_seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points ``p (..., 2)`` to segments ``a -> b (..., 2)`` (broadcasting)."""
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(a + t[..., None] * ab - p, axis=-1)


def _seg_seg_dist(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Distance between segments ``a -> b`` and ``c -> d`` (broadcasting ``(..., 2)`` inputs)."""
    def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    r, s = b - a, d - c
    den = cross(r, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = cross(c - a, s) / den
        u = cross(c - a, r) / den
    inter = (np.abs(den) > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    dist = np.minimum.reduce([
        _point_seg_dist(a, c, d), _point_seg_dist(b, c, d),
        _point_seg_dist(c, a, b), _point_seg_dist(d, a, b)])
    return np.where(inter, 0.0, dist)


class _Canvas:
    """Paddle geometry of one image: segments (n, 4) and their snake ids."""

    def __init__(self, p: PathfinderParams, margin: float) -> None:
        self.p, self.margin = p, margin
        self.sep = p.min_separation if p.min_separation is not None else margin + p.paddle_thickness
        self.segs = np.zeros((0, 4))
        self.owner: list[int] = []

    def free(self, a: np.ndarray, b: np.ndarray, skip: int | None) -> np.ndarray:
        """For candidate paddles ``a -> b`` (k, 2): inside the window and ``sep`` from all others."""
        lo, hi = self.p.padding, self.p.window_size - self.p.padding
        ok = ((a >= lo) & (a <= hi) & (b >= lo) & (b <= hi)).all(-1)
        if len(self.segs) == 0:
            return ok
        d = _seg_seg_dist(a[:, None], b[:, None], self.segs[None, :, :2], self.segs[None, :, 2:])
        if skip is not None:
            d[:, skip] = np.inf
        return ok & (d.min(axis=1) >= self.sep)

    def add(self, a: np.ndarray, b: np.ndarray, snake: int) -> int:
        self.segs = np.vstack([self.segs, np.concatenate([a, b])[None]])
        self.owner.append(snake)
        return len(self.segs) - 1


def _grow_snake(cv: _Canvas, rng: np.random.Generator, start: np.ndarray, theta: float,
                n_paddles: int, snake: int) -> list[int]:
    """Chain ``n_paddles`` paddles from ``start``; raises ``_Stuck`` if it cannot."""
    p = cv.p
    L, m = p.paddle_length, cv.margin
    b = start + L * np.array([math.cos(theta), math.sin(theta)])
    if not cv.free(start[None], b[None], None)[0]:
        raise _Stuck
    ids = [cv.add(start, b, snake)]
    n_cand = max(16, math.ceil(2 * math.pi * (L + m) * p.antialias_scale))
    phis = theta + np.linspace(-math.pi, math.pi, n_cand, endpoint=False)
    offsets = phis - theta
    for _ in range(n_paddles - 1):
        last = cv.segs[ids[-1]]
        end = last[2:]
        dirs = np.stack([np.cos(phis), np.sin(phis)], axis=1)
        turn = np.abs((offsets + math.pi) % (2 * math.pi) - math.pi)
        w = np.maximum(np.cos(np.minimum(p.continuity * turn, math.pi / 2)), 0.0) ** 2
        new_a = end[None] + m * dirs
        new_b = new_a + L * dirs
        w = w * cv.free(new_a, new_b, ids[-1])
        if w.sum() <= 1e-12:
            raise _Stuck
        j = rng.choice(len(w), p=w / w.sum())
        ids.append(cv.add(new_a[j], new_b[j], snake))
        theta = float(phis[j])
        phis = theta + offsets
    return ids


def draw_sample(params: PathfinderParams, rng: np.random.Generator) -> dict:
    """One Pathfinder image: ``{"image": (R, R) uint8, "label", "segments", "owner", "markers", "margin"}``.

    ``segments (n, 4)`` are the paddles ``(x0, y0, x1, y1)`` in pixel units, ``owner`` their
    snake id (0 and 1 = target snakes, 2.. distractors), ``markers (2, 2)`` the marker centres.
    """
    p = params
    W = p.window_size
    label = int(rng.integers(0, 2))
    margin = float(rng.choice(p.paddle_margin_list))
    for _ in range(p.max_snake_retrial):
        cv = _Canvas(p, margin)
        try:
            lo, hi = p.padding + p.paddle_length, W - p.padding - p.paddle_length
            s1 = rng.uniform(lo, hi, size=2)
            ang = rng.uniform(0, 2 * math.pi)
            s2 = s1 + p.seed_distance * np.array([math.cos(ang), math.sin(ang)])
            if not (lo <= s2[0] <= hi and lo <= s2[1] <= hi):
                raise _Stuck
            a = _grow_snake(cv, rng, s1, math.radians(rng.integers(-180, 180)), p.contour_length, 0)
            b = _grow_snake(cv, rng, s2, math.radians(rng.integers(-180, 180)), p.contour_length, 1)
        except _Stuck:
            continue
        break
    else:
        raise RuntimeError(f"could not place two target snakes in {p.max_snake_retrial} tries; "
                           "the parameters leave too little room")
    snakes = [a, b]
    for k in range(p.num_distractor_snakes):
        for _ in range(20):
            n_before = len(cv.segs)
            try:
                start = rng.uniform(p.padding, W - p.padding, size=2)
                _grow_snake(cv, rng, start, math.radians(rng.integers(-180, 180)),
                            p.distractor_length, 2 + k)
                break
            except _Stuck:
                cv.segs = cv.segs[:n_before]
                cv.owner = cv.owner[:n_before]
    target = int(rng.integers(0, 2))
    other = target if label == 1 else 1 - target
    m1 = cv.segs[snakes[target][0], :2]
    m2 = cv.segs[snakes[other][-1], 2:]
    image = render(cv.segs, np.array([m1, m2]), p)
    return {"image": image, "label": label, "segments": cv.segs.copy(),
            "owner": np.array(cv.owner), "markers": np.array([m1, m2]), "margin": margin}


def render(segs: np.ndarray, markers: np.ndarray, p: PathfinderParams) -> np.ndarray:
    """Rasterise paddles (anti-aliased at ``antialias_scale``) and marker discs to uint8 (R, R)."""
    aa, W = p.antialias_scale, p.window_size
    c = (np.arange(W * aa) + 0.5) / aa
    X, Y = np.meshgrid(c, c)  # X = column (x), Y = row (y)
    P = np.stack([X, Y], -1)
    strokes = np.zeros((W * aa, W * aa))
    half = p.paddle_thickness / 2
    for s in segs:
        x0, x1 = sorted((s[0], s[2]))
        y0, y1 = sorted((s[1], s[3]))
        r = half + 1.0
        cols = slice(max(int((x0 - r) * aa), 0), min(int((x1 + r) * aa) + 1, W * aa))
        rows = slice(max(int((y0 - r) * aa), 0), min(int((y1 + r) * aa) + 1, W * aa))
        d = _point_seg_dist(P[rows, cols], s[:2], s[2:])
        strokes[rows, cols] = np.maximum(strokes[rows, cols], np.clip(0.5 + (half - d) * aa, 0, 1))
    contrast = float(p.snake_contrast_list[0]) * float(p.paddle_contrast_list[0])
    img = strokes * contrast
    for m in markers:
        d = np.linalg.norm(P - m, axis=-1)
        img = np.maximum(img, np.clip(0.5 + (p.marker_radius - d) * aa, 0, 1))
    img = img.reshape(W, aa, W, aa).mean(axis=(1, 3))
    top = img.max()
    return np.round(255 * img / top).astype(np.uint8) if top > 0 else img.astype(np.uint8)


def connected(sample: dict, tol: float = 1e-6) -> bool:
    """Independent label check on the geometry: are the two markers on one chain of paddles?

    Paddles are joined when an end of one lies within ``margin`` (+ ``tol``) of an end of the
    other; markers are attached to the paddle tip they sit on. Uses no snake ids.
    """
    segs, m = sample["segments"], sample["markers"]
    ends = np.concatenate([segs[:, :2], segs[:, 2:]])  # (2n, 2)
    n = len(segs)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    d = np.linalg.norm(ends[:, None] - ends[None], axis=-1)
    for i, j in zip(*np.nonzero(d <= sample["margin"] + tol), strict=True):
        if i % n != j % n:
            parent[find(i % n)] = find(j % n)
    tip = [int(np.argmin(np.linalg.norm(ends - mk, axis=-1))) % n for mk in m]
    return find(tip[0]) == find(tip[1])


def _write_one(job: tuple[PathfinderParams, int, int, str, int]) -> tuple[int, str, int]:
    """Draw image ``i`` from its own seed ``[seed, i]``, save it, return its metadata line."""
    p, seed, i, out, per_batch = job
    k, j = divmod(i, per_batch)
    s = draw_sample(p, np.random.default_rng([seed, i]))
    d = Path(out) / "imgs" / str(k)
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(s["image"]).save(d / f"sample_{j}.png")
    line = (f"imgs/{k} sample_{j}.png {j} {s['label']} {p.continuity} {p.contour_length} "
            f"{p.distractor_length} {p.paddle_length:g} {p.paddle_thickness:g} {s['margin']:g} "
            f"{len(p.paddle_contrast_list)}")
    return k, line, s["label"]


def generate_pathfinder(out_dir: str | os.PathLike[str], n_images: int,
                        params: PathfinderParams | None = None, seed: int = 0,
                        images_per_batch: int = 1000, progress: bool = True,
                        workers: int = 1, overwrite: bool = False) -> dict:
    """Write ``n_images`` PNGs + text metadata under ``out_dir`` (``imgs/<k>``, ``metadata/<k>.npy``).

    Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so the output is
    deterministic and identical for any number of ``workers`` (processes). LRA's release has
    200000 images per difficulty in 200 batches of 1000. Returns
    ``{"n_images", "n_batches", "labels_mean", "params"}``. Existing ``imgs/`` or ``metadata/``
    folders with content raise ``FileExistsError`` unless ``overwrite``; the images are drawn
    into a hidden sibling folder and renamed into place when all are written.
    """
    n_images = check_int(n_images, "n_images", minimum=1)
    images_per_batch = check_int(images_per_batch, "images_per_batch", minimum=1)
    workers = check_int(workers, "workers", minimum=1)
    check_int(seed, "seed", minimum=0)
    if params is not None and not isinstance(params, PathfinderParams):
        raise TypeError(f"params: expected a PathfinderParams, got {type(params).__name__}")
    p = params or PARAMS[32]
    final = Path(out_dir)
    refuse_existing([final / "imgs", final / "metadata"], overwrite, "generate_pathfinder",
                    "--force (overwrite=True from Python)")
    out = fresh_dir_beside(final)
    try:
        info = _generate_into(out, n_images, p, seed, images_per_batch, progress, workers)
        for part in ("imgs", "metadata"):
            replace_path(out / part, final / part)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return info


def _generate_into(out: Path, n_images: int, p: PathfinderParams, seed: int, images_per_batch: int,
                   progress: bool, workers: int) -> dict:
    """Draw and write the images and metadata of :func:`generate_pathfinder` into ``out``."""
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    (out / "imgs").mkdir(parents=True, exist_ok=True)
    jobs = [(p, seed, i, str(out), images_per_batch) for i in range(n_images)]
    bar = tqdm(total=n_images, desc=f"Pathfinder{p.window_size}", disable=not progress)
    results: list[tuple[int, str, int]] = []
    if workers == 1:
        for job in jobs:
            results.append(_write_one(job))
            bar.update(1)
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as ex:
            for r in ex.map(_write_one, jobs, chunksize=max(1, min(64, n_images // (4 * workers)))):
                results.append(r)
                bar.update(1)
    bar.close()
    lines: dict[int, list[str]] = {}
    for k, line, _ in results:  # results are in image order (map preserves order)
        lines.setdefault(k, []).append(line)
    for k, ls in lines.items():
        (out / "metadata" / f"{k}.npy").write_text("\n".join(ls) + "\n")
    return {"n_images": n_images, "n_batches": len(lines),
            "labels_mean": float(np.mean([r[2] for r in results])), "params": asdict(p)}
