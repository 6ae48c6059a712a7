"""Embedders, the reference classifier, export, the modality and a tiny end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_factories import SR, make_tones, write_dataset

from imagina.audio import MODALITY, AudioEvalTask, TransformersAudioEmbedder, default_audio_embedder
from imagina.audio.export import spectrogram_grid, write_wavs
from imagina.core.errors import InvalidInputError
from imagina.core.modality import get_modality


def test_default_embedder_shape_and_batch_independence():
    X, y = make_tones(4)
    emb = default_audio_embedder(steps=3, device="cpu").fit(X, y)
    a = emb.embed(X, batch_size=3)
    b = emb.embed(X, batch_size=256)
    assert a.shape == (8, 64) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    path = tmp_path_factory.mktemp("w2v")
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, vocab_size=8)
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return path


def test_transformers_embedder(tiny_wav2vec2, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    X, _ = make_tones(2)
    emb = TransformersAudioEmbedder(tiny_wav2vec2, sample_rate=SR)
    a = emb.embed(X, batch_size=3)
    b = emb.embed(X, batch_size=16)
    assert a.shape == (4, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert not np.allclose(a[0], a[2])
    assert isinstance(MODALITY.make_embedder(seed=0, device="cpu", pretrained=str(tiny_wav2vec2)), TransformersAudioEmbedder)


def test_transformers_embedder_bad_path(tmp_path):
    with pytest.raises(InvalidInputError, match="not a local model directory"):
        TransformersAudioEmbedder(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(InvalidInputError, match="cannot be loaded by transformers"):
        TransformersAudioEmbedder(tmp_path / "junk")


def test_eval_task_classifier_and_candidates():
    task = AudioEvalTask(SR)
    X, y = make_tones(2)
    x = task.prepare(X)
    assert x.dtype == torch.float32 and x.shape == (4, 2048)
    model = task.make_classifier(3)
    assert model(x).shape == (4, 3)
    augs = task.augmentations(x, y)
    assert len(augs) >= 5 and any("shift" in k for k in augs) and any("SpecAugment" in k for k in augs)
    with pytest.raises(InvalidInputError, match="waveforms of shape"):
        task.prepare(X[0])


def test_eval_task_options_and_log_mel_floor():
    from imagina.audio.evaluate import LogMel

    task = AudioEvalTask(SR, width=8, top_db=60.0, instance_norm=True, steps=7)
    assert task.steps == 7 and "top 60 dB" in task.describe() and "per-clip norm" in task.describe()
    x = task.prepare(make_tones(2)[0])
    assert task.make_classifier(3)(x).shape == (4, 3)
    loud = torch.zeros(1, 2048)
    loud[0, :1024] = torch.sin(torch.arange(1024) * 0.3)
    out = LogMel(SR, top_db=60.0)(loud)
    # nothing lies more than 60 dB below the clip's own peak (the silent half is lifted to the floor)
    assert float(out.max() - out.min()) == pytest.approx(60.0 * np.log(10.0) / 10.0, rel=1e-4)
    assert float((LogMel(SR)(loud)).min()) == pytest.approx(np.log(1e-6), rel=1e-3)
    with pytest.raises(InvalidInputError, match="width"):
        AudioEvalTask(SR, width=0)


def test_write_wavs_and_preview(tmp_path):
    import soundfile as sf

    X, y = make_tones(2)
    y = np.array(["a/b", "a/b", "ok", "ok"])
    paths = write_wavs(tmp_path, X, y, [f"s{i}" for i in range(4)], sample_rate=SR)
    assert paths[0] == "a_b/s0.wav" and paths[2] == "ok/s2.wav"
    info = sf.info(str(tmp_path / paths[0]))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", 2048)
    back, _ = sf.read(str(tmp_path / paths[1]), dtype="float32")
    np.testing.assert_allclose(back, X[1], atol=1e-4)
    spectrogram_grid(tmp_path / "grid.png", X, y, sample_rate=SR, title="t")
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_modality_registry_and_load(tmp_path):
    assert get_modality("audio") is MODALITY and MODALITY.name == "audio"
    write_dataset(tmp_path, layout="folders", sr=16000)
    data = MODALITY.load(str(tmp_path), sample_rate=16000, n_samples=4096)
    assert data.X.shape == (6, 4096) and data.meta["sample_rate"] == 16000
    gen = MODALITY.make_generator(steps=2, seed=0, device="cpu", meta=data.meta)
    assert gen.config.sample_rate == 16000 and gen.config.steps == 2
    assert MODALITY.evaluation_task(meta=data.meta).sample_rate == 16000
    # the modality keeps no state from a load: without meta the defaults apply
    assert MODALITY.make_generator(steps=2, seed=0, device="cpu").config.sample_rate == 8000


def test_augment_end_to_end(tmp_path, monkeypatch):
    """Load -> SpecGAN (2 steps) -> embed -> sanity -> screen -> export, with the core pipeline."""
    from imagina.core.pipeline import AugmentConfig, Augmenter

    monkeypatch.setattr(MODALITY, "embedder_steps", 5)
    write_dataset(tmp_path / "data", layout="folders", n_per_class=4)
    data = MODALITY.load(str(tmp_path / "data"), n_samples=2048)
    options = {"n_fft": 64, "base_channels": 8, "latent_dim": 16, "label_dim": 4, "batch_size": 4, "griffin_lim_iters": 4}
    aug = Augmenter(MODALITY, AugmentConfig(per_class=3, oversample=2.0, steps=2, device="cpu", top_up_rounds=0),
                    generator_options=options, progress=False)
    result = aug.fit(data).augment()
    assert len(result.labels) == 12 and result.candidates.shape == (12, 2048)
    assert {"rms_db", "spectral_flatness"} <= set(result.screen.scores)
    out = result.export(tmp_path / "out")
    assert (out / "manifest.csv").exists() and (out / "model" / "config.json").exists()
    assert (out / "figures" / "real.png").exists()
    wavs = list((out / "samples").rglob("*.wav"))
    assert len(wavs) == int(result.keep.sum())


def test_cli_augment_generate_and_errors(tmp_path, monkeypatch, capsys):
    from imagina.core.cli import main

    monkeypatch.setattr(MODALITY, "embedder_steps", 5)
    write_dataset(tmp_path / "data", layout="flat", n_per_class=4, sr=16000)
    common = ["--sample-rate", "16000", "--n-samples", "4096", "--device", "cpu", "--quiet"]
    rc = main(["augment", "audio", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--steps", "2",
               "--per-class", "2", "--oversample", "1", "--pattern", "{label}_{speaker}_{index}", *common])
    assert rc == 0 and (tmp_path / "out" / "model" / "config.json").exists()
    MODALITY.load(str(tmp_path / "data"), n_samples=2048)  # another load at 8 kHz must not change the model's rate
    rc = main(["generate", str(tmp_path / "out" / "model"), "--n", "2", "--out", str(tmp_path / "gen"), "--device", "cpu", "--quiet"])
    wavs = list((tmp_path / "gen" / "samples").rglob("*.wav"))
    assert rc == 0 and len(wavs) == 4
    # drop-in: the originals' rate and 0.3 s length (the saved model's source_format), not the 4,096-sample view
    assert {(sf.info(str(p)).samplerate, sf.info(str(p)).frames) for p in wavs} == {(16000, 4800)}
    capsys.readouterr()
    rc = main(["augment", "audio", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o2"),
               "--pattern", "{label}-{speaker}", *common])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "matches the pattern" in err
    assert not (tmp_path / "o2").exists()
