"""The contracts, the same for every registered modality (tiny data, a handful of steps): the
generator's, one home per default (API = CLI), the embedder's and the screen's. A fourth modality
registered in :mod:`imagina.core.registry` needs a case here or the suite fails."""

from __future__ import annotations

import numpy as np
import pytest
from image_factories import make_images

from imagina.core.errors import NotFittedError
from imagina.core.generator import load_model


def image_case():
    from imagina.image.model import ConditionalDCGAN, DCGANConfig

    X, y = make_images()
    return ConditionalDCGAN(DCGANConfig(steps=3, batch_size=8, base_channels=8, latent_dim=8, ema_decay=0.0, lr_g=0.02, lr_d=0.02), device="cpu"), X, y


def text_case():
    from text_factories import TINY_VAE, make_texts

    from imagina.text.model import ConditionalSeqVAE, SeqVAEConfig

    X, y = make_texts()
    return ConditionalSeqVAE(SeqVAEConfig(**TINY_VAE), device="cpu"), X, y


def audio_case():
    from audio_factories import make_tones

    from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig

    X, y = make_tones(4)
    cfg = SpecGANConfig(steps=3, batch_size=4, base_channels=4, latent_dim=8, n_fft=64, griffin_lim_iters=2, ema_decay=0.0)
    return ConditionalSpecGAN(cfg, device="cpu"), X, y


CASES = {"image": image_case, "text": text_case, "audio": audio_case}


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return list(a) == list(b)


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]()


def test_fit_returns_self_and_does_not_modify_inputs(case):
    model, X, y = case
    X_before = X.copy() if isinstance(X, np.ndarray) else list(X)
    y_before = y.copy()
    assert model.fit(X, y, progress=False) is model
    assert _equal(X, X_before) and np.array_equal(y, y_before)
    assert model.history_ and "step" in model.history_[-1]


def test_sample_before_fit_raises(case):
    model, _, _ = case
    with pytest.raises(NotFittedError, match="not fitted"):
        model.sample(2)


def test_labels_length_and_seed(case):
    model, X, y = case
    model.fit(X, y, progress=False)
    label = np.unique(y)[1]
    Xs, ys = model.sample(5, labels=label, seed=3)
    assert len(Xs) == 5 and ys.tolist() == [label] * 5
    again, _ = model.sample(5, labels=label, seed=3)
    assert _equal(Xs, again)
    other, _ = model.sample(5, labels=label, seed=4)
    assert not _equal(Xs, other)
    _, cycled = model.sample(6)
    assert set(cycled.tolist()) == set(np.unique(y).tolist())


def test_save_load_sample_identical(case, tmp_path):
    model, X, y = case
    model.fit(X, y, progress=False)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu")
    assert type(loaded) is type(model)
    a, la = model.sample(4, seed=1)
    b, lb = loaded.sample(4, seed=1)
    assert _equal(a, b) and np.array_equal(la, lb)


def test_same_seed_same_model(case):
    model, X, y = case
    model.fit(X, y, progress=False)
    a, _ = model.sample(4, seed=0)
    twin = type(model)(model.config.__class__(**{**model.config.__dict__}), device="cpu")
    b, _ = twin.fit(X, y, progress=False).sample(4, seed=0)
    assert _equal(a, b)


# --------------------------------------------------------------------------- seeds live in the config
def test_seed_lives_in_the_config_and_sample_repeats_it(case, tmp_path):
    model, X, y = case
    assert model.config.seed == 0
    assert type(model)(model.config, device="cpu", seed=7).config.seed == 7   # ``seed=`` replaces config.seed
    model.fit(X, y, progress=False)
    a, la = model.sample(6)
    b, lb = model.sample(6)
    assert _equal(a, b) and np.array_equal(la, lb)                          # sample(seed=None) repeats
    assert _equal(a, model.sample(6, seed=model.config.seed)[0])            # ...with the config's seed
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.config.seed == model.config.seed
    assert _equal(loaded.sample(6)[0], a)


def test_diagnostics_are_named_floats(case):
    model, X, y = case
    model.fit(X, y, progress=False)
    diagnostics = model.diagnostics()
    assert isinstance(diagnostics, dict) and all(isinstance(v, float) for v in diagnostics.values())
    space = model.to_model_space(X)
    assert space is None or (len(space) == len(y) and space.dtype == np.float32)


# --------------------------------------------------------------------------- every registered modality
MODALITY_NAMES = ["image", "text", "audio"]


def test_the_registry_holds_these_modalities_and_their_generators():
    from imagina.core.registry import generator_class, generator_modality, modality_names

    assert sorted(modality_names()) == sorted(MODALITY_NAMES) == sorted(CASES)
    for name in MODALITY_NAMES:
        model, _, _ = CASES[name]()
        assert generator_modality(model.registry_name) == name and generator_class(model.registry_name) is type(model)


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_api_default_equals_cli_default(name):
    from imagina.core.cli import _augment_config, build_parser
    from imagina.core.modality import get_modality
    from imagina.core.pipeline import Augmenter

    modality = get_modality(name)
    parser = build_parser()
    args = parser.parse_args(["augment", name, "--data", "x", "--out", "y"])
    assert Augmenter(name, _augment_config(args)).config == Augmenter(name).config
    cli = modality.make_generator(steps=args.steps, seed=args.seed, device="cpu")
    assert cli.config == type(cli).config_class()                           # the config class holds every default
    assert modality.default_steps == type(cli).config_class().steps
    augment = parser._subparsers._group_actions[0].choices["augment"]
    text = " ".join(augment._subparsers._group_actions[0].choices[name].format_help().split())
    assert f"(default {modality.default_steps}{modality.steps_note})" in text


def _tiny_data(name):
    if name == "image":
        return make_images()
    if name == "text":
        from text_factories import make_texts

        return make_texts()
    from audio_factories import make_tones

    return make_tones(6)


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_embedding_does_not_depend_on_batch_size(name):
    from imagina.core.modality import get_modality

    X, y = _tiny_data(name)
    embedder = get_modality(name).make_embedder(seed=0, device="cpu", steps=2, progress=False)
    embedder.fit(X, y)
    a, b = embedder.embed(X, batch_size=3), embedder.embed(X, batch_size=256)
    assert a.dtype == np.float32 and a.shape[0] == len(y)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_probe_per_item_step_reads_each_item_alone(name):
    """The dose computes a probe's leading FunctionTransformer, or a text vectorizer's analysis, once per
    item (core.dose.per_item_prefix): exact only if the features of a subset are the subset of the
    features, and if the rest on those gives the probe's own features."""
    from imagina.core.dose import per_item_prefix
    from imagina.core.modality import get_modality, take

    modality = get_modality(name)
    X, y = _tiny_data(name)
    meta = {"sample_rate": 8000} if name == "audio" else None
    probes = modality.probe_features(meta)
    for family, features in (probes.items() if isinstance(probes, dict) else [("probe", probes)]):
        prefix, rest = per_item_prefix(features)
        if prefix is None:
            continue
        whole = prefix(X)
        idx = np.array([len(y) - 1, 0, 2])
        for part in (idx, idx[:1]):
            if isinstance(whole, np.ndarray):
                np.testing.assert_array_equal(prefix(take(X, part)), whole[part], err_msg=family)
            else:  # analysed texts: lists of n-grams
                assert prefix(take(X, part)) == take(whole, part), family
        # the rest on prefixed items gives the features themselves on the items
        from sklearn.base import clone

        a = clone(features).fit(take(X, idx), y[idx]).transform(X)
        b = clone(rest).fit(take(whole, idx), y[idx]).transform(whole)
        a, b = (m.toarray() if hasattr(m, "toarray") else np.asarray(m) for m in (a, b))
        np.testing.assert_array_equal(a, b, err_msg=family)


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_screen_does_not_depend_on_chunk_size(name):
    from dataclasses import replace

    from imagina.core.modality import get_modality
    from imagina.core.pipeline import AugmentConfig
    from imagina.core.screening import Screen

    modality = get_modality(name)
    X, y = _tiny_data(name)
    embedder = modality.make_embedder(seed=0, device="cpu", steps=2, progress=False)
    embedder.fit(X, y)
    emb = embedder.embed(X)
    cand = emb + np.random.default_rng(0).normal(scale=0.3 * emb.std(), size=emb.shape).astype(np.float32)
    screen = AugmentConfig().resolved(modality).screen
    a = Screen(replace(screen, chunk_size=16)).fit(emb, y).score(cand, y)
    b = Screen(replace(screen, chunk_size=4096)).fit(emb, y).score(cand, y)
    np.testing.assert_array_equal(a.keep, b.keep)
    for k in a.scores:
        np.testing.assert_allclose(a.scores[k], b.scores[k], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ the load contract
def _write_class_folders(name: str, root):
    """A source of class folders with 4 distinct items per class and one exact duplicate."""
    import shutil

    if name == "image":
        from PIL import Image

        X, y = make_images(n_per_class=4)
        for i, (img, label) in enumerate(zip(X, y)):
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[..., 0]).save(root / str(label) / f"{i}.png")
        first = next(root.glob("*/0.png"))
    elif name == "text":
        from text_factories import make_texts

        X, y = make_texts(per_class=4)
        for i, (text, label) in enumerate(zip(X, y)):
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            (root / str(label) / f"{i}.txt").write_text(f"{text} number {i}", encoding="utf-8")
        first = sorted(root.glob("*/*.txt"))[0]
    else:
        from audio_factories import write_dataset

        write_dataset(root, n_per_class=4)
        first = sorted(root.glob("*/*.wav"))[0]
    shutil.copy(first, first.with_name("copy_of_" + first.name))
    return root


@pytest.mark.parametrize("name", ["image", "text", "audio"])
def test_load_means_the_same_in_every_modality(name, tmp_path):
    from imagina.core.registry import get_modality

    modality = get_modality(name)
    src = str(_write_class_folders(name, tmp_path / "data"))
    clean = modality.load(src)
    raw = modality.load(src, clean=False)
    assert len(raw) == len(clean) + 1  # the duplicate: dropped by cleaning, kept without
    assert all(isinstance(v, str) for v in clean.y.tolist())  # labels are strings everywhere
    # per_class draws after cleaning, the same items for the same seed
    drawn = modality.load(src, per_class=2, seed=3)
    counts = {c: int((drawn.y == c).sum()) for c in np.unique(clean.y)}
    assert set(counts.values()) == {2}
    assert modality.load(src, per_class=2, seed=3).sources == drawn.sources
    # a source without splits is used whole whatever split asks
    assert len(modality.load(src, split="test")) == len(clean)


@pytest.mark.parametrize("name", ["image", "text", "audio"])
def test_a_class_of_one_is_dropped_with_its_reason_in_every_modality(name, tmp_path):
    """One class with a single item costs that class, not the run (images used to refuse the whole set)."""
    from imagina.core.registry import get_modality

    root = _write_class_folders(name, tmp_path / "data")
    lonely = root / "lonely"
    lonely.mkdir()
    if name == "image":
        from PIL import Image

        Image.fromarray(np.tri(12, 12, dtype=np.uint8) * 200).save(lonely / "one.png")
    elif name == "text":
        (lonely / "one.txt").write_text("a sentence unlike any other in this set", encoding="utf-8")
    else:
        from audio_factories import make_tones, write_wav

        write_wav(lonely / "one.wav", make_tones(1, (2500.0,), n_samples=2400)[0][0])
    modality = get_modality(name)
    data = modality.load(str(root))
    assert "lonely" not in set(data.y.tolist()) and len(set(data.y.tolist())) >= 2
    assert data.report.reasons()["singleton class"] == 1
    assert "lonely" in modality.load(str(root), clean=False).y.tolist()  # a test set keeps what it holds


@pytest.mark.parametrize("name", ["image", "audio"])
def test_a_stray_file_in_a_class_folder_is_named_in_the_report(name, tmp_path):
    from imagina.core.registry import get_modality

    root = _write_class_folders(name, tmp_path / "data")
    stray = next(p for p in root.iterdir() if p.is_dir()) / "notes.mp3"
    stray.write_text("not a sound")
    data = get_modality(name).load(str(root))
    reasons = {d.source: d.reason for d in data.report.dropped}
    hit = [r for src, r in reasons.items() if src and src.endswith("notes.mp3")]
    assert len(hit) == 1 and hit[0].startswith(f"not {'an image' if name == 'image' else 'audio'}: unsupported file type .mp3")


@pytest.mark.parametrize("name", ["image", "text", "audio"])
def test_classical_views_export_in_the_users_format(name, tmp_path):
    """Where the dose's reference held classical views, ``classical/`` holds them in the same format as
    the user's items: it loads back with the modality's own loader, one view per real item, labels intact."""
    from dataclasses import replace

    from imagina.core.cli import SMOKE_DOSE
    from imagina.core.dose import DoseConfig
    from imagina.core.pipeline import AugmentConfig, Augmenter
    from imagina.core.registry import get_modality

    modality = get_modality(name)
    data = modality.load(str(_write_class_folders(name, tmp_path / "data")))
    cfg = AugmentConfig(steps=2, per_class=4, embedder="own", dose=DoseConfig.from_options(SMOKE_DOSE))
    result = Augmenter(modality, cfg, progress=False).fit(data).augment()
    result.recommendation = replace(result.recommendation, classical_views=1)
    out = result.export(tmp_path / "out")
    back = modality.load(str(out / "classical"), clean=False)
    assert len(back) == len(data)
    assert sorted(back.y.tolist()) == sorted(np.asarray(data.y).tolist())
    if name == "image":  # images keep their size and mode
        assert np.shape(back.X)[1:] == np.shape(data.X)[1:]
    if name == "audio":  # clips their rate
        assert back.meta["sample_rate"] == data.meta["sample_rate"]


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_classical_views_take_the_same_three_strengths_in_every_modality(name):
    """"default" is the views without a strength; "mild" and "strong" change them; anything else is a
    one-line error naming the setting."""
    from imagina.core.errors import InvalidInputError
    from imagina.core.modality import CLASSICAL_STRENGTHS, get_modality

    modality = get_modality(name)
    X, _ = _tiny_data(name)
    meta = {"sample_rate": 8000} if name == "audio" else None
    plain = modality.classical_views(X, 2, seed=1, meta=meta)
    as_list = (lambda v: list(v)) if name == "text" else np.asarray
    for strength in CLASSICAL_STRENGTHS:
        views = modality.classical_views(X, 2, seed=1, meta=meta, strength=strength)
        assert len(views) == 2 * len(X)
        same = as_list(views) == as_list(plain) if name == "text" else np.array_equal(views, plain)
        assert same == (strength == "default"), strength
    with pytest.raises(InvalidInputError, match="strength"):
        modality.classical_views(X, 1, seed=1, meta=meta, strength="huge")


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_fewer_classical_views_are_the_first_of_more(name):
    """The first ``j`` views of a call for ``k > j`` are a call for ``j`` at the same seed and strength:
    the dose measures ``j`` views per item by slicing the views it made for its largest count, and
    ``classical/`` is made for ``j`` alone, so without this the exported views are not the measured ones."""
    from imagina.core.modality import CLASSICAL_STRENGTHS, classical_views_at, get_modality

    modality = get_modality(name)
    X, _ = _tiny_data(name)
    meta = {"sample_rate": 8000} if name == "audio" else None
    n = len(X)
    for strength in CLASSICAL_STRENGTHS:
        many = classical_views_at(modality, X, 4, seed=3, meta=meta, strength=strength)
        if many is None:  # the modality offers no views
            continue
        for j in (1, 2):
            few = classical_views_at(modality, X, j, seed=3, meta=meta, strength=strength)
            if name == "text":
                assert list(many[: j * n]) == list(few), (strength, j)
            else:
                np.testing.assert_array_equal(np.asarray(many)[: j * n], np.asarray(few), err_msg=f"{strength} {j}")
