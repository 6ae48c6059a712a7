import json
from pathlib import Path

import numpy as np
import pytest

from imagina.core.errors import InvalidInputError
from imagina.core.export import (
    atomic_output_dir,
    check_output_dir,
    sanitize_label,
    unique_folder_names,
    write_json,
)


@pytest.mark.parametrize(
    "label, expected",
    [("cat", "cat"), ("../../etc", "etc"), ("a/b\\c", "a_b_c"), ("", "class"), (".hidden", "hidden"),
     ("CON", "class_CON"), ("naïve café", "naive_cafe"), (3, "3")],
)
def test_sanitize_label(label, expected):
    assert sanitize_label(label) == expected


def test_unique_folder_names_resolve_collisions():
    names = unique_folder_names(["a/b", "a_b", "A_B"])
    assert len(set(n.lower() for n in names.values())) == 3


def test_refuses_non_empty_output(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidInputError, match="not empty; pass --overwrite"):
        check_output_dir(tmp_path)
    check_output_dir(tmp_path, overwrite=True)


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_atomically(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_json_is_strict_nan_becomes_null(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": float("nan"), "b": np.float32("inf"), "c": np.array([1.0, np.nan]), "d": (Path("p"), 2)})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}")) == {
        "a": None, "b": None, "c": [1.0, None], "d": ["p", 2]}


def test_an_empty_manifest_keeps_its_header(tmp_path):
    """A "don't use" run's manifest.csv lists no item but still names its columns (it was a bare line end)."""
    import csv

    from imagina.core.export import write_manifest

    write_manifest(tmp_path / "m.csv", [], columns=("path", "label", "quality"))
    assert (tmp_path / "m.csv").read_text().splitlines() == ["path,label,quality"]
    write_manifest(tmp_path / "n.csv", [{"label": "a", "path": "samples/a/1.png", "x": np.float64(0.49999969770456265)}])
    rows = list(csv.reader((tmp_path / "n.csv").open()))
    assert rows == [["path", "label", "x"], ["samples/a/1.png", "a", "0.5"]]  # numpy floats rounded too


def test_output_labels_come_back_from_the_manifest(tmp_path):
    """samples/ folders carry sanitised labels ("a/b" -> "a_b"); the manifest beside them the real ones."""
    from imagina.core.export import output_labels, write_manifest

    (tmp_path / "samples" / "a_b").mkdir(parents=True)
    write_manifest(tmp_path / "manifest.csv", [{"path": "samples/a_b/a_b_000001.png", "label": "a/b"},
                                               {"path": "samples/CON_/x.png", "label": "CON"}])
    write_manifest(tmp_path / "reserve.csv", [{"path": "reserve/a_b/a_b_000002.png", "label": "a/b"}])
    assert output_labels(tmp_path / "samples") == {"a_b": "a/b", "CON_": "CON"}
    assert output_labels(tmp_path / "reserve") == {"a_b": "a/b"}
    assert output_labels(tmp_path / "elsewhere") == {}


def test_an_output_folder_stands_for_its_samples(tmp_path):
    """`--candidates OUT` reads OUT/samples; an empty samples/ ("don't use") points to reserve/."""
    from imagina.core.export import output_items, write_manifest

    (tmp_path / "out" / "samples" / "a").mkdir(parents=True)
    write_manifest(tmp_path / "out" / "manifest.csv", [{"path": "samples/a/1.png", "label": "a"}])
    assert output_items(tmp_path / "out") == str(tmp_path / "out" / "samples")
    assert output_items(tmp_path / "out" / "samples") == str(tmp_path / "out" / "samples")  # not an output root
    assert output_items(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
    (tmp_path / "dont" / "samples").mkdir(parents=True)
    (tmp_path / "dont" / "reserve" / "a").mkdir(parents=True)
    write_manifest(tmp_path / "dont" / "manifest.csv", [], columns=("path", "label"))
    with pytest.raises(InvalidInputError, match=r"samples/ is empty .*kept items are in .*reserve"):
        output_items(tmp_path / "dont")
