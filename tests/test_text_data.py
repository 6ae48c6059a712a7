import json

import numpy as np
import pytest

from imagina.core.errors import InvalidInputError
from imagina.text import MODALITY, TextCleaningConfig, load_texts, normalize_text


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


CSV = "text,label\nwhat is a cat ?,DESC\nwhat is a dog ?,DESC\nwho wrote hamlet ?,HUM\nwho built rome ?,HUM\n"


def test_normalize_text_nfkc_and_whitespace():
    assert normalize_text("  ｆｕｌｌ\u00a0width\t\tand\nlines\x07 ") == "full width and lines"


def test_load_csv_basic(tmp_path):
    d = load_texts(write(tmp_path / "d.csv", CSV))
    assert d.X == ["what is a cat ?", "what is a dog ?", "who wrote hamlet ?", "who built rome ?"]
    assert d.y.tolist() == ["DESC", "DESC", "HUM", "HUM"]
    assert d.sources[0] == "d.csv:2"
    assert d.report.kept == 4


def test_load_tsv_with_bare_quotes_and_custom_columns(tmp_path):
    tsv = 'cls\tq\nA\tWhat is the "Bible Belt" ?\nA\tWhat is love ?\nB\tWho is "Bob" ?\nB\tWho am I ?\n'
    d = load_texts(write(tmp_path / "d.tsv", tsv), text_column="q", label_column="cls")
    assert d.X[0] == 'What is the "Bible Belt" ?'
    assert d.y.tolist() == ["A", "A", "B", "B"]


def test_load_jsonl(tmp_path):
    rows = [{"sentence": s, "y": c} for s, c in [("a b c", 1), ("a b d", 1), ("x y z", 2), ("x y w", 2)]]
    text = "\n".join(json.dumps(r) for r in rows) + "\nnot json\n"
    d = load_texts(write(tmp_path / "d.jsonl", text), text_column="sentence", label_column="y")
    assert len(d) == 4 and d.y.tolist() == ["1", "1", "2", "2"]
    assert d.report.reasons()["malformed row"] == 1


def test_load_folder(tmp_path):
    for c, lines in {"pos": ["good film", "great plot", ""], "neg": ["bad film", "awful plot"], "empty": ["!!!", "..."]}.items():
        (tmp_path / c).mkdir()
        write(tmp_path / c / "a.txt", "\n".join(lines) + "\n")
    d = load_texts(tmp_path)
    assert sorted(set(d.y.tolist())) == ["neg", "pos"]  # "empty" class skipped after cleaning, with reasons
    assert d.report.reasons()["punctuation only"] == 2
    assert d.sources[0].startswith("neg/a.txt:")


def test_cleaning_reasons(tmp_path):
    long = "word " * 30000  # ~150k characters
    text = ("text,label\nfine sentence,A\nfine sentence,A\n   ,A\n?!?,A\n" + f"{long},A\n"
            "another one,A\nb one,B\nb two,B\nlonely,C\n")
    d = load_texts(write(tmp_path / "d.csv", text))
    reasons = d.report.reasons()
    assert reasons["duplicate"] == 1 and reasons["empty"] == 1 and reasons["punctuation only"] == 1
    assert reasons["too long"] == 1 and reasons["singleton class"] == 1
    assert all(len(t) <= 1000 for t in d.X)
    assert sorted(set(d.y.tolist())) == ["A", "B"]


def test_max_chars_configurable(tmp_path):
    text = "text,label\nshort a,A\nshort b,A\nshort c,B\nshort d,B\na much longer sentence,B\n"
    d = load_texts(write(tmp_path / "d.csv", text), config=TextCleaningConfig(max_chars=10))
    assert d.X == ["short a", "short b", "short c", "short d"]
    assert d.report.dropped[0].reason == "too long: 22 characters > 10"
    with pytest.raises(InvalidInputError, match="`max_chars` must be an int >= 1; got 0"):
        TextCleaningConfig(max_chars=0)


def test_per_class(tmp_path):
    rows = "".join(f"sentence number {i},{'AB'[i % 2]}\n" for i in range(40))
    d = load_texts(write(tmp_path / "d.csv", "text,label\n" + rows), per_class=5)
    assert len(d) == 10 and (d.y == "A").sum() == 5
    assert d.report.kept == 40 and d.report.used == 10  # the summary says which items are used
    assert d.report.summary().startswith("using 10 of 40 clean items (a draw per class); cleaning dropped none")


@pytest.mark.parametrize(
    "content, match",
    [
        ("", r"d\.csv is empty\."),
        ("sentence,class\na,b\n", r"header has no column 'text', 'label'"),
        ("text,label\nonly one,A\nanother,A\n", r"1 class\(es\) left after cleaning"),
        ("text,label\nonly one,A\nanother,A\nlonely,B\n", r"1 class\(es\) left after cleaning \(kept 2 items, dropped 1"),
        ("text,label\n!!!,A\n...,B\n", r"no sentence left after cleaning"),
        # a stray opening quote would otherwise swallow every later row into one field, silently
        ("text,label\nwhat is a cat ?,DESC\n\"who wrote hamlet ?,HUM\nwho built rome ?,HUM\nwhere is rome ?,LOC\n",
         r"d\.csv:3: a quote opened on this line is never closed"),
    ],
)
def test_bad_csv_one_line_errors(tmp_path, content, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        load_texts(write(tmp_path / "d.csv", content))
    assert "\n" not in str(info.value)


def test_sources_name_the_physical_line_after_a_multi_line_field(tmp_path):
    d = load_texts(write(tmp_path / "d.csv", 'text,label\n"what is\na cat ?",DESC\nwhat is a dog ?,DESC\nwho is he ?,HUM\nwho am i ?,HUM\n'))
    assert d.X[0] == "what is a cat ?" and d.sources[:2] == ["d.csv:2", "d.csv:4"]


def test_wrong_encoding_is_refused(tmp_path):
    text = "text,label\n" + "".join(f"caf\u00e9 number {i},{'AB'[i % 2]}\n" for i in range(20))
    path = write(tmp_path / "latin.csv", text, encoding="latin-1")
    with pytest.raises(InvalidInputError, match=r"latin\.csv is not UTF-8: 20 of 20 rows.*re-save it as UTF-8") as info:
        load_texts(path)
    assert "\n" not in str(info.value)


def test_few_undecodable_rows_are_skipped(tmp_path):
    good = "".join(f"sentence number {i},{'AB'[i % 2]}\n" for i in range(200))
    raw = ("text,label\n" + good).encode() + b"bad \xff\xfe row,A\n"
    d = load_texts(write(tmp_path / "d.csv", raw))
    assert len(d) == 200 and d.report.reasons()["undecodable"] == 1


def test_missing_path_and_unknown_suffix(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_texts(tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        load_texts(write(tmp_path / "d.xlsx", CSV))


def test_jsonl_without_fields(tmp_path):
    with pytest.raises(InvalidInputError, match=r"no record has the field 'text'"):
        load_texts(write(tmp_path / "d.jsonl", '{"sentence": "a", "label": "x"}\n'))


def test_modality_load_rejects_unknown_options(tmp_path):
    path = write(tmp_path / "d.csv", CSV)
    assert len(MODALITY.load(str(path), max_chars=500)) == 4
    with pytest.raises(InvalidInputError, match="unknown text loading option"):
        MODALITY.load(str(path), max_chars_typo=5)
    assert isinstance(MODALITY.load(str(path)).y, np.ndarray)


def test_cli_options_roundtrip(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    MODALITY.add_cli_arguments(parser)
    args = parser.parse_args(["--text-column", "q", "--label-column", "cls", "--max-chars", "50"])
    opts = MODALITY.load_options(args)
    assert opts == {"text_column": "q", "label_column": "cls", "format": None, "max_chars": 50}
    path = write(tmp_path / "d.tsv", "cls\tq\nA\tx one\nA\tx two\nB\ty one\nB\ty two\n")
    assert len(MODALITY.load(str(path), split="test", **opts)) == 4


JSONL_OK = "".join(json.dumps({"text": t, "label": c}) + "\n" for t, c in
                   [("a cat sat", "A"), ("a dog ran", "A"), ("who is he", "B"), ("who was she", "B")])


@pytest.mark.parametrize(
    "line, reason",
    [
        ("[" * 5000 + "]" * 5000, "malformed row: JSON nested deeper than 64 levels"),
        ('{"text": ' + "[" * 3000 + "1" + "]" * 3000 + ', "label": "A"}', "malformed row: JSON nested deeper"),
        ('{"text": "bad \\ud800 escape", "label": "A"}', "invalid unicode"),
        ('{"text": "fine", "label": "\\udfff"}', "invalid unicode"),
        ('{"text": "' + "x" * 1_000_001 + '", "label": "A"}', "too long: a line of"),
        ("not json at all", "malformed row: not valid JSON"),
        ('["a list", "B"]', "malformed row: a JSON list, not an object"),
        ('{"text": ["a", "list"], "label": "A"}', "malformed row: field 'text' holds a JSON list, not text"),
    ],
    ids=["deep array", "deep field", "surrogate text", "surrogate label", "long line", "not json", "a list", "list text"],
)
def test_jsonl_bad_lines_are_skipped_with_a_reason(tmp_path, line, reason):
    d = load_texts(write(tmp_path / "d.jsonl", JSONL_OK + line + "\n"))
    assert len(d) == 4
    assert [x.reason for x in d.report.dropped][0].startswith(reason)
    assert all(isinstance(t, str) and t.encode("utf-8") for t in d.X)  # valid Unicode only


def test_folder_split_and_unreadable_files(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for c in "AB":
            (tmp_path / split / c).mkdir(parents=True)
            write(tmp_path / split / c / "s.txt", "".join(f"{c} sentence {i}\n" for i in range(n)))
    (tmp_path / "train" / "A" / "loop.txt").symlink_to(tmp_path / "train" / "A" / "loop.txt")
    train = MODALITY.load(str(tmp_path))
    assert sorted(set(train.y.tolist())) == ["A", "B"] and len(train) == 6 and train.meta["split"] == "train"
    assert train.report.dropped[0].reason.startswith("unreadable")
    test = MODALITY.load(str(tmp_path), split="test", clean=False)
    assert len(test) == 4 and test.meta["split"] == "test"


def test_clean_false_keeps_duplicates_and_single_sentence_classes(tmp_path):
    path = write(tmp_path / "d.csv", CSV + "what is a cat ?,DESC\nalone here,LOC\n")
    assert len(load_texts(path)) == 4
    assert len(load_texts(path, clean=False)) == 6


def test_a_text_outputs_folder_stands_for_its_samples_csv(tmp_path):
    """samples/ or reserve/ of a text output hold samples.csv, not class folders: they load as it."""
    from imagina.text.export import write_items

    write_items(tmp_path / "reserve", ["who wrote the poem ?", "where is the tower ?"] * 2, np.array(["HUM", "LOC"] * 2),
                [f"s{i}" for i in range(4)])
    d = load_texts(tmp_path / "reserve", clean=False)
    assert d.X[:2] == ["who wrote the poem ?", "where is the tower ?"] and d.y.tolist()[:2] == ["HUM", "LOC"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="holds no class sub-folders"):
        load_texts(tmp_path / "empty")
