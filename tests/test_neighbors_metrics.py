import numpy as np
import pytest
import torch

from imagina.core.metrics import (
    density_coverage,
    embedding_metrics,
    frechet_distance,
    mean_pairwise_distance,
    prdc,
    precision_recall,
)
from imagina.core.neighbors import _two_smallest, ball_stats, count_within, knn, kth_neighbour_radius


@pytest.fixture
def clouds():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 6)).astype(np.float32), rng.normal(size=(200, 6)).astype(np.float32)


def test_knn_matches_brute_force_for_any_chunk(clouds):
    A, B = clouds
    D = torch.cdist(torch.from_numpy(A), torch.from_numpy(B)).numpy()
    expected = np.sort(D, axis=1)[:, :4]
    for chunk in (16, 37, 4096):
        d, idx = knn(A, B, 4, chunk=chunk)
        np.testing.assert_allclose(d, expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(D[np.arange(len(A))[:, None], idx], d, rtol=1e-5, atol=1e-5)


def test_knn_exclude_self(clouds):
    A, _ = clouds
    d, idx = knn(A, A, 1, exclude_self=True, chunk=50)
    assert (idx[:, 0] != np.arange(len(A))).all()
    assert (d[:, 0] > 0).all()


def test_count_within_and_radius(clouds):
    A, B = clouds
    radii = kth_neighbour_radius(B, 3, chunk=64)
    D = torch.cdist(torch.from_numpy(A), torch.from_numpy(B)).numpy()
    np.testing.assert_array_equal(count_within(A, B, radii, chunk=29), (D <= radii[None]).sum(1))


def test_metrics_do_not_depend_on_chunk(clouds):
    A, B = clouds
    assert precision_recall(A, B, chunk=17) == precision_recall(A, B, chunk=4096)
    assert density_coverage(A, B, chunk=17) == density_coverage(A, B, chunk=4096)


def test_metrics_sanity(clouds):
    A, B = clouds
    assert frechet_distance(A, A) == pytest.approx(0.0, abs=1e-6)
    far = B + 10
    assert frechet_distance(A, far) > frechet_distance(A, B)
    pr = precision_recall(A, far)
    assert pr["precision"] == 0.0 and pr["recall"] == 0.0
    assert precision_recall(A, B)["precision"] > 0.8
    # a collapsed generator: perfect precision on one point, no coverage
    collapsed = np.repeat(A[:1], 50, axis=0) + 1e-3 * np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    assert density_coverage(A, collapsed)["coverage"] < 0.05
    assert mean_pairwise_distance(collapsed) < 0.1 < mean_pairwise_distance(A)


def _brute(A, B):
    """Float64 distances from direct differences: the reference every result must equal."""
    return torch.cdist(torch.as_tensor(A).double(), torch.as_tensor(B).double(),
                       compute_mode="donot_use_mm_for_euclid_dist").numpy()


def _kth_brute(X, k):
    D = _brute(X, X)
    np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, k - 1]


def _hard_sets():
    """Point sets where float32 matrix-multiply distances alone would go wrong: a large common
    offset (cancellation), exact duplicates (ties between neighbours) and an integer grid (many
    distances exactly equal to a radius)."""
    rng = np.random.default_rng(4)
    yield "offset", (rng.normal(size=(300, 8)) + 300).astype(np.float32), (rng.normal(size=(200, 8)) + 300.5).astype(np.float32)
    yield "duplicates", np.repeat(rng.normal(size=(30, 4)), 8, 0).astype(np.float32), np.repeat(rng.normal(size=(25, 4)), 6, 0).astype(np.float32)
    yield "grid", rng.integers(0, 4, size=(250, 2)).astype(np.float32), rng.integers(0, 4, size=(150, 2)).astype(np.float32)


@pytest.mark.parametrize("chunk", [16, 37, 128, 4096])
def test_neighbours_equal_a_float64_brute_force_reference(chunk):
    for name, A, B in _hard_sets():
        D = _brute(A, B)
        d, idx = knn(A, B, 3, chunk=chunk)
        np.testing.assert_allclose(d, np.sort(D, axis=1)[:, :3], rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(D[np.arange(len(A))[:, None], idx], d, rtol=1e-12, atol=1e-12, err_msg=name)
        r_B, r_A = kth_neighbour_radius(B, 4, chunk=chunk), kth_neighbour_radius(A, 4, chunk=chunk)
        np.testing.assert_allclose(r_B, _kth_brute(B, 4), rtol=1e-12, atol=1e-12, err_msg=name)
        s = ball_stats(A, B, r_B, radii_A=r_A, nearest=True, chunk=chunk)
        inside = D <= r_B[None]
        np.testing.assert_array_equal(s.count, inside.sum(1), err_msg=name)
        np.testing.assert_array_equal(s.covered, inside.any(0), err_msg=name)
        np.testing.assert_array_equal(s.inside, (D <= r_A[:, None]).any(0), err_msg=name)
        np.testing.assert_allclose(s.nearest_dist, D.min(1), rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(D[np.arange(len(A)), s.nearest_index], D.min(1), atol=1e-12, err_msg=name)


def test_neighbours_equal_the_reference_over_many_tiles():
    """3,000 × 2,500 points at the default chunk: several 1024-item tiles of the symmetric pass
    (each item's first tile through its group minima, later ones through the fold), several
    256-row ball blocks with rows taken in radius order."""
    rng = np.random.default_rng(7)
    A = rng.normal(size=(3000, 16)).astype(np.float32)
    B = (1.1 * rng.normal(size=(2500, 16)) + 0.05).astype(np.float32)
    D = _brute(A, B)
    r_A, r_B = kth_neighbour_radius(A, 5), kth_neighbour_radius(B, 5)
    np.testing.assert_allclose(r_A, _kth_brute(A, 5), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r_B, _kth_brute(B, 5), rtol=1e-12, atol=1e-12)
    d, idx = knn(A, B, 5)
    np.testing.assert_allclose(d, np.sort(D, axis=1)[:, :5], rtol=1e-12, atol=1e-12)
    s = ball_stats(A, B, r_B, radii_A=r_A, nearest=True)
    inside = D <= r_B[None]
    np.testing.assert_array_equal(s.count, inside.sum(1))
    np.testing.assert_array_equal(s.covered, inside.any(0))
    np.testing.assert_array_equal(s.inside, (D <= r_A[:, None]).any(0))
    np.testing.assert_allclose(s.nearest_dist, D.min(1), rtol=1e-12, atol=1e-12)


def test_infinite_and_nan_radii():
    """An infinite (or huge) radius holds every point, a NaN one none (as ``<=`` says), at any chunk."""
    rng = np.random.default_rng(8)
    A, B = rng.normal(size=(40, 3)).astype(np.float32), rng.normal(size=(30, 3)).astype(np.float32)
    r_B = kth_neighbour_radius(B, 2)
    r_B[[0, 5]] = np.inf
    r_B[7] = np.nan
    r_B[9] = 1e30  # finite, but its square overflows float32
    r_A = kth_neighbour_radius(A, 2)
    r_A[3] = np.inf
    r_A[9] = np.nan
    D = _brute(A, B)
    for chunk in (16, 4096):
        s = ball_stats(A, B, r_B, radii_A=r_A, chunk=chunk)
        np.testing.assert_array_equal(s.count, (D <= r_B[None]).sum(1))
        np.testing.assert_array_equal(s.covered, (D <= r_B[None]).any(0))
        np.testing.assert_array_equal(s.inside, (D <= r_A[:, None]).any(0))


@pytest.mark.parametrize("shape", [(5, 17), (64, 1000), (7, 33), (3, 3), (10, 2048), (4, 40)])
def test_two_smallest_per_row(shape):
    """Smallest, its column and second smallest of each row, with ties (half-integer values)."""
    rng = np.random.default_rng(shape[1])
    for D in (torch.from_numpy(rng.normal(size=shape).astype(np.float32)),
              torch.from_numpy((np.round(rng.normal(size=shape) * 2) / 2).astype(np.float32))):
        v, a, v2 = _two_smallest(D.clone())
        s = torch.sort(D, 1).values
        assert torch.equal(v, s[:, 0]) and torch.equal(v2, s[:, 1])
        assert torch.equal(D[torch.arange(len(D)), a], v)


def test_ball_boundary_counts_as_inside():
    A = np.array([[0.0, 0.0], [3.0, 0.0]], dtype=np.float32)
    B = np.array([[0.0, 4.0], [1.0, 1.0]], dtype=np.float32)
    s = ball_stats(A, B, np.array([4.0, np.sqrt(2.0)]), radii_A=np.array([1.0, 1.0]))
    np.testing.assert_array_equal(s.count, [2, 0])  # (0,0) lies on both balls' boundaries
    np.testing.assert_array_equal(s.covered, [True, True])
    np.testing.assert_array_equal(s.inside, [False, False])


def _prdc_reference(real, fake, k):
    """The published formulas (prdc 0.2), on a whole float64 distance matrix, with ``<=``."""
    D = _brute(real, fake)  # (n_real, n_fake)
    r_real, r_fake = _kth_brute(real, k), _kth_brute(fake, k)
    in_real = D <= r_real[:, None]
    return {"precision": in_real.any(0).mean(), "recall": (D <= r_fake[None]).any(1).mean(),
            "density": in_real.sum(0).mean() / k, "coverage": (D.min(1) <= r_real).mean()}


def test_prdc_matches_the_reference_and_the_separate_metrics(clouds):
    A, B = clouds
    expected = _prdc_reference(A, B, 5)
    got = prdc(A, B, k=5)
    assert list(got) == ["precision", "recall", "density", "coverage"]
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12)
    assert precision_recall(A, B) == {k: got[k] for k in ("precision", "recall")}
    assert density_coverage(A, B) == {k: got[k] for k in ("density", "coverage")}
    assert {k: embedding_metrics(A, B)[k] for k in got} == got
    for chunk in (7, 64):
        assert prdc(A, B, chunk=chunk) == got


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_mean_pairwise_distance_equals_direct_differences(scale):
    rng = np.random.default_rng(3)
    X = (scale * rng.normal(size=(700, 40))).astype(np.float32)
    X[5] = X[4]  # a duplicate pair: distance 0, not a square root of a rounding error
    D = _brute(X, X)
    expected = D.sum() / (len(X) * (len(X) - 1))
    assert mean_pairwise_distance(X, chunk=256) == pytest.approx(expected, rel=1e-9)
    assert mean_pairwise_distance(X[:1]) == 0.0
