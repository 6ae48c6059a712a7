import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from imagina.core.errors import InvalidInputError
from imagina.image import MODALITY
from imagina.image.data import MAX_PIXELS, load_images


def _folder(tmp_path, images, labels):
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = tmp_path / str(lab)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i}.png")
    return tmp_path


def test_digits_default():
    data = load_images("digits")
    assert data.X.shape == (1797, 8, 8, 1) and data.X.dtype == np.uint8
    assert sorted(set(data.y.tolist())) == [str(d) for d in range(10)]  # labels are strings everywhere
    assert data.meta["split"] is None  # digits has no splits: any split gives the whole set
    assert len(load_images("digits", split="test")) == 1797
    small = load_images("digits", per_class=5)
    assert len(small) == 50
    assert small.report.summary().startswith("using 50 of 1797 clean items (a draw per class)")


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
        (lambda p, X, y: zipfile.ZipFile(p, "w").close(), "needs arrays 'x' and 'y'; found none"),
        (lambda p, X, y: (np.savez(p, x=X, y=y), p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
         "not a readable .npz file"),
        (lambda p, X, y: np.savez(p, x=np.full(X.shape, np.nan, np.float32), y=y), "every image .* NaN"),
        (lambda p, X, y: np.savez(p, x=X[:0], y=y[:0]), "holds no images"),
        (lambda p, X, y: np.savez(p, x=X.astype(complex), y=y), "must hold numbers"),
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


def _png_declaring(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_folder_skips_oversized_images_and_bombs(tmp_path, images):
    X, y = images
    root = _folder(tmp_path, X[..., 0], y)
    (root / "0" / "huge.png").write_bytes(_png_declaring(100_000, 100_000))  # PIL's DecompressionBombError
    (root / "1" / "big.png").write_bytes(_png_declaring(8000, 8000))  # above MAX_PIXELS, below PIL's limit
    (root / "1" / "loop.png").symlink_to(root / "1" / "loop.png")
    data = load_images(str(root))
    reasons = {d.source: d.reason for d in data.report.dropped}
    assert reasons["0/huge.png"].startswith("too large") and reasons["1/big.png"].startswith("too large")
    assert reasons["1/loop.png"].startswith("unreadable")
    assert 8000 * 8000 > MAX_PIXELS


def test_only_bombs_is_one_error(tmp_path):
    for c in "ab":
        (tmp_path / c).mkdir()
        (tmp_path / c / "x.png").write_bytes(_png_declaring(100_000, 100_000))
    with pytest.raises(InvalidInputError, match=r"no readable images found \(kept 0 items, dropped 2 \(2 too large\)\)"):
        load_images(str(tmp_path))


def test_npz_labels_become_strings(tmp_path, images):
    X, y = images
    np.savez(tmp_path / "d.npz", x=X[..., 0], y=y)
    assert load_images(str(tmp_path / "d.npz")).y.dtype.kind == "U"
    np.savez(tmp_path / "b.npz", x=X[..., 0], y=np.array([b"cat", b"dog"])[y % 2])
    assert set(load_images(str(tmp_path / "b.npz")).y.tolist()) == {"cat", "dog"}


def test_npz_header_larger_than_its_data_is_refused(tmp_path, images):
    X, y = images
    path = tmp_path / "d.npz"
    np.savez(path, x=X, y=y)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["x.npy"] = members["x.npy"].replace(str(X.shape).encode(), str((10**6,) + X.shape[1:]).encode(), 1)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(InvalidInputError, match="truncated"):
        load_images(str(path))


def test_split_folder_is_a_split_not_two_classes(tmp_path, images):
    X, y = images
    _folder(tmp_path / "train", X[..., 0], y)
    few = np.flatnonzero(np.arange(len(y)) % 12 < 4)  # 4 of every class
    _folder(tmp_path / "test", X[few, ..., 0], y[few])
    train = MODALITY.load(str(tmp_path))
    assert train.meta["split"] == "train" and set(train.y.tolist()) == {str(c) for c in y}
    test = MODALITY.load(str(tmp_path), split="test", clean=False)
    assert test.meta["split"] == "test" and len(test) == len(few)
    with pytest.raises(InvalidInputError, match="has no 'val' split"):
        MODALITY.load(str(tmp_path), split="val")


def test_clean_false_keeps_duplicates_and_per_class_draws_after_cleaning(tmp_path, images):
    X, y = images
    X = np.concatenate([X, X[:3]])
    y = np.concatenate([y, y[:3]])
    np.savez(tmp_path / "d.npz", x=X, y=y)
    assert len(MODALITY.load(str(tmp_path / "d.npz"), clean=False)) == len(X)
    cleaned = MODALITY.load(str(tmp_path / "d.npz"))
    assert len(cleaned) == len(X) - 3
    drawn = MODALITY.load(str(tmp_path / "d.npz"), per_class=2, seed=1)
    assert drawn.report.used == len(drawn) and drawn.report.kept == len(X) - 3


def test_outliers_are_flagged_and_kept_unless_asked(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(100, 130, size=(20, 8, 8), dtype=np.uint8)  # two classes of mid-grey noise
    X[3] = np.where(np.arange(64).reshape(8, 8) % 2, 255, 0)      # one real but unusual image
    X[5] = 0                                                       # a broken (blank) one
    y = np.arange(20) % 2
    np.savez(tmp_path / "d.npz", x=X, y=y)
    data = load_images(str(tmp_path / "d.npz"))
    assert len(data) == 19 and [d.reason.split(":")[0] for d in data.report.dropped] == ["empty"]
    assert [d.index for d in data.report.flagged] == [3] and data.report.flagged[0].reason.startswith("outlier")
    assert "flagged 1" in data.report.summary() and data.report.to_dict()["flagged"][0]["index"] == 3
    strict = load_images(str(tmp_path / "d.npz"), drop_outliers=True)
    assert len(strict) == 18 and not strict.report.flagged
    assert sorted(strict.report.reasons()) == ["empty", "outlier"]


def test_candidates_and_test_images_take_the_real_images_channels():
    """`screen --candidates` and `evaluate --test` hold grey images where the real ones are RGB (or the
    reverse): they are converted before anything trains, not refused by a model after training."""
    from imagina.core.modality import LabeledData

    rng = np.random.default_rng(0)
    rgb = LabeledData(rng.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8), np.array(["a", "a", "b", "b"]))
    grey = LabeledData(rng.integers(0, 256, (2, 6, 6, 1), dtype=np.uint8), np.array(["a", "b"]))
    as_rgb = MODALITY.like(grey, rgb, "--candidates")
    assert as_rgb.X.shape == (2, 6, 6, 3) and (as_rgb.X == grey.X).all()
    as_grey = MODALITY.like(rgb, grey, "--test")
    pil = np.asarray(Image.fromarray(rgb.X[0]).convert("L"))
    assert as_grey.X.shape == (4, 6, 6, 1) and np.abs(as_grey.X[0, ..., 0].astype(int) - pil).max() <= 1
    assert MODALITY.like(rgb, rgb, "--test") is rgb
    four = LabeledData(np.zeros((1, 6, 6, 4), np.uint8), np.array(["a"]))
    with pytest.raises(InvalidInputError, match="--test: images have 4 channel"):
        MODALITY.like(four, rgb, "--test")


def test_deep_and_alpha_images_are_scaled_and_named(tmp_path, caplog):
    """16-bit grey is scaled to 8 bits (PIL's convert("L") clipped it to white); RGBA and palette files
    are read as RGB, and the run says which modes it converted."""
    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1000).astype(np.uint16)  # 0..63,000
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.fromarray(ramp + i * 7 + (c == "b") * 11).save(tmp_path / c / f"{i}.png")
    data = load_images(str(tmp_path))
    expected = np.clip(np.rint(ramp.astype(float) * 255 / 65535), 0, 255)
    assert np.abs(data.X[0, ..., 0].astype(int) - expected).max() <= 1 and data.X.max() > 200 and data.X.min() < 5
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = np.arange(64).reshape(8, 8) * 4, 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a" / "rgba.png")
    with caplog.at_level("WARNING"):
        data = load_images(str(tmp_path))
    assert data.X.shape[-1] == 3 and data.meta["converted_modes"] == {"I;16": 4, "RGBA": 1}
    assert "read 4 I;16 image(s), 1 RGBA image(s) as RGB" in caplog.text


@pytest.mark.parametrize("mode", ["RGBA", "I;16", "LA"])
def test_samples_are_written_in_the_users_file_mode(tmp_path, mode):
    """Drop-in: a folder of RGBA (or 16-bit, or grey + alpha) files gets RGBA (16-bit, LA) samples, from
    augment's export and from `generate` on its saved model alike."""
    from imagina.core.generator import load_model
    from imagina.image.export import write_pngs

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(3):
            grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            if mode == "RGBA":
                im = Image.fromarray(np.dstack([grey, grey[::-1], grey.T, np.full((8, 8), 255, np.uint8)]), "RGBA")
            elif mode == "LA":
                im = Image.fromarray(np.dstack([grey, np.full((8, 8), 255, np.uint8)]), "LA")
            else:
                im = Image.fromarray(grey.astype(np.uint16) * 257)
            im.save(tmp_path / "d" / c / f"{i}.png")
    data = load_images(str(tmp_path / "d"))
    assert data.meta["source_mode"] == mode
    paths = MODALITY.write_items(tmp_path / "out", data.X[:2], data.y[:2], ["x", "y"], meta=data.meta)
    written = Image.open(tmp_path / "out" / paths[0])
    assert written.mode == mode and written.size == (8, 8)
    back = np.asarray(written.convert("RGB") if mode == "RGBA" else written)
    if mode == "I;16":
        assert np.array_equal(back, data.X[0, ..., 0].astype(np.uint16) * 257)
    gen = MODALITY.make_generator(steps=2, seed=0, device="cpu", meta=data.meta, batch_size=4, base_channels=4)
    gen.fit(data.X, data.y, progress=False).save(tmp_path / "model")
    model = load_model(tmp_path / "model", device="cpu")
    X, y = model.sample(1, seed=0)
    paths = write_pngs(tmp_path / "gen", X, y, ["g0", "g1"], mode=model.data_meta().get("source_mode"))
    assert Image.open(tmp_path / "gen" / paths[0]).mode == mode
    # a folder of mixed modes keeps L / RGB (no one mode to write back)
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "d" / "a" / "plain.png")
    assert "source_mode" not in load_images(str(tmp_path / "d")).meta
