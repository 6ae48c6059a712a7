"""Fluency of generated text (issue 20): whole-word decoding, the unknown-word check, the bigram
perplexity and the fluency statistics in ``set_statistics``; the benchmark's smoke mode."""

import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from text_factories import TINY_VAE, make_texts

from imagina.core.errors import InvalidInputError, MissingDependencyError
from imagina.core.generator import load_model
from imagina.core.modality import LabeledData
from imagina.text import ConditionalSeqVAE, SeqVAEConfig
from imagina.text.modality import TextModality
from imagina.text.sanity import (
    BigramLM,
    TextSanityConfig,
    distinct_n,
    fluency_statistics,
    heldout_perplexity,
    known_words,
    size_matched,
    text_sanity,
)
from imagina.text.tokenizer import word_tokens

REAL = ["what is a cat ?", "what is a dog ?", "who wrote the poem ?", "who built the tower ?"]


def _words(texts):
    return {w for t in texts for w in word_tokens(t) if w[0].isalnum()}


def test_bigram_lm_is_a_distribution_and_prefers_real_order():
    lm = BigramLM().fit(REAL)
    vocab = sorted(lm.vocab_)  # every word and punctuation mark seen, </s> and <unk>
    for context in ("<s>", "what", "?", "never-seen"):
        total = 0.0
        for w in vocab:
            cv = lm.context_.get(context, 0)
            p = lm._p_cont(w)
            if cv:
                p = max(lm.pairs_.get((context, w), 0) - lm.discount, 0.0) / cv + lm.discount * lm.followers_[context] / cv * p
            total += p
        assert total == pytest.approx(1.0)
    assert lm.perplexity(["what is a dog ?"]) < lm.perplexity(["dog a is what ?"]) < lm.perplexity(["zz qq xx yy ?"])
    assert math.isnan(lm.perplexity([]))
    lp, n = lm.log_prob("what is a cat ?")
    assert n == 6 and lp < 0  # 5 tokens + </s>


def test_heldout_perplexity_and_fluency_statistics():
    X, _ = make_texts(10)
    # each real sentence scored by a model that never saw it: above the in-sample perplexity
    assert heldout_perplexity(X) > BigramLM().fit(X).perplexity(X)
    stats = fluency_statistics(X, X)
    assert stats["known-words"] == 1.0 and stats["perplexity"] == pytest.approx(heldout_perplexity(X))
    stats = fluency_statistics(["what is a cat ?", "what is a caat ?"], REAL)
    assert stats["known-words"] == 0.5 and stats["perplexity"] > 1.0


def test_word_list_from_wordfreq(monkeypatch):
    fake = types.ModuleType("wordfreq")
    fake.top_n_list = lambda lang, n: ["The", "river", "bridge", "don't"][:n]
    monkeypatch.setitem(sys.modules, "wordfreq", fake)
    assert known_words(["a cat"], word_list=2) == {"a", "cat", "the", "river"}
    res = text_sanity(["what is a river ?", "what is a bridge ?"], np.array(["x", "x"]),
                      real=LabeledData(REAL, np.array(["x"] * 4)), config=TextSanityConfig(word_list=2))
    assert res.reasons[0] is None and res.reasons[1].startswith("invented words")
    assert "don't" not in known_words([], word_list=4)  # the checks split it: no one word

    class Spelling:  # a generator whose decoder may spell the list's first 3 words
        config = types.SimpleNamespace(word_list=3)

        def log_likelihood(self, X, y):
            return np.zeros(len(X))

    res = text_sanity(["what is a river ?", "what is a bridge ?"], np.array(["x", "x"]), generator=Spelling(),
                      real=LabeledData(REAL, np.array(["x"] * 4)))
    assert res.reasons == [None, None]
    monkeypatch.setitem(sys.modules, "wordfreq", None)  # not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'imagina\[wordlist\]'"):
        known_words(REAL, word_list=10)
    with pytest.raises(InvalidInputError, match="`word_list` must be an int >= 0"):
        TextSanityConfig(word_list=-1)


def test_default_model_spells_only_real_words_and_reloads_identically(tmp_path):
    X, y = make_texts(10)
    vae = ConditionalSeqVAE(SeqVAEConfig(**TINY_VAE), device="cpu", seed=0).fit(X, y, progress=False)
    assert vae.config.whole_words
    texts, _ = vae.sample(30, seed=0)
    cut = [t for t in texts if len(vae.tokenizer_.tokenize_ids([t])[0]) < TINY_VAE["max_len"] - 2]
    assert cut and _words(cut) <= _words(X)  # sentences not cut by the length cap: whole real words only
    vae.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu")
    for method in ("around", "prior", "mix"):
        assert loaded.sample(12, seed=3, method=method)[0] == vae.sample(12, seed=3, method=method)[0]


@pytest.mark.slow
def test_every_kept_sentence_is_made_of_known_words(tmp_path):
    from imagina.core.pipeline import AugmentConfig, Augmenter

    X, y = make_texts(10)
    modality = TextModality()
    options = {k: v for k, v in TINY_VAE.items() if k != "steps"}
    aug = Augmenter(modality, AugmentConfig(per_class=4, oversample=2.0, steps=3, device="cpu", top_up_rounds=1),
                    generator_options=options, progress=False)
    result = aug.fit(LabeledData(X, y)).augment()
    kept = result.kept().X
    assert _words(kept) <= _words(X)
    stats = result.metrics["set_statistics"]
    assert stats["real"]["known-words"] == 1.0
    assert stats["real"]["perplexity"] == pytest.approx(heldout_perplexity(X))
    assert stats["candidates"]["perplexity"] == pytest.approx(BigramLM().fit(X).perplexity(result.candidates))
    if len(kept):
        assert stats["kept"]["known-words"] == 1.0
    report = (result.export(tmp_path / "out") / "report.md").read_text(encoding="utf-8")
    assert ("| set | distinct-1 | distinct-2 | self-BLEU | distinct-1 @ real size | distinct-2 @ real size | known-words "
            "| perplexity |") in report


def test_set_statistics_with_explicit_real():
    stats = TextModality().set_statistics(["what is a caat ?", "who built the tower ?"], real=REAL)
    assert stats["known-words"] == 0.5 and {"distinct-2", "self-BLEU", "perplexity"} <= set(stats)
    assert set(TextModality().set_statistics(REAL)) == {"distinct-1", "distinct-2", "self-BLEU"}  # no reference yet


def test_distinct_n_is_also_given_at_the_real_sets_size():
    """distinct-n falls as a set grows: a larger set is measured again on a subsample of the real set's size."""
    many = [f"who built the tower number {i} ?" for i in range(40)]
    stats = TextModality().set_statistics(many, real=REAL)
    assert stats["distinct-2"] < stats["distinct-2 @ real size"]  # 40 sentences share more bigrams than a few
    matched = size_matched(many, len(REAL), np.random.default_rng(0))
    assert len(matched) == len(REAL) and stats["distinct-2 @ real size"] == distinct_n(matched, 2)
    assert size_matched(REAL, 100, np.random.default_rng(0)) == list(REAL)  # a smaller set is taken whole


@pytest.mark.slow
def test_text_fluency_benchmark_smoke():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "text_fluency.py"
    proc = subprocess.run([sys.executable, str(script), "--smoke"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\| tiny \| after \| 0 \| kept \| \d+ \| 100\.0 % \|", proc.stdout)  # every kept word known
    assert "First 20 kept sentences, tiny, after, seed 0" in proc.stdout
