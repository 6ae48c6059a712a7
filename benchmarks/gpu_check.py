"""The cuda / bf16 path, checked against the CPU path and timed (issue 19, point 5).

One prepared run for a lent GPU: for each modality's generator (image DCGAN, text sequence VAE,
speech SpecGAN) it

* trains **one step** from the same seed on the CPU (fp32) and on the device (bf16 autocast, as
  :class:`~imagina.core.training.StepContext` runs it there) and compares the step's losses: same
  initial weights, same batch and noise (both drawn on the CPU), so only the arithmetic differs;
* trains a short model on the CPU, saves it, loads it on the device and **samples** from both with
  the same seed: GAN outputs (n, C, H, W) compared value by value, the text model by the
  log-likelihood of the real sentences and the share of identical decoded sentences;
* fits the **screen's embedder** (``own``) on each device and screens the same candidates with
  each embedding: the share of kept decisions they agree on (the screen's neighbour maths itself
  runs on the CPU in every run: 1M candidates take ~22 s there, BENCHMARKS.md);
* runs the **whole `augment` pipeline** on the device at the modality's defaults (generator,
  embedder, candidates, screen, valuation, dose with its reference check on the device) and
  records its phase times and per-step generator time;
* times the default image generator's training step (hinge loss, DiffAugment, reconstruction)
  at 64×64 and 128×128, 3 channels, and its **model FLOP utilisation**: FLOPs of one step counted
  by ``torch.utils.flop_counter`` (convolutions and matrix products, forward and backward) over
  the step's time, against the measured bf16 matrix-product rate and the datasheet's 989 TFLOP/s.

    python benchmarks/gpu_check.py --prepare DIR     # here: the benchmark draws into DIR (needs ../shared)
    python benchmarks/gpu_check.py --data DIR --json OUT [--device cuda]
    python benchmarks/gpu_check.py --smoke [--device cpu]   # tiny data, seconds: checks the script runs
    (``--sections`` and ``--modalities`` run a part: e.g. ``--sections mfu``, ``--modalities image``)

Draws (``--prepare``): MNIST 10 per class, TREC 50 per class, FSDD 20 per digit (train split),
seed 0, saved as arrays so the device machine needs neither ``../shared`` nor an audio reader.
The JSON is rewritten after every section, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from imagina.core.generator import load_model
from imagina.core.modality import LabeledData, get_modality
from imagina.core.pipeline import AugmentConfig, Augmenter
from imagina.core.screening import Screen

DATASHEET_BF16_TFLOPS = 989.4  # H100/H200 SXM dense bf16, vendor datasheet
SOURCES = {
    "image": ("mnist", dict(per_class=10)),
    "text": ("trec/train.tsv", dict(per_class=50)),
    "audio": ("fsdd", dict(per_class=20, split="train", pattern="{label}_{speaker}_{index}")),
}


# ----------------------------------------------------------------------------- data
def prepare(directory: Path, shared: Path) -> None:
    """Save the three draws (seed 0) as ``{image,audio}.npz`` + ``text.json`` + ``meta.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    metas = {}
    for name, (rel, options) in SOURCES.items():
        data = get_modality(name).load(str(shared / rel), seed=0, **options)
        metas[name] = data.meta
        if name == "text":
            (directory / "text.json").write_text(json.dumps({"X": list(data.X), "y": data.y.tolist()}))
        else:
            np.savez_compressed(directory / f"{name}.npz", X=data.X, y=data.y)
    (directory / "meta.json").write_text(json.dumps(metas))


def load_draws(directory: Path | None) -> dict[str, LabeledData]:
    """The prepared draws, or (``None``) tiny generated data for ``--smoke``."""
    if directory is None:
        return tiny_draws()
    metas = json.loads((directory / "meta.json").read_text())
    out = {}
    for name in SOURCES:
        if name == "text":
            raw = json.loads((directory / "text.json").read_text())
            out[name] = LabeledData(raw["X"], np.asarray(raw["y"]), meta=metas[name])
        else:
            with np.load(directory / f"{name}.npz") as z:
                out[name] = LabeledData(z["X"], z["y"], meta=metas[name])
    return out


def tiny_draws() -> dict[str, LabeledData]:
    rng = np.random.default_rng(0)
    y_img = np.repeat(np.array(["a", "b"]), 12)
    X_img = (rng.random((24, 16, 16, 1)) * 60).astype(np.uint8)
    X_img[y_img == "b", 4:12, 4:12] += 150
    words = {"q": ["who", "wrote", "the", "book", "poem", "song"], "p": ["where", "is", "the", "river", "tower", "city"]}
    X_txt = [" ".join(rng.choice(words[c], 5)) + " ?" for c in ("q", "p") for _ in range(12)]
    y_txt = np.repeat(np.array(["q", "p"]), 12)
    t = np.arange(2048) / 8000
    X_aud = np.stack([0.5 * np.sin(2 * np.pi * f * t) * np.exp(-6 * t) for f in [300.0] * 8 + [1200.0] * 8]).astype(np.float32)
    X_aud += rng.normal(scale=0.01, size=X_aud.shape).astype(np.float32)
    return {"image": LabeledData(X_img, y_img), "text": LabeledData(X_txt, y_txt),
            "audio": LabeledData(X_aud, np.repeat(np.array(["lo", "hi"]), 8), meta={"sample_rate": 8000, "n_samples": 2048})}


# ----------------------------------------------------------------------------- helpers
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def close(a: float, b: float, rel: float = 0.05, absolute: float = 0.02) -> bool:
    return abs(a - b) <= rel * abs(a) + absolute


def matmul_rate(device: str, n: int) -> float:
    """bf16 (fp32 on a CPU) n×n×n matrix products per second, as TFLOP/s (mean of 10 after 3 warm-ups)."""
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12


def gen_options(name: str, smoke: bool) -> dict:
    if not smoke:
        return {}
    if name == "text":
        return dict(vocab_size=60, min_frequency=1, embed_dim=16, hidden_dim=16, latent_dim=4, label_dim=4, max_len=12)
    if name == "audio":
        return dict(base_channels=4, latent_dim=8, n_fft=64, griffin_lim_iters=2, batch_size=4)
    return dict(base_channels=8, latent_dim=8, batch_size=8)


# ----------------------------------------------------------------------------- sections
def first_step(name: str, data: LabeledData, device: str, smoke: bool) -> dict:
    """Losses of step 1 from the same seed: CPU fp32 vs the device (bf16 autocast on cuda)."""
    modality = get_modality(name)
    losses = {}
    for dev in ("cpu", device):
        gen = modality.make_generator(steps=1, seed=0, device=dev, meta=data.meta, **gen_options(name, smoke))
        gen.fit(data.X, data.y, progress=False)
        losses[dev] = {k: v for k, v in gen.history_[-1].items() if k != "step"}
    a, b = losses["cpu"], losses[device]
    diff = {k: round(abs(a[k] - b[k]), 5) for k in a}
    return {"cpu": a, "device": b, "abs_diff": diff, "match": all(close(a[k], b[k]) for k in a)}


def sampling(name: str, data: LabeledData, device: str, steps: int, smoke: bool) -> tuple[dict, object]:
    """A CPU-trained model, saved and loaded on the device: do both sample the same?"""
    modality = get_modality(name)
    gen = modality.make_generator(steps=steps, seed=0, device="cpu", meta=data.meta, **gen_options(name, smoke))
    t = time.perf_counter()
    gen.fit(data.X, data.y, progress=False)
    out: dict = {"cpu_fit_s": round(time.perf_counter() - t, 2), "steps": steps}
    n = 64 if smoke else 256
    with tempfile.TemporaryDirectory() as tmp:
        gen.save(Path(tmp) / "m")
        moved = load_model(Path(tmp) / "m", device=device)
    if name == "text":
        texts, labels = list(data.X[:200]), data.y[:200]
        ll_cpu, ll_dev = gen.log_likelihood(texts, labels), moved.log_likelihood(texts, labels)
        out["loglik_max_rel_diff"] = float(np.max(np.abs(ll_cpu - ll_dev) / np.maximum(np.abs(ll_cpu), 1e-6)))
        s_cpu, _ = gen.sample(n, seed=0)
        t = time.perf_counter()
        s_dev, _ = moved.sample(n, seed=0)
        sync(device)
        out["device_sample_s"] = round(time.perf_counter() - t, 3)
        out["identical_sentences"] = float(np.mean([a == b for a, b in zip(s_cpu, s_dev)]))
        out["match"] = out["loglik_max_rel_diff"] < 1e-3
    else:
        z_cpu, _ = gen.generate_tensors(n, seed=0)
        t = time.perf_counter()
        z_dev, _ = moved.generate_tensors(n, seed=0)
        sync(device)
        out["device_sample_s"] = round(time.perf_counter() - t, 3)
        err = np.abs(z_cpu - z_dev)
        out["max_abs_diff"], out["mean_abs_diff"] = float(err.max()), float(err.mean())
        out["match"] = out["mean_abs_diff"] < 1e-2
    return out, gen


def screen_agreement(name: str, data: LabeledData, device: str, gen, smoke: bool) -> dict:
    """The own embedder fitted on each device; the same candidates screened with each embedding."""
    modality = get_modality(name)
    cand, cand_y = gen.sample(len(data.y) * (2 if smoke else 4), seed=1)
    screen_cfg = AugmentConfig().resolved(modality).screen
    kept, out = {}, {}
    for dev in ("cpu", device):
        t = time.perf_counter()
        emb = modality.make_embedder(seed=0, device=dev, meta=data.meta, steps=5 if smoke else None, progress=False)
        emb.fit(data.X, data.y)
        real, fake = emb.embed(data.X), emb.embed(cand)
        sync(dev)
        out[f"{'cpu' if dev == 'cpu' else 'device'}_embed_s"] = round(time.perf_counter() - t, 2)
        res = Screen(screen_cfg).fit(real, data.y).score(fake, cand_y, budget_per_class=max(1, len(cand_y) // (4 * len(np.unique(cand_y)))))
        kept[dev] = res.keep
    a, b = kept["cpu"], kept[device]
    out.update(candidates=int(len(a)), kept_cpu=int(a.sum()), kept_device=int(b.sum()),
               decisions_agree=float(np.mean(a == b)),
               kept_jaccard=float((a & b).sum() / max((a | b).sum(), 1)))
    return out


def pipeline_run(name: str, data: LabeledData, device: str, smoke: bool) -> dict:
    """``augment`` end to end on the device at the modality's defaults (own embedder)."""
    cfg = AugmentConfig(device=device, seed=0, embedder="own", **({"steps": 4, "per_class": 4} if smoke else {}))
    options = gen_options(name, smoke)
    t = time.perf_counter()
    aug = Augmenter(name, cfg, generator_options=options, progress=False).fit(data)
    result = aug.augment()
    sync(device)
    record = result.record
    steps = record["generator"]["config"]["steps"]
    rec = record.get("recommendation") or {}
    return {"total_s": round(time.perf_counter() - t, 2), "timings": record["timings"], "generator_steps": steps,
            "generator_ms_per_step": round(1000 * record["timings"]["fit_generator_s"] / steps, 2),
            "kept": record["screen"]["kept"], "candidates": record["screen"]["candidates"],
            "verdict": rec.get("verdict"), "ratio": rec.get("ratio")}


def dcgan_mfu(device: str, size: int, batch: int, steps: int, peak_tflops: float) -> dict:
    """Step time and model FLOP utilisation of the image default's training step at size×size×3."""
    from torch.utils.flop_counter import FlopCounterMode

    from imagina.core.gan import ConditionalGANTask
    from imagina.core.runtime import seeded
    from imagina.core.training import Trainer, TrainerConfig
    from imagina.image.diffaugment import DiffAugment
    from imagina.image.model import DCGANConfig

    n = 1000
    x = torch.rand(n, 3, size, size) * 2 - 1
    y = torch.arange(n) % 10
    data = (x, y, torch.arange(n))

    def task():
        cfg = DCGANConfig(image_size=size, channels=3)
        with seeded(0, "mfu"):
            t = ConditionalGANTask(cfg, 10, augment=DiffAugment(cfg.diffaugment), n_anchors=n)
        t.G.anchor_labels.copy_(y)
        return t

    with FlopCounterMode(display=False) as counter:
        Trainer(TrainerConfig(steps=1, batch_size=batch, device=device), progress=False).fit(task(), data)
    flops = counter.get_total_flops()
    marks: dict[int, float] = {}
    warm = 10

    def mark(done: int, _losses) -> None:
        if done in (warm, warm + steps):
            sync(device)
            marks[done] = time.perf_counter()

    Trainer(TrainerConfig(steps=warm + steps, batch_size=batch, device=device), progress=False).fit(task(), data, callback=mark)
    step_s = (marks[warm + steps] - marks[warm]) / steps
    achieved = flops / step_s / 1e12
    return {"size": size, "batch": batch, "step_ms": round(1000 * step_s, 3), "gflop_per_step": round(flops / 1e9, 2),
            "achieved_tflops": round(achieved, 3), "mfu_vs_measured_peak": round(achieved / peak_tflops, 5),
            "mfu_vs_datasheet": round(achieved / DATASHEET_BF16_TFLOPS, 5), "images_per_s": round(batch / step_s, 1)}


# ----------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prepare", type=Path, help="write the draws into this folder and stop (needs ../shared)")
    p.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--data", type=Path, help="the folder --prepare wrote")
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", type=Path, help="write the results here (rewritten after every section)")
    p.add_argument("--sections", default="env,steps,sampling,screen,pipeline,mfu")
    p.add_argument("--modalities", default="image,text,audio")
    p.add_argument("--smoke", action="store_true", help="tiny generated data and sizes: checks that every section runs")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.prepare:
        prepare(args.prepare, args.shared)
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but no CUDA device is available (use --device cpu with --smoke)")
    if not args.smoke and args.data is None:
        p.error("give --data (a folder written by --prepare) or --smoke")
    sections = set(args.sections.split(","))
    device = args.device
    draws = {k: v for k, v in load_draws(None if args.smoke else args.data).items() if k in args.modalities.split(",")}
    results: dict = {"device": device, "smoke": args.smoke}

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))

    def section(key: str, fn, *a):
        t = time.perf_counter()
        try:
            value = fn(*a)
        except Exception as exc:  # a failing section is a result; the others still run
            logging.exception("section %s failed", key)
            value = {"error": f"{exc.__class__.__name__}: {exc}"}
        logging.warning("%s done in %.1f s: %s", key, time.perf_counter() - t, json.dumps(value, default=str)[:600])
        return value

    if "env" in sections:
        env = {"torch": torch.__version__, "threads": torch.get_num_threads()}
        if device.startswith("cuda"):
            props = torch.cuda.get_device_properties(device)
            env.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                       memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
        env["matmul_tflops"] = round(matmul_rate(device, 8192 if device.startswith("cuda") and not args.smoke else 512), 3)
        results["env"] = env
        save()
    peak = results.get("env", {}).get("matmul_tflops") or DATASHEET_BF16_TFLOPS
    # cheap checks of every generator first, then the step timings, then the long pipeline runs
    for name, data in draws.items():
        r = results.setdefault(name, {})
        if "steps" in sections:
            r["first_step"] = section(f"{name} first step", first_step, name, data, device, args.smoke)
            save()
        if "sampling" in sections or "screen" in sections:
            out = section(f"{name} sampling", sampling, name, data, device, 3 if args.smoke else 60, args.smoke)
            r["sampling"], gen = out if isinstance(out, tuple) else (out, None)
            save()
            if "screen" in sections and gen is not None:
                r["screen"] = section(f"{name} screen", screen_agreement, name, data, device, gen, args.smoke)
                save()
    if "mfu" in sections:
        sizes = [(16, 8, 3)] if args.smoke else [(64, 64, 50), (128, 64, 50), (64, 512, 20), (128, 512, 20)]
        results["dcgan_mfu"] = []
        for s, b, k in sizes:
            results["dcgan_mfu"].append(section(f"mfu {s}x{s} batch {b}", dcgan_mfu, device, s, b, k, peak))
            save()
    if "pipeline" in sections:
        for name, data in draws.items():
            results[name]["pipeline"] = section(f"{name} pipeline", pipeline_run, name, data, device, args.smoke)
            save()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
