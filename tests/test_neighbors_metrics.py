import numpy as np
import pytest
import torch

from imagina.core.metrics import density_coverage, frechet_distance, mean_pairwise_distance, precision_recall
from imagina.core.neighbors import count_within, knn, kth_neighbour_radius


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
        np.testing.assert_allclose(d, expected, rtol=1e-5, atol=1e-5)
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
