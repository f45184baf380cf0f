"""Hotspots: dense regions of a window of points, DBSCAN-style, pure Python on a grid.

The retired Kinesis Data Analytics SQL function `HOTSPOTS(window, scan_radius,
min_points)` reported each dense region as its bounding box, point count and
density.  This module gives it the DBSCAN meaning (eps = scan_radius,
min_samples = min_points, distances Euclidean):

- a point is *core* when at least `min_points` points (itself included) lie within
  `scan_radius` of it (distance <= scan_radius);
- core points within `scan_radius` of each other are in the same region (clusters
  are the connected components of that relation);
- a non-core point within `scan_radius` of a core point is a *border* point.

A hotspot is one region: `count` its core points, `min`/`max` their bounding box,
`density` = count / box area.  Border points are left out: they are the fringe
around a dense region (up to scan_radius outside it, so they would stretch the box
by that much: the AWS example's 1x1 square would come out up to 0.2 larger on
each side, not within 0.1), and DBSCAN gives one reachable from two regions to
whichever it expands first, so counting them would make the answer depend on
processing order.  Core points and their regions do not depend on it.  A box
thinner than MIN_SIDE on a side (all clicks on one spot, or on one line) counts
MIN_SIDE for that side, so density stays finite.

Why written here and not numpy/scikit-learn: numpy alone would add ~15 MB zipped to
the Lambda package, whose whole budget is 15 MB.  Speed comes from
grids instead of all-pairs distances:
- a coarse pass (cells of side scan_radius, sums of 3x3 cells) drops the sparse
  parts of the window, which cannot hold a core point;
- then cells of side scan_radius / sqrt(2): two points in one cell are always
  within scan_radius (the cell's diagonal), so a cell holding >= min_points points
  is all core, with no distance computed;
- the neighbours of a point can only be in the 21 cells of the 5x5 block around
  its cell, corners excluded (those are at least scan_radius away); a cell whose
  21-cell block holds fewer than min_points points has no core point;
- only the remaining points are counted one by one, stopping at min_points;
- two cells' core points are joined once one pair within scan_radius is found
  (union-find over cells, not points);
- the loops over points are map()/sum()/sorted()/Counter, which loop in C.
The result is exactly DBSCAN's core points and their clusters
(tests/test_hotspots_compute.py checks it against scikit-learn's DBSCAN).
"""
from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress, groupby
from operator import add, itemgetter

MIN_SIDE = 1e-3  # a thousandth of the canvas: about one pixel of a 1000 px canvas
_WHOLE_CELL = 24  # cells at least this full are first tested whole (4 distances, not n)
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Hotspot:
    density: float
    min: tuple[float, float]
    max: tuple[float, float]
    count: int

    def to_dict(self) -> dict:
        return {"density": self.density, "min": list(self.min), "max": list(self.max),
                "count": self.count}


@dataclass(frozen=True)
class Clustering:
    """Per point: labels[i] is the region of a core point, -1 for any other point."""

    labels: list[int]
    core: bytearray  # 1 where the point is a core point


def _grid(xs: Sequence[float], ys: Sequence[float], side: float):
    """Cells as {key: [point index...]}, the 21 neighbour offsets, and a function giving
    a cell's four corners as complex numbers."""
    inv = 1.0 / side
    x0, y0 = min(xs), min(ys)
    # +2 margins on both axes so key + offset never wraps into another column
    stride = int((max(ys) - y0) * inv) + 5
    keys = list(map(add, map(stride.__mul__, map((2).__add__, _cells_of(xs, x0, inv))),
                    map((2).__add__, _cells_of(ys, y0, inv))))
    # grouping by sorting: C-level loops per point, a Python step per cell only
    by_key = keys.__getitem__
    cells = {key: list(group) for key, group in groupby(sorted(range(len(keys)), key=by_key),
                                                         key=by_key)}
    # nearest cells first: counting stops at min_points, the sooner the better
    near = sorted(((dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
                   if not (abs(dx) == 2 and abs(dy) == 2) and (dx, dy) != (0, 0)),
                  key=lambda d: d[0] * d[0] + d[1] * d[1])

    def corners(key: int) -> tuple[complex, ...]:
        low = complex(x0 + (key // stride - 2) * side, y0 + (key % stride - 2) * side)
        return low, low + side, low + side * 1j, low + side + side * 1j

    return cells, [dx * stride + dy for dx, dy in near], corners


def _find(parent: dict[int, int], a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _box3(rows: list[list[int]]) -> list[list[int]]:
    """Sum of each cell's 3x3 block on a dense grid, with C-level map/add only."""
    def along(row):
        padded = [0, *row, 0]
        return list(map(add, map(add, padded[:-2], padded[1:-1]), padded[2:]))

    sums = [along(row) for row in rows]
    zero = [0] * len(rows[0])
    sums = [zero, *sums, zero]
    return [list(map(add, map(add, sums[i], sums[i + 1]), sums[i + 2]))
            for i in range(len(rows))]


def _cells_of(values: Sequence[float], origin: float, inv: float):
    """int((v - origin) * inv) for each value, as C-level map()s."""
    return map(int, map(inv.__mul__, map(origin.__rsub__, values)))


def _prefilter(xs: Sequence[float], ys: Sequence[float], eps: float,
               min_points: int) -> list[int] | None:
    """The points the exact pass needs, or None for all of them.

    On a coarse grid of side eps, a point's eps-neighbours all lie in the 3x3 block
    around its cell, so a cell whose block holds fewer than min_points points has no
    core point.  The exact pass needs the other cells and their 3x3 neighbours (whose
    counts it then underestimates, harmlessly: they are below min_points anyway).
    Worth it where most of a window is sparse noise; the block sums run on a dense
    grid with C-level map(), so this is skipped when that grid would be much larger
    than the window."""
    n = len(xs)
    inv = 1.0 / eps
    x0, y0 = min(xs), min(ys)
    nx, ny = int((max(xs) - x0) * inv) + 1, int((max(ys) - y0) * inv) + 1
    if nx * ny > 4 * n or nx < 4 or ny < 4:
        return None
    # Everything below runs as map()/Counter/compress loops in C: per point, this pass
    # costs a fraction of what one line of Python per point would.
    keys = list(map(add, map(ny.__mul__, _cells_of(xs, x0, inv)), _cells_of(ys, y0, inv)))
    flat = [0] * (nx * ny)
    counts = Counter(keys)
    deque(map(flat.__setitem__, counts.keys(), counts.values()), maxlen=0)
    blocks = _box3([flat[i * ny:(i + 1) * ny] for i in range(nx)])
    near_core = _box3([list(map(min_points.__le__, row)) for row in blocks])
    needed = list(map(bool, chain.from_iterable(near_core)))
    keep = list(compress(range(n), map(needed.__getitem__, keys)))
    return keep if len(keep) < n else None


def dbscan(xs: Sequence[float], ys: Sequence[float], eps: float, min_points: int) -> Clustering:
    """DBSCAN of the points (xs[i], ys[i]); see the module docstring for the method."""
    n = len(xs)
    labels = [-1] * n
    core = bytearray(n)
    if n == 0 or n < min_points:
        return Clustering(labels, core)
    keep = _prefilter(xs, ys, eps, min_points)
    if keep is not None:
        if not keep:
            return Clustering(labels, core)
        part = _dbscan_grid([xs[i] for i in keep], [ys[i] for i in keep], eps, min_points)
        for j, i in enumerate(keep):
            labels[i] = part.labels[j]
            core[i] = part.core[j]
        return Clustering(labels, core)
    return _dbscan_grid(xs, ys, eps, min_points)


def _dbscan_grid(xs: Sequence[float], ys: Sequence[float], eps: float,
                 min_points: int) -> Clustering:
    n = len(xs)
    labels = [-1] * n
    core = bytearray(n)
    cells, offsets, corners = _grid(xs, ys, eps / _SQRT2)
    # Points as complex numbers: abs(q - p) is their distance, and counting the
    # neighbours of p in a cell is map/abs/sum, C-level loops with no Python bytecode
    # per pair (about 3x faster than a for loop over (x, y) tuples).
    points = {key: [complex(xs[i], ys[i]) for i in members] for key, members in cells.items()}
    within = eps.__ge__  # within(d) is d <= eps
    inside = eps * (1 - 1e-9)  # a hair less: a cell's computed corners may be off by an ulp

    # 1. core points
    for key, members in cells.items():
        m = len(members)
        if m >= min_points:
            for i in members:
                core[i] = 1
            continue
        near_pts = [points[key + o] for o in offsets if key + o in points]
        total = sum(map(len, near_pts))
        if m + total < min_points:
            continue
        need = min_points - m  # the point's own cell is all within eps
        # a big cell whose four corners are all within eps of p is counted whole
        boxes = [corners(key + o) if len(points[key + o]) >= _WHOLE_CELL else ()
                 for o in offsets if key + o in points]
        for i, p in zip(members, points[key], strict=True):
            found = 0
            left = total  # points not looked at yet: an upper bound on what may come
            towards = p.__rsub__  # towards(q) is q - p
            for pts, box in zip(near_pts, boxes, strict=True):
                left -= len(pts)
                if box and max(map(abs, map(towards, box))) <= inside:
                    found += len(pts)
                else:
                    found += sum(map(within, map(abs, map(towards, pts))))
                if found >= need:
                    core[i] = 1
                    break
                if found + left < need:
                    break  # cannot reach min_points any more

    # 2. join cells whose core points reach each other (union-find over cells)
    core_pts = {}
    for key, members in cells.items():
        pts = [p for i, p in zip(members, points[key], strict=True) if core[i]]
        if pts:
            core_pts[key] = pts
    parent = {key: key for key in core_pts}
    for key, pts in core_pts.items():
        for o in offsets:
            other = key + o
            if other < key or other not in core_pts:
                continue  # each pair of cells once
            ra, rb = _find(parent, key), _find(parent, other)
            if ra == rb:
                continue
            if _any_within(pts, core_pts[other], within):
                parent[rb] = ra

    # 3. label core points by their cell's root (border points are not needed)
    region_of_root: dict[int, int] = {}
    for key in core_pts:
        region = region_of_root.setdefault(_find(parent, key), len(region_of_root))
        for i in cells[key]:
            if core[i]:
                labels[i] = region
    return Clustering(labels, core)


def _any_within(a: list[complex], b: list[complex], within) -> bool:
    """True when some point of a is within eps of some point of b."""
    return any(any(map(within, map(abs, map(p.__rsub__, b)))) for p in a)


def find_hotspots(points: Sequence[Sequence[float]], scan_radius: float,
                  min_points: int) -> list[Hotspot]:
    """HOTSPOTS(points, scan_radius, min_points): the dense regions, densest first."""
    if not points:
        return []
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    labels = dbscan(xs, ys, scan_radius, min_points).labels
    boxes: dict[int, list] = {}
    for x, y, label in zip(xs, ys, labels, strict=True):
        if label < 0:
            continue
        box = boxes.get(label)
        if box is None:
            boxes[label] = [x, y, x, y, 1]
            continue
        if x < box[0]:
            box[0] = x
        elif x > box[2]:
            box[2] = x
        if y < box[1]:
            box[1] = y
        elif y > box[3]:
            box[3] = y
        box[4] += 1
    spots = []
    for x0, y0, x1, y1, count in boxes.values():
        area = max(x1 - x0, MIN_SIDE) * max(y1 - y0, MIN_SIDE)
        spots.append(Hotspot(count / area, (x0, y0), (x1, y1), count))
    spots.sort(key=lambda h: (-h.density, h.min))
    return spots


# --- heatmap ---------------------------------------------------------------------------
# A density surface of the window: the clicks binned on a grid x grid lattice of the
# canvas, then smoothed with a separable Gaussian of HEATMAP_SIGMA_CELLS cells, truncated
# at HEATMAP_RADIUS cells (3 sigma: the cut-off taps weigh under 0.3%) and renormalised so
# the taps sum to 1.  One cell of bandwidth removes the binning's own noise (a click next
# to a cell edge lends half its weight to the neighbour) while two features 3 cells apart
# stay two peaks, whatever resolution the caller chose; the blur then costs a fixed
# 2 x 7 taps per cell.  At the canvas edges the grid is mirrored (a click in the first
# cell keeps all its weight inside the canvas), so each value is a count of clicks per
# cell, smoothed, and the cells sum to the clicks binned.
# Cost: one pass over the clicks (C-level map/Counter), then O(grid^2 x taps), also as
# C-level map()s per row: no numpy, for the package budget (see the module docstring).

HEATMAP_SIGMA_CELLS = 1.0
HEATMAP_RADIUS = 3
GRID_BOUNDS = (32, 4, 128)  # (default, minimum, maximum) cells a side


def gaussian_taps(sigma: float = HEATMAP_SIGMA_CELLS, radius: int = HEATMAP_RADIUS) -> list[float]:
    weights = [math.exp(-0.5 * (d / sigma) ** 2) for d in range(-radius, radius + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def bin_counts(xs: Sequence[float], ys: Sequence[float], grid: int) -> list[list[int]]:
    """Clicks per cell as rows (y, top first) of columns (x); x or y = 1.0 falls in the
    last cell."""
    scale, stride, last = float(grid), grid + 1, grid - 1
    # keys on a (grid + 1)-wide lattice, so 1.0 (cell `grid`) needs no per-click clamp: it
    # is folded into the last cell below, once per distinct key, not once per click
    counts = Counter(map(add, map(stride.__mul__, map(int, map(scale.__mul__, ys))),
                         map(int, map(scale.__mul__, xs))))
    flat = [0] * (grid * grid)
    for key, n in counts.items():
        row, col = divmod(key, stride)
        flat[min(row, last) * grid + min(col, last)] += n
    return [flat[i * grid:(i + 1) * grid] for i in range(grid)]


def _blur_rows(rows: list[list], taps: list[float]) -> list[list[float]]:
    """Each row convolved with the (symmetric) taps, the row mirrored at both ends: the
    centre tap times the row, plus each other tap times the sum of the row shifted both
    ways (half the multiplications of one product per tap)."""
    radius = len(taps) // 2
    centre = taps[radius]
    out = []
    for row in rows:
        n = len(row)
        if not any(row):
            out.append([0.0] * n)
            continue
        padded = [*row[radius - 1::-1], *row, *row[:-radius - 1:-1]]
        acc = list(map(centre.__mul__, row))
        for d in range(1, radius + 1):
            pair = map(add, padded[radius - d:radius - d + n], padded[radius + d:radius + d + n])
            acc = list(map(add, acc, map(taps[radius + d].__mul__, pair)))
        out.append(acc)
    return out


def blur(counts: list[list[int]], taps: list[float] | None = None) -> list[list[float]]:
    """The separable blur: along each row, then along each column (transposed by zip)."""
    taps = taps or gaussian_taps()
    across = _blur_rows(counts, taps)
    down = _blur_rows([list(col) for col in zip(*across, strict=True)], taps)
    return [list(row) for row in zip(*down, strict=True)]


def heatmap(points: Sequence[Sequence[float]], grid: int = GRID_BOUNDS[0]) -> list[list[float]]:
    """The smoothed clicks per cell of points (x, y in 0..1), as rows (y) of columns (x)."""
    if not points:
        return [[0.0] * grid for _ in range(grid)]
    return blur(bin_counts(list(map(itemgetter(0), points)), list(map(itemgetter(1), points)),
                           grid))
