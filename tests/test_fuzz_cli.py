"""Broken inputs through the command line, per modality, with the smoke settings.

Every run must end with exit 0 (bad items skipped with a reason) or 2 (one-line error), print no
traceback, leave nothing half-written in ``--out`` and nothing outside it, and change no input.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from audio_factories import make_tones, write_wav
from PIL import Image
from text_factories import make_texts

from imagina.core.cli import main

SMOKE = ["--smoke", "--quiet", "--device", "cpu", "--per-class", "2", "--oversample", "1"]


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every path under ``root`` but ``skip`` (and its temporary siblings), with a digest of each file."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip and not d.startswith(f".{skip.name}.")]
        for name in dirnames + filenames:
            p = here / name
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "dir/link"
            out[os.fsdecode(p.relative_to(root))] = digest
    return out


def run(root: Path, *args: str, out: Path, capsys) -> int:
    """Run the CLI; check the exit code, stderr and the file system around ``out``."""
    before = _snapshot(root, out)
    out_before = _snapshot(out, out / "__none__") if out.exists() else None
    rc = main([*args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    assert "Traceback" not in err
    assert _snapshot(root, out) == before  # inputs unchanged, nothing written beside --out
    if rc == 0:
        assert (out / "report.md").is_file() and (out / "run.json").is_file() and (out / "manifest.csv").is_file()
    else:
        assert len(err.strip().splitlines()) == 1, err
        assert (_snapshot(out, out / "__none__") if out.exists() else None) == out_before
    return rc


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _broken_files(folder: Path, suffix: str, good: bytes) -> None:
    """Zero-byte, truncated and wrong-magic files and a symlink loop, all with ``suffix``."""
    (folder / f"zero{suffix}").write_bytes(b"")
    (folder / f"truncated{suffix}").write_bytes(good[: len(good) // 3])
    (folder / f"magic{suffix}").write_bytes(b"GIF89a" + good[6:])
    (folder / f"loop{suffix}").symlink_to(folder / f"loop{suffix}")


@pytest.fixture
def image_corpus(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label in ("zero", "un safe ü", "CON"):  # unsafe names become safe folder names on output
        d = root / "data" / label
        d.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(d / f"{i}.png")
    first = root / "data" / "zero"
    _broken_files(first, ".png", (first / "0.png").read_bytes())
    (first / "bomb.png").write_bytes(_png_declaring(100_000, 100_000))
    odd = root / "data" / os.fsdecode(b"bad\xffname")  # a label that is not UTF-8
    odd.mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(odd / f"{i}.png")
    X = rng.random((12, 8, 8)).astype(np.float32)
    np.savez(root / "nan.npz", x=np.full_like(X, np.nan), y=np.arange(12) % 2)
    np.savez(root / "inf.npz", x=np.where(X > 0.5, np.inf, X), y=np.arange(12) % 2)
    zipfile.ZipFile(root / "empty.npz", "w").close()
    np.savez(root / "ok.npz", x=X, y=np.arange(12) % 2)
    (root / "truncated.npz").write_bytes((root / "ok.npz").read_bytes()[:200])
    (root / "out_full").mkdir()
    (root / "out_full" / "keep.txt").write_text("mine")
    return root


def test_image_fuzz(image_corpus, capsys):
    root = image_corpus
    assert run(root, "augment", "image", "--data", str(root / "data"), *SMOKE, out=root / "out", capsys=capsys) == 0
    record = json.loads((root / "out" / "run.json").read_text())
    assert {"bad\ufffdname", "un safe ü", "CON", "zero"} == set(record["data"]["per_class"])
    reasons = record["data"]["cleaning"]["by_reason"]
    assert reasons["unreadable"] + reasons["too large"] == 5  # zero, truncated, wrong magic, link loop, bomb
    for bad in ("nan.npz", "empty.npz", "truncated.npz", "inf.npz"):
        assert run(root, "augment", "image", "--data", str(root / bad), *SMOKE, out=root / f"o_{bad}", capsys=capsys) == 2
    assert run(root, "augment", "image", "--data", str(root / "data"), *SMOKE, out=root / "out_full", capsys=capsys) == 2
    assert run(root, "evaluate", "image", "--data", "digits", "--test", "digits", *SMOKE, out=root / "ev", capsys=capsys) == 2
    assert run(root, "screen", "image", "--real", str(root / "data"), "--candidates", str(root / "ok.npz"), "--quiet",
               out=root / "sc", capsys=capsys) == 2  # classes 0/1 are not the real data's


@pytest.fixture
def text_corpus(tmp_path):
    root = tmp_path / "texts"
    root.mkdir()
    X, y = make_texts(8)
    lines = [json.dumps({"text": t, "label": c}) for t, c in zip(X, y)]
    lines += ["[" * 5000 + "]" * 5000, '{"text": "lone \\ud800 surrogate", "label": "HUM"}',
              '{"text": "x", "label": ' + "[" * 3000 + "]" * 3000 + "}", "\x00\x01 not json", '{"text": null, "label": 1e999}']
    (root / "mixed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "latin1.csv").write_bytes(("text,label\n" + "".join(f"caf\u00e9 {i},A\n" for i in range(20))).encode("latin-1"))
    (root / "utf16.csv").write_bytes("text,label\nhello there,A\nbye now,B\n".encode("utf-16"))
    (root / "zero.csv").write_bytes(b"")
    (root / "only_deep.jsonl").write_text("[" * 5000 + "]" * 5000 + "\n")
    folder = root / "folder"
    for c in ("A", "B"):
        (folder / c).mkdir(parents=True)
        (folder / c / "s.txt").write_text("".join(f"{c} sentence number {i}\n" for i in range(6)))
    (folder / "A" / "loop.txt").symlink_to(folder / "A" / "loop.txt")
    (folder / "B" / "bad.txt").write_bytes(b"\xff\xfe\x00bad bytes\n")
    return root


def test_text_fuzz(text_corpus, capsys):
    root = text_corpus
    assert run(root, "augment", "text", "--data", str(root / "mixed.jsonl"), *SMOKE, out=root / "out", capsys=capsys) == 0
    assert run(root, "augment", "text", "--data", str(root / "folder"), *SMOKE, out=root / "out2", capsys=capsys) == 0
    for bad in ("latin1.csv", "utf16.csv", "zero.csv", "only_deep.jsonl"):
        assert run(root, "augment", "text", "--data", str(root / bad), *SMOKE, out=root / f"o_{bad}", capsys=capsys) == 2


@pytest.fixture
def audio_corpus(tmp_path):
    root = tmp_path / "audio"
    X, y = make_tones(3, n_samples=2400, sr=8000)
    for i, (wave, label) in enumerate(zip(X, y)):  # mixed sample rates and channel counts
        write_wav(root / "data" / label / f"{i}.wav", np.stack([wave, wave], 1) if i % 2 else wave, (8000, 16000, 11025)[i % 3])
    first = root / "data" / y[0]
    good = next(first.glob("*.wav")).read_bytes()
    _broken_files(first, ".wav", good)
    write_wav(first / "nan.wav", np.full(2400, np.nan, np.float32), 8000, subtype="FLOAT")
    header = bytearray(good[:44])
    header[40:44] = struct.pack("<I", 2**31)  # a data chunk declaring 2 GiB
    (first / "huge.wav").write_bytes(bytes(header) + good[44:])
    (root / "silent").mkdir()
    for c in ("a", "b"):
        write_wav(root / "silent" / c / "x.wav", np.zeros(800, np.float32), 8000)
    return root


def test_audio_fuzz(audio_corpus, capsys):
    root = audio_corpus
    audio = ["--n-samples", "2048"]
    assert run(root, "augment", "audio", "--data", str(root / "data"), *SMOKE, *audio, out=root / "out", capsys=capsys) == 0
    assert run(root, "augment", "audio", "--data", str(root / "silent"), *SMOKE, *audio, out=root / "o2", capsys=capsys) == 2
    assert run(root, "evaluate", "audio", "--data", str(root / "data"), "--test", str(root / "data"), *SMOKE, *audio,
               out=root / "ev", capsys=capsys) == 2


def test_abbreviated_flag_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["augment", "image", "--data", "digits", "--out", str(tmp_path / "o"), "--step", "2"])
    assert exit_.value.code == 2 and not (tmp_path / "o").exists()


@pytest.fixture(autouse=True)
def _fresh_logging():
    """``main`` configures logging once per process; tests read stderr only."""
    yield
    logging.getLogger().handlers.clear()
