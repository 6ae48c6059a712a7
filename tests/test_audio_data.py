"""Loading and cleaning audio: labels from folders, patterns, manifests; every bad input handled."""

from __future__ import annotations

import numpy as np
import pytest
from audio_factories import SR, make_tones, write_dataset, write_wav

from imagina.audio.data import (
    AudioLoadConfig,
    AudioReadError,
    compile_pattern,
    fix_length,
    load_audio,
    read_audio,
)
from imagina.core.errors import InvalidInputError

CFG = AudioLoadConfig(n_samples=2048)


def test_compile_pattern_fields_and_literals():
    rx = compile_pattern("{label}_{speaker}_{index}")
    m = rx.match("7_george_12")
    assert m and m.group("label") == "7" and m.group("speaker") == "george" and m.group("index") == "12"
    assert rx.match("7-george-12") is None
    assert compile_pattern("rec.{label}").match("recX7") is None  # '.' is literal
    assert compile_pattern("{label}_*").match("yes_abc_d").group("label") == "yes"


@pytest.mark.parametrize("bad", ["{speaker}_{index}", "{label}_{label}", 3])
def test_compile_pattern_rejects(bad):
    with pytest.raises(InvalidInputError, match="pattern"):
        compile_pattern(bad)


def test_load_folders(tmp_path):
    write_dataset(tmp_path, layout="folders")
    d = load_audio(tmp_path, CFG)
    assert d.X.shape == (6, 2048) and d.X.dtype == np.float32
    assert sorted(set(d.y.tolist())) == ["c0", "c1"]
    assert d.meta["sample_rate"] == SR and d.meta["labels_from"] == "folder"
    assert np.abs(d.X).max() <= 0.9 + 1e-6
    assert len(d.sources) == 6 and d.report.kept == 6


def test_load_pattern_and_split(tmp_path):
    write_dataset(tmp_path, layout="flat", n_per_class=4)
    d = load_audio(tmp_path, CFG, pattern="{label}_{speaker}_{index}")
    assert len(d) == 8 and d.meta["labels_from"].startswith("pattern")
    # one clip per class: a test split is loaded uncleaned (cleaning drops a class of one)
    test = load_audio(tmp_path, CFG, pattern="{label}_{speaker}_{index}", split="test", test_indices=(0,), clean=False)
    train = load_audio(tmp_path, CFG, pattern="{label}_{speaker}_{index}", split="train", test_indices=(0,))
    assert len(test) == 2 and len(train) == 6
    assert not set(test.sources) & set(train.sources)
    sub = load_audio(tmp_path, CFG, pattern="{label}_{speaker}_{index}", per_class=2, seed=3)
    assert len(sub) == 4 and set(np.unique(sub.y, return_counts=True)[1]) == {2}


def test_a_split_rule_that_selects_nothing_says_so(tmp_path):
    """Files named with indices 0-2 all fall in FSDD's test split: 'train' is a one-line error that says
    why, not "no usable audio ... kept 0 items, dropped none"."""
    write_dataset(tmp_path, layout="flat", n_per_class=3)
    with pytest.raises(InvalidInputError, match=r"split 'train' by FSDD's rule .* selects none of the 6 labelled files"):
        load_audio(tmp_path, CFG, pattern="{label}_{speaker}_{index}", split="train")


def test_auto_pattern_on_flat_folder(tmp_path):
    write_dataset(tmp_path, layout="flat")
    d = load_audio(tmp_path, CFG)
    assert sorted(set(d.y.tolist())) == ["c0", "c1"]


def test_split_of_a_source_without_splits_is_the_whole_source(tmp_path):
    write_dataset(tmp_path, layout="folders")
    d = load_audio(tmp_path, CFG, split="test")
    assert len(d) == 6 and d.meta["split"] is None


def test_split_folders_are_splits_not_classes(tmp_path):
    write_dataset(tmp_path / "train", layout="folders")
    write_dataset(tmp_path / "test", layout="folders", n_per_class=2)
    train, test = load_audio(tmp_path, CFG), load_audio(tmp_path, CFG, split="test")
    assert sorted(set(train.y.tolist())) == ["c0", "c1"] and len(train) == 6 and train.meta["split"] == "train"
    assert len(test) == 4 and test.meta["split"] == "test"


def test_clean_false_keeps_silent_and_duplicate_clips(tmp_path):
    write_dataset(tmp_path, layout="folders")
    write_wav(tmp_path / "c0" / "silent.wav", np.zeros(2048, np.float32))
    (tmp_path / "c1" / "copy.wav").write_bytes(next((tmp_path / "c1").glob("*.wav")).read_bytes())
    assert len(load_audio(tmp_path, CFG)) == 6
    assert len(load_audio(tmp_path, CFG, clean=False)) == 8


def test_odd_rates_and_many_channels(tmp_path):
    import soundfile as sf

    write_dataset(tmp_path, layout="folders")
    t = np.arange(4410) / 44101
    write_wav(tmp_path / "c0" / "odd_rate.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr=44101)
    sf.write(tmp_path / "c1" / "wide.wav", np.full((100, 70), 0.1, np.float32), SR)
    d = load_audio(tmp_path, CFG)
    reasons = {x.source.split("/")[-1]: x.reason for x in d.report.dropped}
    assert "odd_rate.wav" not in reasons and reasons["wide.wav"].startswith("unsupported: 70 channels")


def test_pattern_matching_nothing_is_one_line_error(tmp_path):
    write_dataset(tmp_path, layout="flat")
    with pytest.raises(InvalidInputError) as err:
        load_audio(tmp_path, CFG, pattern="{label}-{speaker}-{index}")
    msg = str(err.value)
    assert "no file name" in msg and "matches the pattern" in msg and "\n" not in msg


def test_manifest(tmp_path):
    X, y = make_tones(2)
    rows = ["path,label"]
    for i, (w, lab) in enumerate(zip(X, y)):
        write_wav(tmp_path / "clips" / f"a{i}.wav", w)
        rows.append(f"clips/a{i}.wav,{lab}")
    rows.append("clips/missing.wav,c0")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    d = load_audio(tmp_path / "m.csv", CFG)
    assert len(d) == 4 and d.meta["labels_from"] == "manifest"
    assert [x.reason.split(":")[0] for x in d.report.dropped] == ["unreadable"]


def test_bad_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("file,class\na.wav,x\n")
    with pytest.raises(InvalidInputError, match="columns 'path' and 'label'"):
        load_audio(tmp_path / "m.csv", CFG)


def test_bad_files_are_dropped_with_reasons(tmp_path):
    write_dataset(tmp_path, layout="folders")
    bad = tmp_path / "c0"
    (bad / "empty.wav").write_bytes(b"")
    write_wav(bad / "zeros.wav", np.zeros(4000, np.float32))
    nan = np.full(4000, 0.1, np.float32)
    nan[100] = np.nan
    write_wav(bad / "nan.wav", nan, subtype="FLOAT")
    good = (bad / "c0_spk0_0.wav").read_bytes()
    (bad / "truncated.wav").write_bytes(good[:30])
    (bad / "text.wav").write_text("this is not audio at all\n")
    clipped = np.clip(np.sin(np.linspace(0, 300, 4000)) * 3, -1, 1).astype(np.float32)
    write_wav(bad / "clipped.wav", clipped)
    write_wav(bad / "quiet.wav", (np.random.default_rng(0).standard_normal(4000) * 1e-5).astype(np.float32))
    (bad / "notes.txt").write_text("not an audio extension: named, as image folders name theirs")
    d = load_audio(tmp_path, CFG)
    assert len(d) == 6
    reasons = {x.source.split("/")[-1]: x.reason for x in d.report.dropped}
    assert reasons["empty.wav"].startswith("zero-length")
    assert reasons["zeros.wav"].startswith("silent: all samples are zero")
    assert reasons["nan.wav"].startswith("non-finite")
    assert reasons["truncated.wav"].startswith("unreadable")
    assert reasons["text.wav"].startswith("not audio")
    assert reasons["clipped.wav"].startswith("clipped")
    assert reasons["quiet.wav"].startswith("silent: RMS")
    assert all("\n" not in r for r in reasons.values())
    assert reasons["notes.txt"].startswith("not audio: unsupported file type .txt")
    assert "zero-length" in d.report.summary()


def test_duplicates_dropped(tmp_path):
    write_dataset(tmp_path, layout="folders")
    (tmp_path / "c1" / "copy.wav").write_bytes((tmp_path / "c1" / "c1_spk1_0.wav").read_bytes())
    d = load_audio(tmp_path, CFG)
    assert len(d) == 6 and d.report.dropped[0].reason.startswith("duplicate")


def test_mixed_rates_and_channels_converted(tmp_path):
    X, _ = make_tones(1, n_samples=4800, sr=16000)
    write_wav(tmp_path / "a" / "a1.wav", X[0], 16000)
    stereo = np.stack([X[1], 0.5 * X[1]], axis=1)
    write_wav(tmp_path / "a" / "a2.wav", stereo, 16000)
    write_wav(tmp_path / "b" / "b1.wav", make_tones(1, sr=SR, n_samples=2400)[0][0], SR)
    write_wav(tmp_path / "b" / "b2.wav", make_tones(1, sr=22050, n_samples=6615, freqs=(500.0,), seed=1)[0][0], 22050)
    d = load_audio(tmp_path, CFG)
    assert d.X.shape == (4, 2048) and d.meta["resampled"] == 3 and d.meta["mixed_down"] == 1
    # the 1200 Hz tone recorded at 16 kHz keeps its pitch after resampling to 8 kHz
    spec = np.abs(np.fft.rfft(d.X[1]))
    assert abs(np.argmax(spec) * SR / 2048 - 1200) < 100


def test_ten_minute_file_is_read_partially_or_rejected(tmp_path):
    long = np.tile(make_tones(1, n_samples=SR)[0][0], 600)  # 10 minutes at 8 kHz
    path = write_wav(tmp_path / "long" / "long.wav", long)
    wave, sr, info = read_audio(path, max_seconds=2.0)
    assert len(wave) == 2 * SR and info["truncated"] and info["frames"] == 600 * SR
    with pytest.raises(AudioReadError, match=r"too long: 600.0 s > max_seconds 2"):
        read_audio(path, max_seconds=2.0, long_files="reject")
    write_wav(tmp_path / "short" / "s.wav", make_tones(1)[0][0])
    d = load_audio(tmp_path, AudioLoadConfig(n_samples=2048, max_seconds=2.0), clean=False)  # one clip per class
    assert len(d) == 2 and d.meta["truncated"] == 1
    with pytest.raises(InvalidInputError, match="only the class"):
        load_audio(tmp_path, AudioLoadConfig(n_samples=2048, max_seconds=2.0, long_files="reject"), clean=False)


def test_missing_or_empty_source(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_audio(tmp_path / "nope", CFG)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="no audio files"):
        load_audio(tmp_path, CFG)


def test_fix_length_and_config_validation():
    w = np.ones(10, np.float32)
    assert fix_length(w, 4).tolist() == [1, 1, 1, 1]
    assert fix_length(w, 14, "center").tolist() == [0, 0] + [1] * 10 + [0, 0]
    with pytest.raises(InvalidInputError, match="`n_samples` must be an int >= 64; got 3"):
        AudioLoadConfig(n_samples=3)
    with pytest.raises(InvalidInputError, match="`long_files` must be one of"):
        AudioLoadConfig(long_files="skip")
