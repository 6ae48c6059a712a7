"""``imagina augment | evaluate | generate | screen``: a thin argparse layer over the Python API.

Every user error (:class:`~imagina.core.errors.ImaginaError`) becomes one line on stderr and exit
code 2; ``--quiet`` hides progress bars and info logs; ``--json`` prints a machine-readable summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from imagina.core.errors import ImaginaError, InvalidInputError, check_int
from imagina.core.modality import MODALITIES

logger = logging.getLogger("imagina")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}") from None


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or info logs")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _augment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="training data: a path, or 'digits' for images")
    p.add_argument("--out", required=True, help="output directory (must be empty or absent)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--per-class", type=int, default=None, help="kept synthetic items per class (default 200)")
    p.add_argument("--oversample", type=float, default=None, help="candidates generated per kept item (default 3)")
    p.add_argument("--steps", type=int, default=None, help="generator training steps (modality default if omitted)")
    p.add_argument("--real-per-class", type=int, default=None, help="use only this many real items per class")
    p.add_argument("--embedder", default=None, help="pretrained embedder (name or local path); default: trained on the data")
    p.add_argument("--checkpoint-dir", default=None, help="save training checkpoints here and resume from them")
    p.add_argument("--generator-option", dest="generator_options", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="a generator setting, e.g. reconstruction=0 (repeatable; values are JSON or text)")
    _common(p)


def build_parser() -> argparse.ArgumentParser:
    from imagina import __version__
    from imagina.core.modality import get_modality

    parser = argparse.ArgumentParser(prog="imagina", description="Imagination-driven data augmentation.")
    parser.add_argument("--version", action="version", version=f"imagina {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    aug = sub.add_parser("augment", help="preprocess, fit, generate, screen, export, report")
    aug_mod = aug.add_subparsers(dest="modality", required=True)
    ev = sub.add_parser("evaluate", help="augment, then train the reference classifier on conditions (a)-(e)")
    ev_mod = ev.add_subparsers(dest="modality", required=True)
    sc = sub.add_parser("screen", help="screen a candidate set against a real set")
    sc_mod = sc.add_subparsers(dest="modality", required=True)
    for name in MODALITIES:
        try:
            modality = get_modality(name)
        except ImportError:  # a modality whose optional dependency is missing here
            continue
        p = aug_mod.add_parser(name, help=f"augment a {name} dataset")
        _augment_args(p)
        modality.add_cli_arguments(p)
        p = ev_mod.add_parser(name, help=f"evaluate augmentation of a {name} dataset")
        _augment_args(p)
        p.add_argument("--test", required=True, help="held-out real test data (a path)")
        p.add_argument("--test-split", default="test", help="split of --test to load where the loader has splits")
        p.add_argument("--seeds", type=_int_list, default=(0, 1, 2), help="classifier seeds (default 0,1,2)")
        p.add_argument("--selection-seeds", type=int, default=3,
                       help="classifier seeds averaged to score each candidate setting on validation (default 3)")
        p.add_argument("--classifier-steps", type=int, default=None,
                       help="training steps of the reference classifier (default: the modality's)")
        modality.add_cli_arguments(p)
        p = sc_mod.add_parser(name, help=f"screen {name} candidates")
        p.add_argument("--real", required=True, help="real data (a path)")
        p.add_argument("--candidates", required=True, help="candidate data (a path, labelled like the real data)")
        p.add_argument("--out", required=True)
        p.add_argument("--overwrite", action="store_true")
        p.add_argument("--per-class", type=int, default=None, help="keep at most this many per class")
        p.add_argument("--embedder", default=None)
        _common(p)
        modality.add_cli_arguments(p)

    gen = sub.add_parser("generate", help="sample from a saved model directory")
    gen.add_argument("model", help="model directory (out/model of an augment run)")
    gen.add_argument("--n", type=int, required=True, help="items per class")
    gen.add_argument("--labels", default=None, help="comma-separated classes (default: all)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--overwrite", action="store_true")
    _common(gen)
    return parser


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _load(modality, args, source: str, **extra):
    options = modality.load_options(args)
    options.update(extra)
    return modality.load(source, **options)


def _no_cleaning(modality) -> dict:
    """``clean=False`` where the loader takes it: a test split is used whole."""
    import inspect

    return {"clean": False} if "clean" in inspect.signature(modality.load).parameters else {}


def _augmenter(args):
    from imagina.core.pipeline import AugmentConfig, Augmenter

    config = AugmentConfig(seed=args.seed, device=args.device, steps=args.steps, embedder=args.embedder,
                           per_class=args.per_class, oversample=args.oversample)
    return Augmenter(args.modality, config, generator_options=dict(args.generator_options), progress=not args.quiet)


def cmd_augment(args) -> dict:
    from imagina.core.export import check_output_dir
    from imagina.core.modality import get_modality

    check_output_dir(args.out, overwrite=args.overwrite)
    modality = get_modality(args.modality)
    extra = {"per_class": args.real_per_class, "seed": args.seed} if args.real_per_class else {}
    data = _load(modality, args, args.data, **extra)
    logger.info("using %d items; cleaning: %s", len(data), data.report.summary())
    validation = None
    if getattr(args, "test", None):  # hold validation items out of the generator (see core.evaluation)
        from imagina.core.evaluation import EvalConfig, holdout

        data, validation = holdout(data, EvalConfig().val_fraction, args.seed)
        logger.info("evaluate: the generator sees %d items; %d are held out to choose settings", len(data), len(validation))
    augmenter = _augmenter(args).fit(data, checkpoint_dir=args.checkpoint_dir)
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:  # under torchrun every process trains; only rank 0 generates and writes --out
        return {"rank": rank, "out": None}
    result = augmenter.augment()
    evaluation = None
    if getattr(args, "test", None):
        from imagina.core.evaluation import evaluate

        test = _load(modality, args, args.test, split=args.test_split, **_no_cleaning(modality))
        task = modality.evaluation_task(meta=data.meta)
        if args.classifier_steps is not None:
            task.steps = check_int("classifier_steps", args.classifier_steps, minimum=1)
        evaluation = evaluate(task, data, test, validation=validation, screened=result.kept(), unscreened=result.unscreened(),
                              config=EvalConfig(seeds=args.seeds, selection_seeds=args.selection_seeds, device=args.device), progress=not args.quiet)
        logger.info("evaluation:\n%s", evaluation.to_markdown())
    out = result.export(args.out, overwrite=args.overwrite, evaluation=evaluation)
    summary = {"out": str(out), "kept_per_class": result.kept_per_class(), "screen": result.record["screen"],
               "timings": result.record["timings"]}
    if evaluation is not None:
        summary["evaluation"] = evaluation.to_dict()
    return summary


def cmd_generate(args) -> dict:
    import numpy as np

    from imagina.core.export import atomic_output_dir, check_output_dir, write_manifest
    from imagina.core.generator import MODEL_MODALITY, load_model, read_model_config
    from imagina.core.modality import get_modality

    check_output_dir(args.out, overwrite=args.overwrite)
    if args.n < 1:
        raise InvalidInputError(f"`--n` must be an int >= 1; got {args.n}.")
    name = read_model_config(Path(args.model))["model"]
    model = load_model(args.model, device=args.device)
    modality = get_modality(MODEL_MODALITY[name])
    classes = list(model.classes_.tolist())
    if args.labels:
        wanted = [v.strip() for v in args.labels.split(",")]
        by_text = {str(c): c for c in classes}
        missing = [w for w in wanted if w not in by_text]
        if missing:
            raise InvalidInputError(f"--labels {missing[0]!r} is not a class of this model; classes are {classes}.")
        classes = [by_text[w] for w in wanted]
    labels = np.repeat(np.asarray(classes, dtype=model.classes_.dtype), args.n)
    X, y = model.sample(len(labels), labels, seed=args.seed)
    with atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        stems = [f"{i:06d}" for i in range(len(y))]
        paths = modality.write_items(tmp / "samples", X, y, stems, meta=model.data_meta())
        write_manifest(tmp / "manifest.csv", [{"path": f"samples/{p}", "label": lab} for p, lab in zip(paths, y.tolist())])
    return {"out": args.out, "items": len(y)}


def cmd_screen(args) -> dict:
    import numpy as np

    from imagina.core.export import atomic_output_dir, check_output_dir, sanitize_label, write_manifest
    from imagina.core.modality import get_modality, take
    from imagina.core.screening import Screen

    check_output_dir(args.out, overwrite=args.overwrite)
    modality = get_modality(args.modality)
    real = _load(modality, args, args.real)
    cand = _load(modality, args, args.candidates)
    embedder = modality.make_embedder(seed=args.seed, device=args.device, pretrained=args.embedder,
                                      meta=real.meta).fit(real.X, real.y)
    screen = Screen().fit(embedder.embed(real.X), real.y)
    checks = modality.sanity(cand.X, cand.y, real=real)
    result = screen.score(embedder.embed(cand.X), cand.y, checks=checks, budget_per_class=args.per_class)
    with atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        idx = np.flatnonzero(result.keep)
        stems = [f"{sanitize_label(cand.y[i])}_{i:06d}" for i in idx]
        paths = modality.write_items(tmp / "samples", take(cand.X, idx), cand.y[idx], stems, meta=real.meta)
        names = list(result.scores)
        rows = []
        for i in range(len(cand.y)):
            rows.append({"source": cand.sources[i] if cand.sources else i, "label": cand.y[i],
                         "kept": bool(result.keep[i]), "reason": result.reasons[i] or "",
                         **{k: result.scores[k][i] for k in names}})
        write_manifest(tmp / "scores.csv", rows)
        write_manifest(tmp / "manifest.csv", [{"path": f"samples/{p}", "label": cand.y[i]} for p, i in zip(paths, idx)])
    return {"out": args.out, "candidates": len(cand.y), "kept": int(result.keep.sum()), "rejected_by_reason": result.rejection_counts()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.quiet)
    handlers = {"augment": cmd_augment, "evaluate": cmd_augment, "generate": cmd_generate, "screen": cmd_screen}
    try:
        summary = handlers[args.command](args)
    except ImaginaError as exc:
        sys.stderr.write(f"imagina: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("imagina: interrupted\n")
        return 130
    if args.json:
        from imagina.core.export import to_jsonable

        sys.stdout.write(json.dumps(to_jsonable(summary), indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
