"""EfficientNet-Lite0 feature extraction on the CPU: memory layout and bf16 autocast (one-off).

Times ``extract_features`` on 256 random 28×28 gray images resized to ``--size`` pixels, batch 64,
in process CPU time at one thread, for the plain (NCHW) layout, channels-last, and both under
bf16 autocast; prints the largest feature difference and the smallest cosine against the plain
fp32 run (features pooled and L2-normalised as the embedder returns them).

    OMP_NUM_THREADS=1 python benchmarks/experiments/embedder_layout.py [--size 112]
"""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from imagina.image.embed import EfficientNetLiteEmbedder, imagenet_batches


def features(model, batches, channels_last: bool, bf16: bool) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for t in batches:
            if channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                f = model.extract_features(t)
            out.append(F.normalize(f.float().mean(dim=(2, 3)), dim=1))
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=112)
    args = p.parse_args()
    torch.set_num_threads(1)
    emb = EfficientNetLiteEmbedder(input_size=args.size, device="cpu")
    model = emb._load()
    X = (np.random.default_rng(0).random((256, 28, 28, 1)) * 255).astype(np.uint8)
    batches = list(imagenet_batches(X, input_size=args.size, batch_size=64, mean=emb.MEAN, std=emb.STD))
    model.to(memory_format=torch.contiguous_format)
    ref = features(model, batches, False, False)
    for name, cl, bf16 in [("fp32", False, False), ("fp32 channels-last", True, False),
                           ("bf16", False, True), ("bf16 channels-last", True, True)]:
        model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        features(model, batches, cl, bf16)  # warm-up
        t = time.process_time()
        out = features(model, batches, cl, bf16)
        ms = 1000 * (time.process_time() - t) / len(X)
        print(f"{name}: {ms:.2f} CPU ms per image, max |diff| {float((out - ref).abs().max()):.2e}, "
              f"min cosine {float((out * ref).sum(1).min()):.5f}")


if __name__ == "__main__":
    main()
