"""Synthetic clips are written like the user's own: rate, level, silence and duration per class."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from audio_factories import make_tones, write_wav

from imagina.audio import MODALITY
from imagina.audio.data import rms_db
from imagina.audio.export import write_wavs
from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig

RATE = 16000
LEAD, TONE, TRAIL = 0.2, 0.5, 0.1  # seconds: every original clip is 0.8 s long
LEVELS = {"low": (0.02, 0.05, 0.1), "high": (0.2, 0.4, 0.6)}  # tone amplitudes per class


def _clip(freq: float, amplitude: float) -> np.ndarray:
    t = np.arange(round(TONE * RATE)) / RATE
    tone = amplitude * np.sin(2 * np.pi * freq * t)
    return np.concatenate([np.zeros(round(LEAD * RATE)), tone, np.zeros(round(TRAIL * RATE))]).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two classes of 16 kHz clips at three levels each, with 0.2 s of leading silence; loaded at the
    default 8 kHz (the training view: trimmed, peak-normalised, 8,192 samples)."""
    root = tmp_path_factory.mktemp("corpus")
    originals: dict[str, list[np.ndarray]] = {}
    for label, freq in (("low", 440.0), ("high", 1000.0)):
        for i, amp in enumerate(LEVELS[label]):
            wave = _clip(freq * (1 + 0.02 * i), amp)
            write_wav(root / label / f"{label}_{i}.wav", wave, RATE)
            originals.setdefault(label, []).append(wave)
    return MODALITY.load(str(root)), originals


def _leading_silence(wave: np.ndarray, rate: int) -> float:
    return int(np.argmax(np.abs(wave) > 0.01 * np.abs(wave).max())) / rate


def test_loader_records_the_source_format(corpus):
    data, originals = corpus
    fmt = data.meta["source_format"]
    assert data.meta["sample_rate"] == 8000 and data.X.shape[1] == 8192  # the training view is unchanged
    assert fmt["sample_rate"] == RATE and fmt["subtype"] == "PCM_16" and sorted(fmt["per_class"]) == ["high", "low"]
    for label, waves in originals.items():
        cls = fmt["per_class"][label]
        assert cls["rms_dbfs"] == pytest.approx(float(np.median([rms_db(w) for w in waves])), abs=0.05)
        assert cls["duration_s"] == pytest.approx(LEAD + TONE + TRAIL)
        assert cls["lead_s"] == pytest.approx(LEAD, abs=0.035) and cls["trail_s"] == pytest.approx(TRAIL, abs=0.035)


def test_written_clips_match_the_users_clips(corpus, tmp_path):
    data, originals = corpus
    # the generator learns the training view, so the view itself stands in for generated clips
    paths = MODALITY.write_items(tmp_path, data.X, data.y, [f"s{i}" for i in range(len(data))], meta=data.meta)
    for rel, label in zip(paths, data.y.tolist()):
        wave, rate = sf.read(str(tmp_path / rel), dtype="float32")
        assert rate == RATE and sf.info(str(tmp_path / rel)).subtype == "PCM_16"
        target = float(np.median([rms_db(w) for w in originals[label]]))
        assert float(rms_db(wave)) == pytest.approx(target, abs=1.0)
        assert _leading_silence(wave, rate) == pytest.approx(LEAD, abs=0.02)
        assert len(wave) / rate == pytest.approx(LEAD + TONE + TRAIL, abs=0.04)
        assert np.abs(wave).max() <= 0.99


def test_meta_without_source_format_writes_the_view_as_before(corpus, tmp_path):
    data, _ = corpus
    old_meta = {k: v for k, v in data.meta.items() if k != "source_format"}
    stems = [f"s{i}" for i in range(len(data))]
    paths = MODALITY.write_items(tmp_path / "a", data.X, data.y, stems, meta=old_meta)
    write_wavs(tmp_path / "b", data.X, data.y, stems, sample_rate=8000)
    for rel in paths:
        info = sf.info(str(tmp_path / "a" / rel))
        assert (info.samplerate, info.frames, info.subtype) == (8000, 8192, "PCM_16")
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_a_label_outside_source_format_is_only_resampled(corpus, tmp_path):
    data, _ = corpus
    paths = write_wavs(tmp_path, data.X[:1], np.array(["other"]), ["s0"], sample_rate=8000,
                       source_format=data.meta["source_format"])
    wave, rate = sf.read(str(tmp_path / paths[0]), dtype="float32")
    assert rate == RATE and len(wave) == 2 * 8192
    assert float(np.abs(wave).max()) == pytest.approx(0.9, abs=0.03)


def test_saved_model_carries_the_source_format(corpus, tmp_path):
    data, _ = corpus
    X, y = make_tones(2)
    tiny = {"batch_size": 4, "n_fft": 64, "base_channels": 8, "latent_dim": 16, "label_dim": 4,
            "griffin_lim_iters": 2}
    gen = MODALITY.make_generator(steps=2, seed=0, device="cpu", meta=data.meta, **tiny)
    assert gen.data_meta()["source_format"] == data.meta["source_format"]
    gen.fit(X, y, progress=False).save(tmp_path / "m")
    assert (tmp_path / "m" / "source_format.json").is_file()
    loaded = ConditionalSpecGAN.load(tmp_path / "m", device="cpu")
    assert loaded.data_meta()["source_format"] == data.meta["source_format"]
    plain = ConditionalSpecGAN(SpecGANConfig(steps=2, **tiny), device="cpu").fit(X, y, progress=False)
    plain.save(tmp_path / "p")
    assert not (tmp_path / "p" / "source_format.json").exists()
    assert "source_format" not in ConditionalSpecGAN.load(tmp_path / "p", device="cpu").data_meta()
