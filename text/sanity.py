"""Text checks of generated sentences, and diversity statistics of a set of sentences.

Per candidate (:func:`text_sanity`): empty or too short, punctuation only, exact and normalised
(lowercase, punctuation removed) copies of real sentences, the n-gram overlap (Jaccard of word
3-gram sets) with the nearest real sentence, the share of invented words (words found in no real
sentence nor in the optional English word list: a subword decoder glues pieces into non-words such as "helicicsicst"), and the fluency
(per-token log-likelihood under the sequence VAE's decoder) when the generator is given. Each
failing candidate gets a reason.

Of a set (:func:`distinct_n`, :func:`self_bleu`, :func:`fluency_statistics`): the share of distinct
n-grams (Li et al. 2016), the mean BLEU of each sentence against all the others (Zhu et al. 2018,
Texygen), the share of sentences made only of known words and a word bigram perplexity under a
Kneser-Ney model of the real sentences.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imagina.core.errors import InvalidInputError, MissingDependencyError, check_float, check_int
from imagina.core.modality import LabeledData, SanityResult
from imagina.text.data import has_word_character, normalize_text
from imagina.text.tokenizer import word_tokens

logger = logging.getLogger(__name__)

_PUNCT = re.compile(r"[^\w\s]")


@dataclass(frozen=True, kw_only=True)
class TextSanityConfig:
    """Thresholds of :func:`text_sanity`.

    min_words : fewer words (letters/digits runs) is ``too short``.
    max_ngram_overlap : reject a candidate whose word-``ngram`` Jaccard overlap with its nearest real
        sentence reaches this (a near-copy).
    fluency_margin : reject a candidate whose fluency is below the ``fluency_quantile`` of the real
        sentences' fluency minus this margin (nats per token).
    max_new_words : reject a candidate in which more than this share of the words (``\\w+`` runs,
        case-insensitive) is unknown: found in no real sentence nor in the optional word list (1.0:
        never). The default, 0, rejects any sentence with an invented word: a subword decoder glues
        pieces into non-words, and a kept sentence should read as the user's language. The sequence
        VAE decodes whole words by default (``SeqVAEConfig.whole_words``), so the check costs it little.
    word_list : also count as known the ``word_list`` most frequent English words of the ``wordfreq``
        package (the optional extra ``imagina[wordlist]``); 0 (the default) knows only the words of the
        real sentences. A generator whose own ``word_list`` is larger (``SeqVAEConfig.word_list``) has
        its list accepted too, since its decoder may spell those words.
    """

    min_words: int = 3
    ngram: int = 3
    max_ngram_overlap: float = 0.6
    fluency_quantile: float = 0.05
    fluency_margin: float = 1.0
    max_new_words: float = 0.0
    word_list: int = 0

    def __post_init__(self) -> None:
        check_int("min_words", self.min_words, minimum=0)
        check_int("ngram", self.ngram, minimum=1)
        check_float("max_ngram_overlap", self.max_ngram_overlap, minimum=0.0, maximum=1.0)
        check_float("fluency_quantile", self.fluency_quantile, minimum=0.0, maximum=1.0)
        check_float("fluency_margin", self.fluency_margin, minimum=0.0)
        check_float("max_new_words", self.max_new_words, minimum=0.0, maximum=1.0)
        check_int("word_list", self.word_list, minimum=0)


def normalized_key(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed: ``"What's up?" -> "what s up"``."""
    return " ".join(_PUNCT.sub(" ", normalize_text(text).lower()).split())


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _padded_ngram_set(text: str, n: int) -> set[tuple[str, ...]]:
    # Boundary markers give every non-empty sentence at least one n-gram (for n <= 3).
    toks = ["<s>"] * (n - 1 if n > 1 else 0) + word_tokens(text) + ["</s>"]
    return set(_ngrams(toks, n)) if len(toks) >= n else {tuple(toks)}


def ngram_overlap(candidates: Sequence[str], references: Sequence[str], *, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Largest Jaccard overlap of word n-gram sets between each candidate and any reference.

    Returns
    -------
    overlap : ndarray of shape (n_candidates,), float in [0, 1]
    nearest : ndarray of shape (n_candidates,), int: index of that reference (-1 when none shares an n-gram)
    """
    ref_sets = [_padded_ngram_set(r, n) for r in references]
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, s in enumerate(ref_sets):
        for g in s:
            index[g].append(j)
    overlap = np.zeros(len(candidates))
    nearest = np.full(len(candidates), -1, dtype=np.int64)
    for i, cand in enumerate(candidates):
        cs = _padded_ngram_set(cand, n)
        shared = Counter(j for g in cs for j in index.get(g, ()))
        best, arg = 0.0, -1
        for j, k in shared.items():
            jac = k / (len(cs) + len(ref_sets[j]) - k)
            if jac > best:
                best, arg = jac, j
        overlap[i], nearest[i] = best, arg
    return overlap, nearest


def text_sanity(
    X: Sequence[str],
    y: np.ndarray,
    *,
    generator: Any = None,
    real: LabeledData | None = None,
    config: TextSanityConfig | None = None,
) -> SanityResult:
    """Check candidate sentences.

    Parameters
    ----------
    X : list of n str
    y : ndarray of shape (n,), conditioning labels
    generator : a fitted :class:`~imagina.core.generator.Generator`, optional; its ``log_likelihood`` (the
        sequence VAE's; None for a model without one) gives ``fluency``
    real : LabeledData of the real sentences, optional (copies and n-gram overlap need it)

    Returns
    -------
    SanityResult
        scores ``words``, ``ngram_overlap`` and ``new_words`` (with ``real``), ``fluency`` (with
        ``generator``), ``bigram_rarity`` among the candidates that pass (:func:`bigram_rarity`; nan
        for the others); reasons such as ``empty``, ``too short: 2 words < 3``, ``copy: exact copy of a
        real sentence``.
    """
    cfg = config or TextSanityConfig()
    texts = [normalize_text(t) if isinstance(t, str) else "" for t in X]
    y = np.asarray(y)
    if len(y) != len(texts):
        raise InvalidInputError(f"`y` must hold one label per sentence ({len(texts)}); got {len(y)}.")
    n = len(texts)
    reasons: list[str | None] = [None] * n
    words = np.array([len(_words(t)) for t in texts], dtype=float)
    scores: dict[str, np.ndarray] = {"words": words}
    for i, t in enumerate(texts):
        if not t:
            reasons[i] = "empty"
        elif not has_word_character(t):
            reasons[i] = "punctuation only"
        elif words[i] < cfg.min_words:
            reasons[i] = f"too short: {int(words[i])} words < {cfg.min_words}"

    if real is not None and len(real):
        exact = set(normalize_text(t) for t in real.X)
        loose = set(normalized_key(t) for t in real.X)
        overlap, _ = ngram_overlap(texts, list(real.X), n=cfg.ngram)
        scores["ngram_overlap"] = overlap
        # The generator may spell the English words its own ``word_list`` opened to it.
        spelled = getattr(getattr(generator, "config", None), "word_list", 0)
        lexicon = known_words(real.X, word_list=max(cfg.word_list, spelled if isinstance(spelled, int) else 0))
        new_words = np.array([_new_word_share(t, lexicon) for t in texts])
        scores["new_words"] = new_words
        for i, t in enumerate(texts):
            if reasons[i] is not None:
                continue
            if t in exact:
                reasons[i] = "copy: exact copy of a real sentence"
            elif normalized_key(t) in loose:
                reasons[i] = "copy: same as a real sentence up to case and punctuation"
            elif overlap[i] >= cfg.max_ngram_overlap:
                reasons[i] = f"copy: {cfg.ngram}-gram overlap {overlap[i]:.2f} >= {cfg.max_ngram_overlap} with a real sentence"
            elif new_words[i] > cfg.max_new_words:
                reasons[i] = f"invented words: {new_words[i]:.0%} of its words are unknown > {cfg.max_new_words:.0%}"

    fluency = generator.log_likelihood([t if t else "." for t in texts], y) if generator is not None and n else None
    if fluency is not None:
        fluency = np.asarray(fluency, dtype=float)
        scores["fluency"] = fluency
        if real is not None and len(real):
            ref = np.asarray(generator.log_likelihood(list(real.X), real.y), dtype=float)
            threshold = float(np.quantile(ref, cfg.fluency_quantile)) - cfg.fluency_margin
            for i in range(n):
                if reasons[i] is None and fluency[i] < threshold:
                    reasons[i] = f"disfluent: log-likelihood {fluency[i]:.2f} < {threshold:.2f} nats/token"
    scores["bigram_rarity"] = bigram_rarity(texts, y, np.array([r is None for r in reasons], dtype=bool))
    return SanityResult(scores, reasons)


def bigram_rarity(texts: Sequence[str], y: np.ndarray, passing: np.ndarray | None = None) -> np.ndarray:
    """How little of a sentence the other candidates of its class repeat: the mean, over its distinct
    word bigrams, of 1 / (number of candidates of its class, itself included, that hold the bigram).

    A sentence whose bigrams no other candidate has scores 1; k exact copies score 1/k each, so a
    draw weighted by it takes a repeated sentence about as often as a single one, and a sentence of
    stock phrases that many candidates share ("what is the", "the abbreviation for") less often than
    one that adds word pairs of its own. The text screen weights its random pick by this score
    (``ScreenConfig.priority_score``): it raises distinct-2 of the kept set.

    Parameters
    ----------
    texts : list of n str
    y : ndarray of shape (n,), labels (counts are per class)
    passing : ndarray of shape (n,), bool, optional: only these candidates count and are scored

    Returns
    -------
    ndarray of shape (n,), float in (0, 1]; nan for candidates not ``passing``; 1 for a sentence
    with fewer than two tokens.
    """
    y = np.asarray(y)
    passing = np.ones(len(texts), dtype=bool) if passing is None else np.asarray(passing, dtype=bool)
    out = np.full(len(texts), np.nan)
    for c in np.unique(y[passing]):
        rows = np.flatnonzero(passing & (y == c)).tolist()
        grams = [set(_ngrams(word_tokens(texts[i]), 2)) for i in rows]
        count = Counter(g for s in grams for g in s)
        out[rows] = [sum(1.0 / count[g] for g in s) / len(s) if s else 1.0 for s in grams]
    return out


def _words(text: str) -> list[str]:
    """Lowercased ``\\w+`` runs of ``text`` (punctuation marks left out)."""
    return [w for w in word_tokens(text) if w[0].isalnum() or w[0] == "_"]


def _new_word_share(text: str, lexicon: set[str]) -> float:
    words = _words(text)
    return sum(w not in lexicon for w in words) / len(words) if words else 0.0


def known_words(texts: Sequence[str], *, word_list: int = 0) -> set[str]:
    """Lowercased words (``\\w+`` runs) of ``texts``, plus the ``word_list`` most frequent English words
    of ``wordfreq`` (optional dependency) when ``word_list`` > 0."""
    lexicon = {w for t in texts for w in _words(t)}
    lexicon.update(english_words(word_list))
    return lexicon


_WORD = re.compile(r"\w+")


def english_words(n: int) -> list[str]:
    """The ``n`` most frequent English words of ``wordfreq`` (the optional ``wordlist`` extra), lowercased,
    in frequency order, keeping only single ``\\w+`` runs (an entry such as "don't" is no one word to
    the checks, which split it); [] for ``n`` = 0.

    ``wordfreq``'s code is Apache-2.0 and its word lists CC-BY-SA 4.0 (with SUBTLEX and Google Books
    credits): imagina ships none of its data and only asks whether a word is on the list.
    """
    check_int("word_list", n, minimum=0)
    if not n:
        return []
    try:
        from wordfreq import top_n_list
    except ImportError:
        raise MissingDependencyError(
            "`word_list` > 0 needs the optional `wordfreq` package: pip install 'imagina[wordlist]'") from None
    return [w for w in (w.lower() for w in top_n_list("en", n)) if _WORD.fullmatch(w)]


class BigramLM:
    """Word bigram language model with interpolated Kneser-Ney smoothing (Chen & Goodman 1998).

    Tokens are :func:`~imagina.text.tokenizer.word_tokens` (lowercased words and punctuation marks)
    between ``<s>`` and ``</s>``. A word never seen in training counts as ``<unk>``, a type of its own
    with one continuation, so an invented word costs about as much as the rarest real word.

    Examples
    --------
    >>> lm = BigramLM().fit(["what is a cat ?", "what is a dog ?"])
    >>> lm.perplexity(["what is a cat ?"]) < lm.perplexity(["cat a is what ?"])
    True
    """

    def __init__(self, *, discount: float = 0.75) -> None:
        self.discount = check_float("discount", discount, minimum=0.0, maximum=1.0)

    def fit(self, texts: Sequence[str]) -> BigramLM:
        pairs: Counter[tuple[str, str]] = Counter()
        for t in texts:
            toks = ["<s>", *word_tokens(t), "</s>"]
            pairs.update(zip(toks[:-1], toks[1:], strict=True))
        self.context_: Counter[str] = Counter()  # c(v)
        self.followers_: Counter[str] = Counter()  # N1+(v •)
        self.continuation_: Counter[str] = Counter()  # N1+(• w)
        for (v, w), c in pairs.items():
            self.context_[v] += c
            self.followers_[v] += 1
            self.continuation_[w] += 1
        self.pairs_ = pairs
        self.vocab_ = set(self.continuation_) | {"<unk>"}
        self.types_ = len(pairs)  # N1+(• •)
        return self

    def _p_cont(self, w: str) -> float:
        # add-one over the vocabulary (<unk> included): no word gets probability 0
        return (self.continuation_.get(w, 0) + 1) / (self.types_ + len(self.vocab_))

    def log_prob(self, text: str) -> tuple[float, int]:
        """Natural-log probability of ``text`` and its number of predicted tokens (words + ``</s>``)."""
        toks = ["<s>", *(w if w in self.vocab_ else "<unk>" for w in word_tokens(text)), "</s>"]
        total = 0.0
        for v, w in zip(toks[:-1], toks[1:], strict=True):
            cv = self.context_.get(v, 0)
            p = self._p_cont(w)
            if cv:
                d = self.discount
                p = max(self.pairs_.get((v, w), 0) - d, 0.0) / cv + d * self.followers_[v] / cv * p
            total += math.log(p)
        return total, len(toks) - 1

    def perplexity(self, texts: Sequence[str]) -> float:
        """exp of the mean negative log-probability per token over all of ``texts`` (nan for none)."""
        lp = [self.log_prob(t) for t in texts]
        n = sum(k for _, k in lp)
        return math.exp(-sum(v for v, _ in lp) / n) if n else float("nan")


def heldout_perplexity(texts: Sequence[str], *, folds: int = 5, seed: int = 0) -> float:
    """Perplexity of ``texts`` under bigram models fitted on the other folds (each sentence is scored by
    a model that never saw it): the real sentences' own reference figure."""
    texts = list(texts)
    if len(texts) < 2:
        return float("nan")
    fold = np.random.default_rng(seed).permutation(len(texts)) % min(folds, len(texts))
    log_p = n = 0.0
    for k in np.unique(fold):
        lm = BigramLM().fit([t for t, f in zip(texts, fold, strict=True) if f != k])
        for t in (t for t, f in zip(texts, fold, strict=True) if f == k):
            v, m = lm.log_prob(t)
            log_p, n = log_p + v, n + m
    return math.exp(-log_p / n)


def fluency_statistics(texts: Sequence[str], real: Sequence[str], *, word_list: int = 0,
                       lexicon: set[str] | None = None, lm: BigramLM | None = None) -> dict[str, float]:
    """Word-level fluency of a set of sentences against the real ones.

    ``known-words``: the share of sentences whose words (``\\w+`` runs) are all known (in a real
    sentence, or in the ``word_list`` most frequent English words); ``perplexity``: of a word bigram
    model (:class:`BigramLM`) fitted on ``real`` (lower is more like the real sentences). When ``texts``
    *are* the real sentences, the perplexity is cross-fitted (:func:`heldout_perplexity`), the figure
    the others compare with. ``lexicon`` and ``lm`` reuse ones built from ``real``.
    """
    texts, real = list(texts), list(real)
    lexicon = known_words(real, word_list=word_list) if lexicon is None else lexicon
    known = float(np.mean([_new_word_share(t, lexicon) == 0.0 for t in texts])) if texts else float("nan")
    if texts == real:
        ppl = heldout_perplexity(real)
    else:
        ppl = (lm or BigramLM().fit(real)).perplexity(texts)
    return {"known-words": known, "perplexity": ppl}


# --------------------------------------------------------------------------- set statistics
def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n: unique word n-grams / all word n-grams over the set (0 for no n-grams)."""
    check_int("n", n, minimum=1)
    grams = [g for t in texts for g in _ngrams(word_tokens(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def size_matched(texts: Sequence[str], size: int, rng: np.random.Generator) -> list[str]:
    """A random subsample of ``size`` sentences drawn with ``rng`` (all of them when there are fewer):
    distinct-n falls as a set grows, so sets of unequal size compare only at one size."""
    texts = list(texts)
    if len(texts) <= size:
        return texts
    return [texts[i] for i in sorted(rng.choice(len(texts), size, replace=False))]


def self_bleu(texts: Sequence[str], *, max_n: int = 4, max_items: int | None = 1000, seed: int = 0) -> float:
    """Self-BLEU: mean BLEU-``max_n`` of each sentence against all the other sentences as references.

    Higher means less diverse. BLEU uses clipped n-gram precisions, the closest reference length for
    the brevity penalty, and add-one smoothing for n > 1 (Lin & Och 2004). ``max_items`` subsamples
    large sets (seeded); the cost is linear in the number of n-grams (the largest and second largest
    count of every n-gram over the set give the clip for each hypothesis without an O(n²) loop).
    """
    check_int("max_n", max_n, minimum=1)
    texts = list(texts)
    if max_items is not None and len(texts) > max_items:
        pick = np.random.default_rng(seed).choice(len(texts), max_items, replace=False)
        texts = [texts[i] for i in sorted(pick)]
    toks = [word_tokens(t) for t in texts]
    m = len(toks)
    if m < 2:
        return 0.0
    counts = [[Counter(_ngrams(t, k)) for k in range(1, max_n + 1)] for t in toks]
    # Per n-gram: (top count, its owner, second count) over the set.
    tops: list[dict[tuple, list]] = [{} for _ in range(max_n)]
    for i, per in enumerate(counts):
        for k in range(max_n):
            table = tops[k]
            for g, c in per[k].items():
                e = table.get(g)
                if e is None:
                    table[g] = [c, i, 0]
                elif c > e[0]:
                    table[g] = [c, i, e[0]]
                elif c > e[2]:
                    e[2] = c
    lengths = np.array([len(t) for t in toks])
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order]
    total = 0.0
    for i, per in enumerate(counts):
        hyp_len = len(toks[i])
        if hyp_len == 0:
            continue
        log_p = 0.0
        for k in range(max_n):
            denom = sum(per[k].values())
            match = 0
            for g, c in per[k].items():
                top, owner, second = tops[k][g]
                match += min(c, second if owner == i else top)
            if k == 0:
                if match == 0:
                    log_p = -math.inf
                    break
                log_p += math.log(match / denom)
            else:
                log_p += math.log((match + 1) / (denom + 1))
        if log_p == -math.inf:
            continue
        ref_len = _closest_other_length(sorted_len, order, i, hyp_len)
        bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        total += bp * math.exp(log_p / max_n)
    return total / m


def _closest_other_length(sorted_len: np.ndarray, order: np.ndarray, i: int, hyp_len: int) -> int:
    pos = int(np.searchsorted(sorted_len, hyp_len))
    best = None
    for p in range(max(0, pos - 2), min(len(sorted_len), pos + 3)):
        if order[p] == i:
            continue
        L = int(sorted_len[p])
        if best is None or (abs(L - hyp_len), L) < (abs(best - hyp_len), best):
            best = L
    return best if best is not None else hyp_len
