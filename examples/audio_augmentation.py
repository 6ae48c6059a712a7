"""Speech data augmentation with imagina: FSDD digits (or any folder of labelled clips).

    python examples/audio_augmentation.py --data ../shared/data/fsdd --out runs/audio-example
    python examples/audio_augmentation.py --data my_clips/ --split "" --steps 50
    python examples/audio_augmentation.py --smoke     # checks data and setup in seconds

Loads 20 clips per class, trains the class-conditional SpecGAN, generates clips (Griffin-Lim),
screens them (audio sanity + embedding scores), writes 16-bit WAVs in class folders with a
manifest and a report, and lists a few kept clips per class to listen to: from ``samples/`` when the
verdict recommends them, else from ``reserve/``, where a "don't use" verdict leaves the kept clips.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

from imagina.audio import MODALITY
from imagina.core.evaluation import smoke_setup
from imagina.core.pipeline import AugmentConfig, Augmenter


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"))
    p.add_argument("--pattern", default="{label}_{speaker}_{index}", help="file-name pattern holding {label}")
    p.add_argument("--split", default="train",
                   help="split to read: FSDD's rule ('train': takes 5-49) or a train/ folder; '' reads every clip")
    p.add_argument("--real-per-class", type=int, default=20)
    p.add_argument("--per-class", type=int, default=50, help="kept synthetic clips per class")
    p.add_argument("--steps", type=int, default=None, help="SpecGAN steps (default: the modality's)")
    p.add_argument("--out", default="runs/audio-example")
    p.add_argument("--smoke", action="store_true", help="a setup check in seconds (its figures mean nothing)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    data = MODALITY.load(args.data, pattern=args.pattern, split=args.split or None, per_class=args.real_per_class, seed=0)
    logging.info("real data: %d clips at %d Hz; %s", len(data), data.meta["sample_rate"], data.report.summary())
    modality, config = MODALITY, AugmentConfig(per_class=args.per_class, steps=args.steps, device="cpu")
    if args.smoke:
        modality, config, _ = smoke_setup(MODALITY, device="cpu")
    result = Augmenter(modality, config).fit(data).augment()
    out = result.export(args.out, overwrite=True)
    logging.info("kept per class: %s", result.kept_per_class())
    # samples/ holds the recommended clips (manifest.csv); under "don't use" it is empty and the kept
    # clips wait in reserve/ (reserve.csv)
    listing = out / "manifest.csv"
    with open(listing, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows and (out / "reserve.csv").is_file():
        with open(out / "reserve.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    for label in sorted({r["label"] for r in rows}):
        listen = [r["path"] for r in rows if r["label"] == label][:3]
        logging.info("listen to class %s: %s", label, ", ".join(str(out / p) for p in listen))
    logging.info("report: %s", out / "report.md")


if __name__ == "__main__":
    main()
