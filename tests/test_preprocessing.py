import json

import numpy as np
import pytest

from imagina.core.errors import InvalidInputError, NotFittedError
from imagina.core.preprocessing import (
    CleaningReport,
    RangeScaler,
    ScalerChain,
    Standardizer,
    content_key,
    duplicate_of,
    encode_labels,
    nonfinite_mask,
    robust_outlier_mask,
)


def test_standardizer_per_axis_inverts_and_serialises():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(20, 5, 7)).astype(np.float32)
    s = Standardizer(axes=(0, 2)).fit(X)
    Z = s.transform(X)
    assert Z.shape == X.shape
    np.testing.assert_allclose(Z.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=(0, 2)), 1, atol=1e-4)
    back = Standardizer.from_state(json.loads(json.dumps(s.get_state())))
    np.testing.assert_allclose(back.inverse_transform(Z), X, rtol=1e-5, atol=1e-5)


def test_range_scaler_maps_and_inverts():
    X = np.array([[0.0, 127.5, 255.0]])
    s = RangeScaler(data_range=(0, 255)).fit(X)
    np.testing.assert_allclose(s.transform(X), [[-1, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X, atol=1e-4)
    fitted = RangeScaler((0, 1)).fit(np.array([2.0, 4.0]))
    np.testing.assert_allclose(fitted.transform(np.array([3.0])), [0.5])


def test_scaler_chain_state_roundtrip():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10, 4, 6))
    chain = ScalerChain([Standardizer(axes=(0, 2)), RangeScaler()]).fit(X)
    state = json.loads(json.dumps(chain.get_state()))
    again = ScalerChain.from_state(state)
    np.testing.assert_allclose(again.transform(X), chain.transform(X))
    np.testing.assert_allclose(again.inverse_transform(chain.transform(X)), X, atol=1e-4)


def test_unfitted_scaler_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        Standardizer().transform(np.zeros(3))


def test_cleaning_rules():
    X = np.zeros((4, 2), dtype=np.float32)
    X[1, 0] = np.nan
    X[3, 1] = np.inf
    assert nonfinite_mask(X).tolist() == [False, True, False, True]
    keys = [content_key(np.array([1, 2])), content_key(np.array([1, 3])), content_key(np.array([1, 2])), content_key("a")]
    assert duplicate_of(keys) == {2: 0}
    stats = np.concatenate([np.random.default_rng(0).normal(10, 1, 30), [100.0]])
    mask = robust_outlier_mask(stats)
    assert mask[-1] and mask[:-1].sum() == 0
    # groups smaller than min_group are left alone
    assert not robust_outlier_mask(stats[-5:], min_group=8).any()


def test_cleaning_report_counts_reasons():
    r = CleaningReport()
    r.drop(0, "duplicate: of 3", "a.png")
    r.drop(5, "duplicate: of 1")
    r.drop(7, "nan: bad")
    r.kept = 10
    assert r.reasons() == {"duplicate": 2, "nan": 1}
    assert "kept 10 items, dropped 3" in r.summary()
    assert r.to_dict()["items"][0]["source"] == "a.png"


def test_encode_labels_needs_two_classes():
    classes, idx = encode_labels(["b", "a", "b"])
    assert classes.tolist() == ["a", "b"] and idx.tolist() == [1, 0, 1]
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        encode_labels([1, 1, 1])
