import numpy as np
import pytest
import torch

from imagina.core.errors import InvalidInputError
from imagina.image.diffaugment import DiffAugment
from imagina.image.embed import TorchvisionEmbedder, default_image_embedder
from imagina.image.model import ConditionalDCGAN, DCGANConfig
from imagina.image.sanity import image_sanity


def test_config_errors():
    with pytest.raises(ValueError, match="image_size"):
        DCGANConfig(image_size=24)
    with pytest.raises(InvalidInputError, match="diffaugment"):
        DCGANConfig(diffaugment="color,blur")
    with pytest.raises(InvalidInputError, match="`loss` must be one of"):
        DCGANConfig(loss="l2")


def test_sample_shapes_and_sizes(images):
    X, y = images
    gan = ConditionalDCGAN(DCGANConfig(steps=2, batch_size=8, base_channels=4), device="cpu").fit(X, y, progress=False)
    out, labels = gan.sample(7)
    assert out.shape == (7, *X.shape[1:]) and out.dtype == np.uint8  # drop-in: the input's size, not the model's
    assert gan.sample(0)[0].shape == (0, *X.shape[1:])  # an empty draw has the same shape
    with pytest.raises(InvalidInputError, match="not a class"):
        gan.sample(2, labels=9)
    with pytest.raises(InvalidInputError, match="one label per sample"):
        gan.sample(3, labels=[0, 1])


def test_rgb_and_32px(images):
    X, y = images
    rgb = np.repeat(X, 3, axis=-1)
    gan = ConditionalDCGAN(DCGANConfig(steps=1, batch_size=4, base_channels=4, image_size=32), device="cpu").fit(rgb, y, progress=False)
    out, _ = gan.sample(2)
    assert out.shape == (2, *rgb.shape[1:3], 3)
    assert gan.transform_.transform(out).shape == (2, 3, 32, 32)  # the model works at 32 × 32


def test_diffaugment_shapes_and_determinism():
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    aug = DiffAugment("color,translation,cutout")
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)
    cut = DiffAugment("cutout")(torch.ones(4, 1, 16, 16), torch.Generator().manual_seed(1))
    blanked = (cut == -1).flatten(1).sum(1)
    assert ((blanked > 0) & (blanked <= 64)).all()  # a half-size square (8×8), possibly cut by the border


def test_default_embedder_batch_size_independent(images):
    X, y = images
    emb = default_image_embedder(seed=0, device="cpu", steps=5).fit(X, y)
    a = emb.embed(X, batch_size=4)
    b = emb.embed(X, batch_size=64)
    assert a.shape == (len(X), 64) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_torchvision_embedder_from_local_weights(tmp_path, images):
    import torchvision

    X, _ = images
    model = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    torch.save(model.state_dict(), tmp_path / "w.pth")
    emb = TorchvisionEmbedder(f"mobilenet_v3_small:{tmp_path / 'w.pth'}", input_size=32)
    out = emb.embed(X[:5])
    assert out.shape == (5, 576) and out.dtype == np.float32
    with pytest.raises(InvalidInputError, match="do not exist"):
        TorchvisionEmbedder(f"resnet18:{tmp_path / 'nope.pth'}")
    with pytest.raises(InvalidInputError, match="do not fit resnet18"):
        TorchvisionEmbedder(f"resnet18:{tmp_path / 'w.pth'}")
    with pytest.raises(InvalidInputError, match="<torchvision architecture>:<weights file>"):
        TorchvisionEmbedder("resnet18")


def test_sanity_flags_blank_images(images):
    X, _ = images
    X = X.copy()
    X[0] = 0
    result = image_sanity(X)
    assert result.reasons[0].startswith("insane: blank")
    assert result.reasons[1] is None


def test_auxiliary_classifier_learns_the_labels():
    from imagina.core.gan import ConditionalGANTask, GANNetConfig
    from imagina.core.training import Trainer, TrainerConfig

    rng = np.random.default_rng(0)
    x = torch.full((64, 1, 16, 16), -1.0)
    y = torch.as_tensor(np.repeat([0, 1], 32))
    x[y == 0, :, :8] = 1.0                                   # class 0: bright top half
    x[y == 1, :, 8:] = 1.0                                   # class 1: bright bottom half
    x += torch.as_tensor(rng.normal(scale=0.1, size=x.shape), dtype=torch.float32)
    cfg = GANNetConfig(image_size=16, channels=1, base_channels=8, aux_weight=1.0, lr_d=1e-3)
    task = ConditionalGANTask(cfg, 2)
    history = Trainer(TrainerConfig(steps=60, batch_size=16, seed=0, device="cpu"), progress=False).fit(task, (x, y))
    assert "aux_g" in history[-1]
    with torch.no_grad():
        _, logits = task.D(x, y)
    assert (logits.argmax(1) == y).float().mean() > 0.9
    assert ConditionalGANTask(GANNetConfig(image_size=16, base_channels=8), 2).D.classify is None


def test_discriminator_scores_real_and_fake_as_one_batch():
    """The D update scores real and fake as one batch of 2B: the same scores as two calls (D has no
    batch statistics), and D's weights are trainable again after the G update froze them."""
    from imagina.core.gan import ConditionalGANTask, GANNetConfig
    from imagina.core.training import Trainer, TrainerConfig

    task = ConditionalGANTask(GANNetConfig(image_size=16, channels=1, base_channels=8), 2)
    x, y = torch.rand(8, 1, 16, 16) * 2 - 1, torch.arange(8) % 2
    Trainer(TrainerConfig(steps=2, batch_size=4, device="cpu"), progress=False).fit(task, (x, y))
    assert all(p.requires_grad for p in task.D.parameters())
    task.D.eval()  # spectral norm's power iteration runs in training mode only
    with torch.no_grad():
        both = task.D(x, y)[0]
        torch.testing.assert_close(both, torch.cat([task.D(x[:4], y[:4])[0], task.D(x[4:], y[4:])[0]]))


def _halves(n_per_class: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 16×16 images: class 0 bright in the top half, class 1 in the bottom half, with noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_per_class)
    X = np.zeros((len(y), 16, 16, 1))
    X[y == 0, :8] = 200
    X[y == 1, 8:] = 200
    X += rng.normal(scale=20, size=X.shape)
    return np.clip(X, 0, 255).astype(np.uint8), y


def test_imagination_around_real_items_keeps_labels_and_round_trips(tmp_path):
    X, y = _halves()
    cfg = DCGANConfig(steps=120, batch_size=16, base_channels=8, reconstruction=10.0, diffaugment="")
    gan = ConditionalDCGAN(cfg, device="cpu").fit(X, y, progress=False)
    assert gan.config.n_anchors == len(X) and "reconstruction" in gan.history_[-1]
    assert gan.history_[-1]["reconstruction"] < gan.history_[0]["reconstruction"]
    out, labels = gan.sample(40, labels=np.repeat([0, 1], 20), seed=3)
    top, bottom = out[:, :8].mean(axis=(1, 2, 3)), out[:, 8:].mean(axis=(1, 2, 3))
    assert ((top > bottom) == (labels == 0)).mean() >= 0.9      # samples keep their class's layout
    assert len({o.tobytes() for o in out}) == len(out)           # and are not all the same image
    gan.save(tmp_path / "m")
    again = ConditionalDCGAN.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(again.sample(40, labels=np.repeat([0, 1], 20), seed=3)[0], out)


def test_resize_round_trip_is_exact_on_digits():
    from imagina.image.data import load_digits
    from imagina.image.preprocess import ImagePreprocessor

    X = load_digits().X[:50]                                   # 8×8, modelled at 16×16
    pre = ImagePreprocessor(16).fit(X)
    Z = pre.transform(X)
    assert Z.shape == (50, 1, 16, 16)
    np.testing.assert_array_equal(pre.inverse_transform(Z), X)


def test_steps_scale_with_the_data_and_explicit_steps_are_kept(images):
    cfg = DCGANConfig()
    assert [cfg.scaled_steps(n) for n in (10, 100, 150, 200, 5000)] == [1000, 1000, 1500, 2000, 2000]
    assert DCGANConfig(steps=300, steps_per_item=None).scaled_steps(10) == 300
    X, y = images
    gan = ConditionalDCGAN(DCGANConfig(steps=40, steps_per_item=1.0, batch_size=4, base_channels=4), device="cpu")
    gan.fit(X[:24], y[:24], progress=False)
    assert gan.config.steps == 24 and gan.config.steps_per_item is None  # the saved config says what was trained
    from imagina.image.modality import MODALITY

    assert MODALITY.make_generator(steps=7, seed=0, device="cpu").config.scaled_steps(1) == 7  # --steps as asked


def test_cpu_bf16_training_is_repeatable(images):
    """bf16 autocast (used where the CPU has it natively) keeps a seeded fit bit-repeatable."""
    X, y = images
    cfg = DCGANConfig(steps=3, batch_size=8, base_channels=4, cpu_bf16=True)
    a, b = (ConditionalDCGAN(cfg, device="cpu").fit(X, y, progress=False) for _ in range(2))
    assert all(torch.equal(v, b.generator_.state_dict()[k]) for k, v in a.generator_.state_dict().items())
    assert np.array_equal(a.sample(5, seed=1)[0], b.sample(5, seed=1)[0])


@pytest.mark.parametrize("size", [16, 32])
def test_transposed_output_layer_makes_the_image_without_a_full_size_hidden_layer(images, size):
    """``output_layer="transposed"``: the last upsampling block outputs the image; no 3×3 conv and no
    normalised hidden layer at full resolution, so G is smaller and samples keep their shape."""
    from imagina.core.gan import ConditionalGenerator, GANNetConfig

    kw = dict(image_size=size, channels=3, base_channels=8)
    conv = ConditionalGenerator(GANNetConfig(**kw), 4)
    transposed = ConditionalGenerator(GANNetConfig(**kw, output_layer="transposed"), 4)
    z, y = torch.randn(5, 128), torch.tensor([0, 1, 2, 3, 0])
    assert conv(z, y).shape == transposed(z, y).shape == (5, 3, size, size)
    assert transposed.to_out is None and len(transposed.norms) == len(transposed.ups) - 1
    assert sum(p.numel() for p in transposed.parameters()) < sum(p.numel() for p in conv.parameters())
    out = transposed(z, y)
    assert out.abs().max() <= 1 and out.std() > 0  # tanh output, not a constant
    with pytest.raises(InvalidInputError, match="output_layer"):
        GANNetConfig(output_layer="dense")


def test_a_model_saved_before_output_layer_existed_loads_as_conv(tmp_path, images):
    """A config.json without ``output_layer`` (models saved by earlier versions) means the conv layout."""
    import json

    X, y = images
    gan = ConditionalDCGAN(DCGANConfig(steps=2, batch_size=8, base_channels=4, output_layer="conv"), device="cpu")
    gan.fit(X, y, progress=False).save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    saved = json.loads(cfg_path.read_text())
    del saved["config"]["output_layer"]
    cfg_path.write_text(json.dumps(saved))
    again = ConditionalDCGAN.load(tmp_path / "m", device="cpu")
    assert again.config.output_layer == "conv"
    np.testing.assert_array_equal(again.sample(6, seed=2)[0], gan.sample(6, seed=2)[0])


def test_translation_shifts_each_image_and_fills_with_the_background():
    """Each image moves by its own offset (at most 1/8 of the size); vacated pixels are -1."""
    from imagina.image.diffaugment import translation

    x = torch.rand(6, 2, 16, 16) * 2 - 1
    out = translation(x, torch.Generator().manual_seed(4))
    for img, moved in zip(x, out):  # find the offset that explains the output, per image
        found = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = torch.full_like(img, -1.0)
                ys, xs = slice(max(0, -dy), 16 - max(0, dy)), slice(max(0, -dx), 16 - max(0, dx))
                ref[:, ys, xs] = img[:, max(0, dy) : 16 - max(0, -dy), max(0, dx) : 16 - max(0, -dx)]
                found.append(torch.equal(ref, moved))
        assert sum(found) == 1
    assert len({tuple(o.flatten()[:40].tolist()) for o in out}) > 1


def _damage(directory, how):
    import json

    cfg = directory / "config.json"
    saved = json.loads(cfg.read_text())
    if how == "edited size":
        saved["config"]["base_channels"] *= 2
    elif how == "fewer classes":
        saved["classes"] = saved["classes"][:-1]
    elif how == "no preprocessor":
        (directory / "preprocessor.json").unlink()
    elif how == "truncated weights":
        (directory / "model.safetensors").write_bytes((directory / "model.safetensors").read_bytes()[:20])
    elif how == "a list":
        saved = [saved]
    elif how == "no config":
        del saved["config"]
    cfg.write_text(json.dumps(saved))


@pytest.mark.parametrize("how", ["edited size", "fewer classes", "no preprocessor", "truncated weights", "a list",
                                 "no config"])
def test_a_damaged_model_directory_is_a_one_line_error(tmp_path, images, how):
    """A hand-edited or damaged model folder fails in torch, safetensors or json; the user gets one line."""
    from imagina.core.generator import load_model

    X, y = images
    ConditionalDCGAN(DCGANConfig(steps=2, batch_size=8, base_channels=4), device="cpu").fit(X, y, progress=False) \
        .save(tmp_path / "m")
    _damage(tmp_path / "m", how)
    with pytest.raises(InvalidInputError, match=r"damaged|config\.json") as info:
        load_model(tmp_path / "m", device="cpu")
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match="is a file"):
        ConditionalDCGAN(DCGANConfig(steps=2, batch_size=8, base_channels=4), device="cpu").fit(X, y, progress=False) \
            .save(tmp_path / "m" / "config.json")
