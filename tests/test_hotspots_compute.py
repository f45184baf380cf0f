"""HOTSPOTS in Python: the AWS documentation's known answer, and
scikit-learn's DBSCAN as an independent oracle on random layouts.

Comparison with DBSCAN: the same core points (sklearn's core_sample_indices_), and
the same partition of them into clusters (labels are compared as sets of core-point
sets, not by number).  Border points are not compared: DBSCAN gives a border point
reachable from two clusters to whichever it expands first, and our hotspots do not
use them (see chalicelib/hotspots/compute.py)."""
import math
import random

import pytest

from bench.hotspots import aws_layout
from chalicelib.hotspots.compute import MIN_SIDE, dbscan, find_hotspots


def aws_example(seed: int, n: int = 1000):
    """The AWS example scaled to the unit square: n points uniform, 20% of them inside
    one square of side 0.1 (1x1 on the 10x10 plane), at [0.3, 0.4] x [0.5, 0.6]."""
    return aws_layout(n, seed)


@pytest.mark.parametrize("seed", range(5))
def test_known_answer_from_the_aws_documentation(seed):
    # HOTSPOTS(1000 points, 0.2, 17) on a 10x10 plane -> one hotspot whose box is the
    # 1x1 square within 0.1 on each edge; on the unit square: radius 0.02, within 0.01.
    spots = find_hotspots(aws_example(seed), scan_radius=0.02, min_points=17)
    assert len(spots) == 1, spots
    spot = spots[0]
    for got, want in zip((*spot.min, *spot.max), (0.3, 0.5, 0.4, 0.6), strict=True):
        assert abs(got - want) <= 0.01, spot
    assert 150 <= spot.count <= 230
    width, height = spot.max[0] - spot.min[0], spot.max[1] - spot.min[1]
    assert spot.density == pytest.approx(spot.count / (width * height))


def test_uniform_noise_has_no_hotspot_and_empty_windows_are_fine():
    rng = random.Random(7)
    assert find_hotspots([(rng.random(), rng.random()) for _ in range(1000)], 0.02, 17) == []
    assert find_hotspots([], 0.02, 17) == []
    assert find_hotspots([(0.5, 0.5)] * 16, 0.02, 17) == []


def test_clicks_on_one_spot_are_one_hotspot_with_a_finite_density():
    spots = find_hotspots([(0.25, 0.75)] * 20, 0.02, 17)
    assert [(s.min, s.max, s.count) for s in spots] == [((0.25, 0.75), (0.25, 0.75), 20)]
    assert spots[0].density == 20 / (MIN_SIDE * MIN_SIDE)


def test_two_regions_are_reported_densest_first():
    rng = random.Random(3)
    tight = [(0.1 + rng.random() * 0.02, 0.1 + rng.random() * 0.02) for _ in range(40)]
    loose = [(0.7 + rng.random() * 0.05, 0.7 + rng.random() * 0.05) for _ in range(60)]
    spots = find_hotspots(tight + loose, 0.02, 10)
    assert len(spots) == 2 and spots[0].count == 40 and 45 <= spots[1].count <= 60
    assert spots[0].density > spots[1].density
    assert spots[0].min[0] >= 0.1 and spots[0].max[0] <= 0.12


def _partition(labels, core_idx):
    groups = {}
    for i in core_idx:
        groups.setdefault(labels[i], set()).add(i)
    return {frozenset(g) for g in groups.values()}


def _random_layout(rng, n):
    """Uniform noise plus a few blobs of random size and spread: dense cells, sparse
    cells, and clusters that touch."""
    points = [(rng.random(), rng.random()) for _ in range(n // 2)]
    while len(points) < n:
        cx, cy, spread = rng.random(), rng.random(), rng.uniform(0.005, 0.08)
        for _ in range(rng.randint(10, n // 4)):
            x, y = rng.gauss(cx, spread), rng.gauss(cy, spread)
            points.append((min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)))
    return points[:n]


@pytest.mark.parametrize("seed", range(12))
def test_dbscan_oracle_agrees_on_random_layouts(seed):
    np = pytest.importorskip("numpy")
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    rng = random.Random(1000 + seed)
    n = rng.choice([200, 1000, 3000])
    eps = rng.choice([0.01, 0.02, 0.05])
    min_points = rng.choice([3, 5, 17, 40])
    points = _random_layout(rng, n)
    xs, ys = [p[0] for p in points], [p[1] for p in points]

    ours = dbscan(xs, ys, eps, min_points)
    theirs = sklearn_cluster.DBSCAN(eps=eps, min_samples=min_points).fit(np.array(points))

    their_core = sorted(int(i) for i in theirs.core_sample_indices_)
    our_core = [i for i in range(n) if ours.core[i]]
    assert our_core == their_core
    assert _partition(ours.labels, our_core) == _partition(list(theirs.labels_), their_core)
    # ...and the hotspots are the boxes of those clusters
    spots = find_hotspots(points, eps, min_points)
    want = sorted((len(g), min(xs[i] for i in g), max(ys[i] for i in g))
                  for g in _partition(list(theirs.labels_), their_core))
    assert sorted((s.count, s.min[0], s.max[1]) for s in spots) == want
    assert all(math.isfinite(s.density) for s in spots)
