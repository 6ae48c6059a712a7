"""The command line, end to end on scikit-learn's digits with a handful of steps."""

import csv
import json
import subprocess
import sys

import pytest

from imagina.core.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "imagina", *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_augment_generate_screen_on_digits(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["augment", "image", "--data", "digits", "--out", str(out), "--steps", "30", "--per-class", "4",
               "--real-per-class", "20", "--quiet", "--json", "--device", "cpu"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("manifest.csv", "rejected.csv", "report.md", "run.json", "figures/scores.png", "figures/real.png",
                 "model/config.json", "model/model.safetensors", "model/preprocessor.json"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    reserve = list(csv.DictReader(open(out / "reserve.csv"))) if (out / "reserve.csv").exists() else []
    assert len(rows) + len(reserve) == sum(summary["kept_per_class"].values())  # samples/: the dose; reserve/: the rest
    assert len(rows) == sum(summary["recommendation"]["per_class"].values())
    for row in rows + reserve:
        assert (out / row["path"]).exists() and {"quality", "consistency", "realism", "novelty"} <= set(row)
    rejected = list(csv.DictReader(open(out / "rejected.csv")))
    assert all(r["reason"] for r in rejected)
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 0 and "torch" in record["versions"] and record["timings"]["fit_generator_s"] > 0
    assert "## Screening" in (out / "report.md").read_text()
    # a second run into the same --out is refused, and leaves it untouched
    rc = main(["augment", "image", "--data", "digits", "--out", str(out), "--steps", "2", "--quiet"])
    assert rc == 2 and "not empty" in capsys.readouterr().err
    # generate from the saved model
    gen = tmp_path / "gen"
    assert main(["generate", str(out / "model"), "--n", "3", "--labels", "1,7,7", "--out", str(gen), "--quiet"]) == 0
    assert sorted(p.name for p in (gen / "samples").iterdir()) == ["1", "7"]
    assert len(list((gen / "samples" / "7").glob("*.png"))) == 3  # a class named twice is generated once
    assert sorted(p.name for p in (gen / "samples" / "7").glob("*.png"))[0].startswith("7_")  # named as augment names
    made = json.loads((gen / "run.json").read_text())
    assert (made["seed"], made["labels"], made["n_per_class"], made["screened"]) == (0, ["1", "7"], 3, False)
    assert main(["generate", str(out / "model"), "--n", "3", "--labels", "", "--out", str(tmp_path / "g0"), "--quiet"]) == 2
    assert "--labels names no class" in capsys.readouterr().err
    # screen the generated set against real digits written as a folder
    real = tmp_path / "real"
    assert main(["generate", str(out / "model"), "--n", "4", "--out", str(real), "--seed", "9", "--quiet"]) == 0
    scr = tmp_path / "scr"
    assert main(["screen", "image", "--real", str(real / "samples"), "--candidates", str(gen / "samples"),
                 "--out", str(scr), "--quiet", "--device", "cpu"]) == 0
    for name in ("manifest.csv", "rejected.csv", "report.md", "run.json"):  # the files augment writes
        assert (scr / name).exists(), name


@pytest.mark.parametrize(
    "args, message",
    [
        (["augment", "image", "--data", "/no/such/dir", "--out", "{tmp}/o"], "--data: image data /no/such/dir does not exist"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--steps", "0"], "`steps` must be an int >= 1"),
        (["generate", "{tmp}", "--n", "2", "--out", "{tmp}/o"], "not an imagina model directory"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--device", "tpu"], "`device` must be one of"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--generator-option", "recon=1"],
         "unknown generator option 'recon'"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--generator-option", "reconstruction=-1"],
         "`reconstruction` must be"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--dose-option", "check_rul=sign"],
         "--dose-option: unknown setting 'check_rul'"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--dose-option", "check_rule=x"],
         "`check_rule` must be one of interval, sign"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--dose", "off", "--dose-option", "folds=3"],
         "the dose is off"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--screen-option", "selectr=value"],
         "--screen-option: unknown setting 'selectr'; known: budget_per_class"),
        (["screen", "image", "--real", "digits", "--candidates", "digits", "--out", "{tmp}/o", "--screen-option",
          "selector=value"], "which only augment computes"),
        (["screen", "image", "--real", "digits", "--candidates", "digits", "--out", "{tmp}/o", "--screen-option", "k=0"],
         "`k` must be"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--screen-option", "priority_score=bigram_rarity"],
         '`priority_score` needs the "random" selector'),
        # argparse's own errors keep the contract too: one line, not the usage block
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--seed", "abc"], "argument --seed: invalid int value"),
        (["augment", "image", "--data", "digits", "--out", "{tmp}/o", "--real-per-class", "0"],
         "argument --real-per-class: expected an integer >= 1; got '0'"),
        (["evaluate", "image", "--data", "digits", "--test", "digits", "--out", "{tmp}/o", "--seeds", "a,b"],
         "argument --seeds: expected comma-separated integers"),
        (["augment", "imag", "--data", "digits", "--out", "{tmp}/o"], "invalid choice: 'imag'"),
        # an --out under a file is refused before anything trains (it used to fail at export, after training)
        (["augment", "image", "--data", "digits", "--out", "{tmp}/f/o"], "is a file, so no folder can be made under it"),
    ],
)
def test_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "f").write_text("a file, not a folder")
    result = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], "--quiet")
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "o").exists()


def test_outputs_get_the_umask_permissions_not_mkdtemps(tmp_path):
    """mkdtemp and mkstemp make private (0700 / 0600) paths; renamed into place they would stay so."""
    from imagina.core.export import _umask, atomic_output_dir
    from imagina.core.training import atomic_write_text

    with atomic_output_dir(tmp_path / "o") as tmp:
        (tmp / "sub").mkdir()
        atomic_write_text(tmp / "run.json", "{}")
    assert (tmp_path / "o").stat().st_mode & 0o777 == 0o777 & ~_umask()
    assert (tmp_path / "o" / "run.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_unknown_flag_is_an_error():
    result = run_cli("augment", "image", "--data", "digits", "--out", "x", "--stepz", "3")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_flags_are_never_abbreviated(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["augment", "image", "--data", "digits", "--out", str(tmp_path / "o"), "--step", "3"])
    assert exit_.value.code == 2 and "unrecognized arguments: --step" in capsys.readouterr().err


@pytest.mark.parametrize("modality", ["image", "text", "audio"])
def test_help_states_every_default(modality):
    from imagina.core.cli import build_parser

    parser = build_parser()
    for command in ("augment", "evaluate", "screen"):
        sub = parser._subparsers._group_actions[0].choices[command]._subparsers._group_actions[0].choices[modality]
        for action in sub._actions:
            if action.option_strings and action.help != "show this help message and exit":
                assert action.help, (command, action.option_strings)
                if action.default not in (None, False, [], "==SUPPRESS=="):
                    assert "default" in action.help, (command, action.option_strings)
        assert ("'digits'" in sub.format_help()) == (modality == "image")
        assert "generator" in sub.format_help() or command == "screen"


def test_help_states_the_generator_steps_and_the_cost():
    text = run_cli("augment", "image", "--help").stdout
    assert ("training steps of the generator only (default 2000 at most: 10 per image, never below half, "
            "when --steps is not given)") in " ".join(text.split())
    assert "A default run trains the generator 2000 steps and the embedder 300" in " ".join(text.split())


def test_evaluate_refuses_the_training_source_as_test(tmp_path):
    result = run_cli("evaluate", "image", "--data", "digits", "--test", "digits", "--out", tmp_path / "o", "--smoke")
    assert result.returncode == 2 and "--test digits is --data and has no test split" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def test_evaluate_refuses_an_overlapping_test_set_before_training(tmp_path, caplog):
    import numpy as np

    from imagina.image.data import load_digits

    d = load_digits()
    np.savez(tmp_path / "test.npz", x=d.X[:100, ..., 0], y=d.y[:100].astype(int))
    rc = main(["evaluate", "image", "--data", "digits", "--test", str(tmp_path / "test.npz"), "--out", str(tmp_path / "o"),
               "--smoke", "--device", "cpu"])
    assert rc == 2 and not (tmp_path / "o").exists()
    assert not any("training embedder" in r.message or "generator" in r.name for r in caplog.records)


def test_screen_refuses_unknown_classes_before_training(tmp_path, capsys):
    import numpy as np

    from imagina.image.data import load_digits

    d = load_digits()
    np.savez(tmp_path / "cand.npz", x=d.X[:40, ..., 0], y=np.array(["cat", "dog"])[np.arange(40) % 2])
    rc = main(["screen", "image", "--real", "digits", "--candidates", str(tmp_path / "cand.npz"), "--out", str(tmp_path / "o"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--candidates holds 2 class(es) that --real lacks: 'cat', 'dog'" in err


@pytest.mark.slow
def test_evaluate_writes_the_table(tmp_path, capsys):
    from PIL import Image

    from imagina.image.data import load_digits

    digits = load_digits()
    root = tmp_path / "digits"
    for split, rows in (("train", range(0, 900)), ("test", range(900, 1200))):
        for i in rows:  # a folder split into train/ and test/ serves as --data and --test
            (root / split / digits.y[i]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(digits.X[i, ..., 0]).save(root / split / digits.y[i] / f"{i}.png")
    out = tmp_path / "ev"
    rc = main(["evaluate", "image", "--data", str(root), "--test", str(root), "--real-per-class", "8", "--steps", "10",
               "--per-class", "3", "--seeds", "0,1", "--classifier-steps", "3", "--out", str(out), "--quiet", "--json",
               "--device", "cpu"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    conditions = summary["evaluation"]["conditions"]
    assert "real" in conditions and "real+classical" in conditions
    assert all(len(c["accuracies"]) == 2 for c in conditions.values())
    report = (out / "report.md").read_text()
    assert "## Evaluation" in report
    record = json.loads((out / "run.json").read_text())
    assert "evaluation" in record
    held = record["data"]["items"]  # the generator's items; the rest of the 80 drawn choose the settings
    assert held < 80 and f"Real data: {held} items in 10 classes (of 80 loaded: {80 - held} are held out" in report
    # 2 of the 8 real items per class choose the settings and are held out of the generator
    assert record["data"]["items"] == 60 and summary["evaluation"]["sizes"]["of which validation"] == 20
    assert summary["evaluation"]["sizes"]["real train"] == 80


def test_auto_is_refused_where_it_cannot_apply(tmp_path, capsys):
    assert main(["evaluate", "image", "--data", "digits", "--test", "digits", "--auto", "--out", str(tmp_path / "o")]) == 2
    assert "--auto belongs to `augment`" in capsys.readouterr().err
    assert main(["augment", "image", "--data", "digits", "--auto", "--dose", "off", "--out", str(tmp_path / "o")]) == 2
    assert "drop --dose off" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_short_run_is_loud_even_under_quiet(tmp_path):
    out = tmp_path / "o"
    proc = run_cli("augment", "image", "--data", "digits", "--smoke", "--real-per-class", "10", "--quiet",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" in proc.stderr and "kept fewer than" in proc.stderr and "likely cause" in proc.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["warnings"] and record["warnings"][0] in (out / "report.md").read_text()
    assert (out / "samples").is_dir()


@pytest.mark.slow
def test_evaluate_audio_on_class_folders_runs_to_the_end(tmp_path):
    from audio_factories import write_dataset

    train = write_dataset(tmp_path / "train", n_per_class=4, seconds=0.3)
    test = write_dataset(tmp_path / "test", n_per_class=3, seconds=0.4)
    out = tmp_path / "o"
    proc = run_cli("evaluate", "audio", "--data", train, "--test", test, "--smoke", "--quiet", "--out", out)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["evaluation"]["sizes"]["test"] == 6 and "real" in record["evaluation"]["conditions"]


@pytest.mark.parametrize("quiet", [True, False])
def test_library_warnings_are_log_lines_and_quiet_hides_them(quiet):
    code = ("import warnings; from imagina.core.cli import _setup_logging; "
            f"_setup_logging({quiet}); warnings.warn('from a library', UserWarning)")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stderr
    assert ("from a library" in err) is not quiet
    assert quiet or err.startswith("WARNING py.warnings:")


def test_smoke_runs_a_small_dose_unless_told_otherwise():
    import argparse

    from imagina.core.cli import _augment_config

    def config(**kw):
        base = dict(smoke=True, dose="auto", dose_options=[], screen_options=[], modality="image", seed=0, device="cpu",
                    steps=2, embedder="own", per_class=4, oversample=None)
        return _augment_config(argparse.Namespace(**{**base, **kw})).dose

    small = config()
    assert (small.folds, small.repeats, small.max_real, small.classical) == (2, 1, 200, (1,))
    assert config(dose_options=[("folds", 3)]).folds == 3  # an explicit --dose-option wins
    assert config(smoke=False).folds == 5


def test_screen_option_changes_one_setting_of_the_modality_default():
    """``--screen-option`` starts from the screen the modality uses, not the generic one: text keeps its
    random pick and consistency 0 when only ``k`` changes; no option leaves the modality to fill it."""
    import argparse

    from imagina.core.cli import _augment_config
    from imagina.core.screening import ScreenConfig

    def screen(modality, options):
        args = dict(smoke=False, dose="auto", dose_options=[], screen_options=options, modality=modality, seed=0,
                    device="cpu", steps=None, embedder=None, per_class=None, oversample=None)
        return _augment_config(argparse.Namespace(**args)).screen

    assert screen("text", []) is None
    text = screen("text", [("k", 7)])
    assert (text.k, text.selector, text.min_consistency, text.priority_score) == (7, "random", 0.0, "bigram_rarity")
    image = screen("image", [("selector", "value")])
    assert image == ScreenConfig(selector="value")
    assert screen("text", [("selector", "value"), ("priority_score", None)]).selector == "value"


@pytest.mark.parametrize("candidates", ["out/samples", "out"])
def test_an_output_with_sanitised_labels_is_the_next_commands_input(tmp_path, candidates):
    """`screen --candidates OUT/samples` (or OUT itself) reads the labels from OUT's manifest, not the
    folder names."""
    import numpy as np
    from PIL import Image

    from imagina.core.export import write_manifest

    rng = np.random.default_rng(0)
    labels = np.array(["a/b", "c d"] * 12)
    np.savez(tmp_path / "real.npz", x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=labels)
    rows = []
    for i, (label, folder) in enumerate([("a/b", "a_b"), ("c d", "c_d")] * 3):
        (tmp_path / "out" / "samples" / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "out" / "samples" / folder / f"{i}.png")
        rows.append({"path": f"samples/{folder}/{i}.png", "label": label})
    write_manifest(tmp_path / "out" / "manifest.csv", rows)
    result = run_cli("screen", "image", "--real", tmp_path / "real.npz", "--candidates", tmp_path / candidates,
                     "--out", tmp_path / "s", "--embedder-steps", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    per_class = json.loads((tmp_path / "s" / "run.json").read_text())["screen"]["candidates_per_class"]
    assert per_class == {"a/b": 3, "c d": 3}
