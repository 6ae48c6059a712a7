import numpy as np
import pytest
from PIL import Image

from imagina.core.errors import InvalidInputError
from imagina.image.data import load_images


def _folder(tmp_path, images, labels):
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = tmp_path / str(lab)
        d.mkdir(exist_ok=True)
        Image.fromarray(img).save(d / f"{i}.png")
    return tmp_path


def test_digits_default():
    data = load_images("digits")
    assert data.X.shape == (1797, 8, 8, 1) and data.X.dtype == np.uint8
    assert sorted(set(data.y.tolist())) == list(range(10))
    small = load_images("digits", per_class=5)
    assert len(small) == 50


def test_folder_skips_bad_files_and_converts_modes(tmp_path, images):
    X, y = images
    root = _folder(tmp_path, X[..., 0], y)
    # a truncated PNG, a text file, an RGB image of another size, a duplicate
    good = (root / "0" / "0.png").read_bytes()
    (root / "0" / "broken.png").write_bytes(good[: len(good) // 2])
    (root / "1" / "notes.txt").write_text("not an image")
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(root / "2" / "rgb.png")
    (root / "1" / "copy.png").write_bytes((root / "1" / f"{int(np.flatnonzero(y == 1)[0])}.png").read_bytes())
    data = load_images(str(root))
    assert data.X.shape[1:] == (12, 12, 3)  # an RGB image makes everything RGB; sizes unified
    reasons = {d.source: d.reason for d in data.report.dropped}
    assert reasons["0/broken.png"].startswith("unreadable")
    assert reasons["1/notes.txt"].startswith("not an image")
    assert any(r.startswith("duplicate") for r in reasons.values())
    assert any(r.startswith("empty") for r in reasons.values())  # the constant RGB image
    assert len(data) == len(X)


def test_npz_nan_items_dropped(tmp_path, images):
    X, y = images
    Xf = X.astype(np.float32) / 255
    Xf[0, 0, 0] = np.nan
    np.savez(tmp_path / "d.npz", x=Xf, y=y)
    data = load_images(str(tmp_path / "d.npz"))
    assert len(data) == len(X) - 1
    assert data.report.dropped[0].reason.startswith("nan")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p, X, y: np.savez(p, x=X, y=-y - 1), "negative labels"),
        (lambda p, X, y: np.savez(p, x=X, y=y[:-1]), "one label per image"),
        (lambda p, X, y: np.savez(p, x=X, y=np.zeros_like(y)), "at least 2 classes"),
        (lambda p, X, y: np.savez(p, x=X), "needs arrays 'x' and 'y'"),
        (lambda p, X, y: p.write_bytes(b"garbage"), "not a readable .npz"),
        (lambda p, X, y: np.savez(p, x=X, y=y + 0.5), "integer or string labels"),
    ],
)
def test_npz_bad_input(tmp_path, images, make, match):
    X, y = images
    path = tmp_path / "d.npz"
    make(path, X, y)
    with pytest.raises(InvalidInputError, match=match) as err:
        load_images(str(path))
    assert "\n" not in str(err.value)


def test_path_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_images(str(tmp_path / "missing"))
    with pytest.raises(InvalidInputError, match="no class sub-folders"):
        load_images(str(tmp_path))
    (tmp_path / "a").mkdir()
    with pytest.raises(InvalidInputError, match="no readable images"):
        load_images(str(tmp_path))
