"""Sanity checks, set statistics, embedders, export and the evaluation task of the text modality."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from text_factories import TINY_VAE, make_texts

from imagina.core.errors import InvalidInputError, NotFittedError
from imagina.core.modality import LabeledData
from imagina.core.screening import Screen
from imagina.text import (
    MODALITY,
    CharNgrams,
    ConditionalSeqVAE,
    SentenceTransformerEmbedder,
    SeqVAEConfig,
    TextEmbedder,
    TextEvalTask,
    TokenCNN,
    WordVocab,
    distinct_n,
    ngram_overlap,
    self_bleu,
    text_sanity,
    tfidf_accuracy,
)
from imagina.text.eda import apply_operation, eda_batch, synonym_table
from imagina.text.sanity import TextSanityConfig, bigram_rarity, normalized_key

REAL = LabeledData(["who wrote the poem about the river ?", "where is the tower ?", "how old is the ship ?"],
                   np.array(["HUM", "LOC", "NUM"]))


def test_sanity_reasons():
    cands = ["", "?!", "who ?", "who wrote the poem about the river ?", "Who wrote the poem, about the river",
             "who wrote the poem about the river , i ?", "where can i buy a new blue lamp ?"]
    y = np.array(["HUM"] * 7)
    res = text_sanity(cands, y, real=REAL, config=TextSanityConfig(max_ngram_overlap=0.5, max_new_words=1.0))
    assert res.reasons[0] == "empty"
    assert res.reasons[1] == "punctuation only"
    assert res.reasons[2] == "too short: 1 words < 3"
    assert res.reasons[3] == "copy: exact copy of a real sentence"
    assert res.reasons[4] == "copy: same as a real sentence up to case and punctuation"
    assert res.reasons[5].startswith("copy: 3-gram overlap")
    assert res.reasons[6] is None
    assert set(res.scores) == {"words", "ngram_overlap", "new_words", "bigram_rarity"}
    assert res.scores["ngram_overlap"][3] == 1.0 and res.scores["ngram_overlap"][6] < 0.3
    assert res.scores["new_words"][3] == 0.0 and res.scores["new_words"][6] == pytest.approx(7 / 8)


def test_bigram_rarity_discounts_repeated_sentences():
    cands = ["where is the old tower ?"] * 4 + ["where is the blue river ?", "who wrote the poem ?", "x"]
    y = np.array(["LOC"] * 5 + ["HUM"] * 2)
    passing = np.array([True] * 6 + [False])
    rarity = bigram_rarity(cands, y, passing)
    # 4 copies: every bigram held by 4 (or, for "where is", "is the", 5) candidates of the class
    assert rarity[0] == pytest.approx((2 / 5 + 3 / 4) / 5) and np.all(rarity[:4] == rarity[0])
    assert rarity[4] == pytest.approx((2 / 5 + 3) / 5)
    assert rarity[5] == 1.0  # alone in its class: all its bigrams are its own
    assert np.isnan(rarity[6])  # not passing: not scored
    assert "bigram_rarity" in text_sanity(cands, y, real=REAL).scores


def test_text_screen_keeps_distinct_sentences_from_a_repetitive_pool():
    """A class pool in which one sentence comes 60 times and 60 others once each: the text screen's
    rarity-weighted draw keeps fewer copies and more distinct bigrams than the uniform draw."""
    rng = np.random.default_rng(0)
    words = ["tower", "river", "ship", "poem", "lamp", "city", "road", "bridge", "lake", "hill", "park", "wall",
             "green", "old", "small", "near", "under", "by", "with", "from", "red", "tall", "dark", "long"]
    distinct = [" ".join(rng.permutation(words)[:5]) + " ?" for _ in range(60)]
    cands = ["where is the tower ?"] * 60 + distinct
    y = np.array(["LOC"] * len(cands))
    real = LabeledData(["where is the old mill ?", "where can i see the sea ?", "who wrote the song ?",
                        "who built the dam ?", "how old is the ship ?", "how far is the moon ?"],
                       np.array(["LOC", "LOC", "HUM", "HUM", "NUM", "NUM"]))
    checks = text_sanity(cands, y, real=real, config=TextSanityConfig(max_new_words=1.0))
    assert all(r is None for r in checks.reasons)
    # random embeddings: the embedding's redundancy test cannot see that the copies are copies
    emb_real = rng.normal(size=(len(real), 8)).astype(np.float32)
    emb = rng.normal(size=(len(cands), 8)).astype(np.float32)
    text_default = replace(MODALITY.augment_defaults["screen"], copy_ratio=0.0, duplicate_ratio=0.0)
    assert text_default.priority_score == "bigram_rarity" and text_default.priority_power > 0
    kept, uniform = (
        [cands[i] for i in np.flatnonzero(Screen(cfg).fit(emb_real, real.y).score(emb, y, checks=checks, budget_per_class=30).keep)]
        for cfg in (text_default, replace(text_default, priority_power=0.0)))
    assert len(kept) == len(uniform) == 30
    copies = kept.count("where is the tower ?")
    assert copies <= 6 and copies < uniform.count("where is the tower ?")
    assert len(set(kept)) > len(set(uniform)) and distinct_n(kept, 2) > distinct_n(uniform, 2) + 0.05


def test_sanity_invented_words():
    cands = ["who wrote the helicicsicst poem ?", "who wrote the tower river poem ?", "who wrote the zzq qqz ?"]
    res = text_sanity(cands, np.array(["HUM"] * 3), real=REAL, config=TextSanityConfig(max_new_words=0.2))
    assert res.scores["new_words"].tolist() == pytest.approx([0.2, 0.0, 0.4])
    assert res.reasons[:2] == [None, None]  # 1 invented word of 5 is not more than 20 %
    assert res.reasons[2] == "invented words: 40% of its words are unknown > 20%"
    # the default rejects a sentence with any invented word
    res = text_sanity(cands, np.array(["HUM"] * 3), real=REAL)
    assert res.reasons[0] == "invented words: 20% of its words are unknown > 0%"
    assert res.reasons[1] is None and res.reasons[2].startswith("invented words")


def test_sanity_with_generator_fluency():
    X, y = make_texts(8)
    cfg = SeqVAEConfig(**{**TINY_VAE, "steps": 150, "hidden_dim": 32, "embed_dim": 32, "lr": 1e-2})
    vae = ConditionalSeqVAE(cfg, device="cpu").fit(X, y, progress=False)
    real = LabeledData(X, y)
    cands = ["who wrote the telescope book ?", "zz qq xx yy ww vv uu tt ss rr pp"]
    res = text_sanity(cands, np.array(["HUM", "HUM"]), generator=vae, real=real,
                      config=TextSanityConfig(fluency_margin=0.0, fluency_quantile=0.5, max_new_words=1.0))
    assert res.scores["fluency"].shape == (2,)
    assert res.scores["fluency"][0] > res.scores["fluency"][1]
    assert res.reasons[1].startswith("disfluent: log-likelihood")
    assert len(MODALITY.sanity(cands, np.array(["HUM", "HUM"]), generator=vae, real=real).reasons) == 2


def test_sanity_bad_lengths():
    with pytest.raises(InvalidInputError, match="one label per sentence"):
        text_sanity(["a b c"], np.array(["x", "y"]))


def test_normalized_key_and_overlap():
    assert normalized_key("  What's UP?? ") == "what s up"
    ov, nearest = ngram_overlap(["a b c d", "x y z"], ["a b c d", "q r s"])
    assert ov[0] == 1.0 and nearest[0] == 0 and nearest[1] == -1 and ov[1] == 0.0


def test_distinct_n():
    assert distinct_n(["a b c", "a b c"], 2) == 0.5
    assert distinct_n(["a b", "c d"], 1) == 1.0
    assert distinct_n([], 2) == 0.0


def test_self_bleu_matches_bruteforce_and_orders_diversity():
    same = ["the cat sat on the mat"] * 4
    assert self_bleu(same) == pytest.approx(1.0)
    varied = ["the cat sat on the mat", "a dog ran in the park", "birds fly over blue seas", "my car is red now"]
    assert self_bleu(varied) < 0.3
    X, _ = make_texts(6)
    assert self_bleu(X, max_items=None) == pytest.approx(_brute_self_bleu(X), rel=1e-9)


def _brute_self_bleu(texts, max_n=4):
    import math
    from collections import Counter

    from imagina.text.tokenizer import word_tokens

    toks = [word_tokens(t) for t in texts]
    total = 0.0
    for i, h in enumerate(toks):
        refs = [r for j, r in enumerate(toks) if j != i]
        log_p = 0.0
        for n in range(1, max_n + 1):
            hc = Counter(tuple(h[k:k + n]) for k in range(len(h) - n + 1))
            clip = {g: max(Counter(tuple(r[k:k + n]) for k in range(len(r) - n + 1))[g] for r in refs) for g in hc}
            match = sum(min(c, clip[g]) for g, c in hc.items())
            denom = sum(hc.values())
            log_p += math.log(match / denom) if n == 1 else math.log((match + 1) / (denom + 1))
        ref_len = min((abs(len(r) - len(h)), len(r)) for r in refs)[1]
        bp = 1.0 if len(h) > ref_len else math.exp(1 - ref_len / len(h))
        total += bp * math.exp(log_p / max_n)
    return total / len(toks)


def test_default_embedder_shape_and_batch_independence():
    X, y = make_texts(8)
    emb = TextEmbedder(steps=5, device="cpu").fit(X, y)
    a = emb.embed(X, batch_size=5)
    b = emb.embed(X, batch_size=256)
    assert a.shape == (24, 192) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    with pytest.raises(NotFittedError):
        TextEmbedder().embed(X)


def test_char_ngrams_are_stable_bounded_and_follow_the_vocabulary():
    grams = CharNgrams(n_min=3, n_max=5, buckets=97, max_per_word=32)
    ids = grams.word_ids("carbonaq")  # "<carbonaq>": 8 + 7 + 6 trigrams..5-grams
    assert len(ids) == 21 and all(1 <= i <= 97 for i in ids)
    assert ids == CharNgrams(n_min=3, n_max=5, buckets=97).word_ids("carbonaq")  # same in every instance / process
    assert len(CharNgrams(max_per_word=4).word_ids("carbonaq")) == 4
    vocab = WordVocab().fit(["what is a cat ?"])
    enc = CharNgrams().encode(["what is a zebra ?", "cat"], vocab, max_len=6)
    assert enc.shape == (2, 6, 33)
    assert torch.equal(enc[..., 0], vocab.encode(["what is a zebra ?", "cat"], max_len=6))
    assert (enc[0, :5, 1] > 0).all() and (enc[0, 5] == 0).all() and (enc[1, 1:] == 0).all()


def test_default_embedder_tells_unseen_words_apart():
    """Word ids alone map every unseen word to UNK; the character n-grams keep them apart."""
    X, y = make_texts(8)
    new = ["what is carbonaq ?", "what is zyxwvut ?"]
    words_only = TextEmbedder(steps=5, device="cpu", ngram_buckets=0).fit(X, y).embed(new)
    np.testing.assert_allclose(words_only[0], words_only[1], atol=1e-6)
    emb = TextEmbedder(steps=5, device="cpu").fit(X, y)
    both = emb.embed(new)
    assert float(both[0] @ both[1]) < 0.999
    # padding to a longer neighbour changes nothing
    np.testing.assert_allclose(emb.embed(new[:1])[0], emb.embed([new[0], " ".join(["cat"] * 30)])[0], atol=1e-5)
    with pytest.raises(ValueError, match="n-gram"):
        TokenCNN(10)(torch.zeros(2, 3, 4, dtype=torch.long))


def test_sentence_transformer_embedder_with_local_tiny_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers >= 6 moved the modules
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    X, _ = make_texts(4)
    words = sorted({w for t in X for w in t.split()})
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(bert / "vocab.txt")).save_pretrained(bert)
    cfg = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(cfg).save_pretrained(bert)
    word = Transformer(str(bert), max_seq_length=32)
    dim = word.get_embedding_dimension() if hasattr(word, "get_embedding_dimension") else word.get_word_embedding_dimension()
    SentenceTransformer(modules=[word, Pooling(dim)]).save(str(tmp_path / "st"))

    emb = MODALITY.make_embedder(seed=0, device="cpu", pretrained=str(tmp_path / "st"))
    assert isinstance(emb, SentenceTransformerEmbedder)
    out = emb.fit(X, None).embed(X, batch_size=3)
    assert out.shape == (len(X), 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, emb.embed(X, batch_size=64), atol=1e-5)
    with pytest.raises(InvalidInputError, match="does not exist"):
        SentenceTransformerEmbedder(tmp_path / "missing").embed(X)


def test_write_items_and_preview(tmp_path):
    X = ["hello , world", 'a "quoted" sentence']
    refs = MODALITY.write_items(tmp_path / "s", X, np.array(["A", "B"]), ["A_000001", "B_000002"])
    assert refs == ["samples.csv#row=1", "samples.csv#row=2"]
    with open(tmp_path / "s" / "samples.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[1] == {"id": "B_000002", "label": "B", "text": 'a "quoted" sentence'}
    lines = (tmp_path / "s" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["text"] == "hello , world"
    MODALITY.preview(tmp_path / "p.png", X * 3, np.array(["A", "B"] * 3), title="examples")
    assert (tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(InvalidInputError, match="same length"):
        MODALITY.write_items(tmp_path / "t", X, np.array(["A"]), ["a", "b"])


def test_eda_operations_and_batch():
    gen = np.random.default_rng(0)
    syn = np.full((10, 2), -1)
    syn[3] = [4, 5]
    assert sorted(apply_operation([2, 3, 4], "swap", 0.5, syn, gen)) == [2, 3, 4]
    assert len(apply_operation([2, 3, 4, 5], "delete", 0.9, syn, gen)) >= 1
    assert apply_operation([2, 3], "synonym", 1.0, syn, gen)[1] in (4, 5)
    assert len(apply_operation([2, 3], "insert", 0.5, syn, gen)) == 3
    for seed in range(50):  # inserting shifts positions: the source words must stay ones with synonyms
        assert len(apply_operation([3, 2, 2, 2, 2], "insert", 1.0, syn, np.random.default_rng(seed))) == 10
    ids = torch.tensor([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9]])
    before = ids.clone()
    out_a = eda_batch(ids, torch.Generator().manual_seed(1), alpha=0.2, synonyms=torch.as_tensor(syn))
    out_b = eda_batch(ids, torch.Generator().manual_seed(1), alpha=0.2, synonyms=torch.as_tensor(syn))
    assert torch.equal(ids, before) and torch.equal(out_a, out_b) and out_a.shape == ids.shape


def test_synonym_table_from_cooccurrence():
    X, _ = make_texts(12)
    vocab = WordVocab().fit(X)
    table = synonym_table(vocab.encode(X, max_len=12), len(vocab), k=3)
    assert table.shape == (len(vocab), 3)
    assert (table[:2] == -1).all()  # PAD and UNK have no synonyms
    assert (table[2:, 0] >= 2).any()


def test_eval_task_and_core_evaluate():
    from imagina.core.evaluation import EvalConfig, evaluate

    X, y = make_texts(12)
    Xt, yt = make_texts(12, seed=1)
    task = MODALITY.evaluation_task()
    assert isinstance(task, TextEvalTask)
    task.steps = 5
    syn = LabeledData(X[:9], y[:9])
    report = evaluate(task, LabeledData(X, y), LabeledData(Xt, yt), screened=syn, unscreened=syn,
                      config=EvalConfig(seeds=(0, 1), device="cpu"), progress=False)
    assert set(report.conditions) >= {"real", "real+classical", "real+screened", "real+unscreened",
                                      "real+classical+screened", "synthetic-only"}
    assert report.conditions["real+classical"].setting.startswith("EDA alpha=")
    assert all(0.0 <= a <= 1.0 for c in report.conditions.values() for a in c.accuracies)


def test_tfidf_accuracy():
    X, y = make_texts(12)
    Xt, yt = make_texts(12, seed=1)
    assert tfidf_accuracy(X, y, Xt, yt) > 0.9
    assert 0.0 <= tfidf_accuracy(X[:6], y[:6], Xt, yt, extra_texts=X[6:], extra_y=y[6:]) <= 1.0
