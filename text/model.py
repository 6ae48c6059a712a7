"""A class-conditional sequence VAE (Bowman et al., 2016) for sentences.

Encoder (bidirectional GRU, or a small Transformer) reads ``[BOS] tokens [EOS]`` and, with the label
embedding, gives ``mu, logvar`` of ``q(z | x, y)``. A GRU decoder generates the sentence conditioned
on ``z`` and the label: its initial state is ``tanh(W [z; e_y])`` and ``[z; e_y]`` is concatenated to
every input embedding. Against posterior collapse: KL annealing (logistic or cyclical), word dropout
on the decoder inputs, and free bits per latent dimension. Training runs through
:class:`imagina.core.training.Trainer`; the KL per token at the end of training is checked, and a
collapsed posterior is reported (a warning, ``collapsed_`` and ``diagnostics()['collapsed']``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagina.core.errors import InvalidInputError, check_choice, check_float, check_int
from imagina.core.generator import Generator, seeded_config
from imagina.core.preprocessing import encode_labels
from imagina.core.runtime import derive_seed, resolve_device, seeded
from imagina.core.training import StepContext, Trainer, TrainerConfig, TrainingTask
from imagina.text.sanity import distinct_n, english_words
from imagina.text.tokenizer import TextTokenizer
from imagina.text.word_trie import WordTrie

logger = logging.getLogger(__name__)

SAMPLE_METHODS = ("prior", "around", "interpolate", "mix")


@dataclass(frozen=True, kw_only=True)
class SeqVAEConfig:
    """Settings of :class:`ConditionalSeqVAE`.

    Training: ``steps``, ``batch_size``, ``lr``, ``grad_clip`` (max gradient norm).
    Tokenizer: ``vocab_size``, ``min_frequency``, ``lowercase`` for the BPE trained on the data, or
    ``pretrained_tokenizer`` (a local path for ``transformers.AutoTokenizer``); ``max_len`` caps the
    tokens per sentence (BOS and EOS included).
    Network: ``embed_dim``, ``hidden_dim``, ``latent_dim``, ``label_dim``, ``encoder`` ('gru' or
    'transformer'), ``encoder_layers``, ``transformer_heads``, ``dropout``.
    Against collapse: ``word_dropout`` (share of decoder inputs replaced by UNK), ``kl_schedule``
    ('logistic', 'cyclical' or 'constant'), ``kl_warmup`` (share of steps over which the logistic
    weight rises from ~0 to ``kl_max``), ``kl_cycles`` (cyclical), ``free_bits`` (nats per latent
    dimension below which KL is not penalised), ``collapse_threshold`` (KL nats per token under which
    the posterior is declared collapsed).
    ``seed`` seeds initialisation, training and every ``sample(seed=None)`` call (which therefore
    repeats); it is saved with the model.
    Sampling defaults: ``sample_method``, ``noise_scale`` (for 'around'), ``temperature``, ``top_k``
    (0 = off), ``top_p`` (1 = off), ``whole_words`` (decode only words that occur in the training
    sentences, :class:`~imagina.text.word_trie.WordTrie`; on by default, since a small-data subword
    decoder otherwise glues pieces into non-words that a reader, and the text checks, reject),
    ``no_repeat_ngram`` (no token n-gram twice in a sentence, no token twice in a row; 0 = off), ``word_list`` (with
    ``whole_words``, also the ``word_list`` most frequent English words of ``wordfreq``, the optional
    ``imagina[wordlist]`` extra, spelt from the data's subword pieces: a sentence may then hold a word
    the data lacks only when it is a real word; 0 = off), ``match_diversity`` (when > 0, training ends
    by choosing the decoding temperature, :meth:`ConditionalSeqVAE.choose_temperature`, at which
    sentences sampled around the training sentences have this share of their distinct-2; the
    temperature then replaces ``temperature`` as the default of ``sample``; 0 = off).

    The training defaults (800 steps, dropout 0.3, word dropout 0.4, BPE of up to 2000 tokens with
    merges of frequency 1 -- close to whole words on small corpora --) hold on TREC *training* data
    (never the test set). Held-out ELBO per token favours shorter training, but a shortly trained VAE
    writes sentences the screen rejects as label-inconsistent; 800 steps with the 2000-token BPE fill
    the worst class and mostly spell real words (evidence: ``benchmarks/experiments/README.md``,
    ``benchmarks/experiments/text_tune.py``). The decoding defaults ('around' real sentences with
    noise 1.0, temperature 1.0, top-p 0.9, whole words, ``no_repeat_ngram`` 2) were chosen for
    whole-word decoding on the training files of TREC and CR (never a test split,
    ``benchmarks/experiments/text_decoding_cv.py``): at temperature 0.8 the kept sentences held 0.69 of
    the real sentences' distinct-2 on both; at 1.0 CR's reach the real sentences' diversity while their
    bigram perplexity stays below that of held-out real sentences.
    """

    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-3
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 25
    vocab_size: int = 2000
    min_frequency: int = 1
    lowercase: bool = False
    pretrained_tokenizer: str | None = None
    max_len: int = 40
    embed_dim: int = 64
    hidden_dim: int = 128
    latent_dim: int = 32
    label_dim: int = 16
    encoder: str = "gru"
    encoder_layers: int = 1
    transformer_heads: int = 4
    dropout: float = 0.3
    word_dropout: float = 0.4
    kl_schedule: str = "logistic"
    kl_warmup: float = 0.5
    kl_cycles: int = 4
    kl_max: float = 1.0
    free_bits: float = 0.05
    collapse_threshold: float = 0.01
    sample_method: str = "around"
    noise_scale: float = 1.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.9
    whole_words: bool = True
    no_repeat_ngram: int = 2
    word_list: int = 0
    match_diversity: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("seed", self.seed, minimum=0)
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_float("lr", self.lr, minimum=1e-8)
        check_float("grad_clip", self.grad_clip, minimum=1e-6)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_int("log_every", self.log_every, minimum=1)
        check_int("vocab_size", self.vocab_size, minimum=16)
        check_int("min_frequency", self.min_frequency, minimum=1)
        check_int("max_len", self.max_len, minimum=4)
        for name in ("embed_dim", "hidden_dim", "latent_dim", "label_dim", "encoder_layers", "transformer_heads", "kl_cycles"):
            check_int(name, getattr(self, name), minimum=1)
        check_choice("encoder", self.encoder, ("gru", "transformer"))
        if self.encoder == "transformer" and self.embed_dim % self.transformer_heads:
            raise InvalidInputError(
                f"`embed_dim` must be divisible by `transformer_heads` ({self.transformer_heads}); got {self.embed_dim}."
            )
        check_float("dropout", self.dropout, minimum=0.0, maximum=0.9)
        check_float("word_dropout", self.word_dropout, minimum=0.0, maximum=1.0)
        check_choice("kl_schedule", self.kl_schedule, ("logistic", "cyclical", "constant"))
        check_float("kl_warmup", self.kl_warmup, minimum=0.0, maximum=1.0)
        check_float("kl_max", self.kl_max, minimum=0.0)
        check_float("free_bits", self.free_bits, minimum=0.0)
        check_float("collapse_threshold", self.collapse_threshold, minimum=0.0)
        check_choice("sample_method", self.sample_method, SAMPLE_METHODS)
        check_float("noise_scale", self.noise_scale, minimum=0.0)
        check_float("temperature", self.temperature, minimum=1e-3)
        check_int("top_k", self.top_k, minimum=0)
        check_float("top_p", self.top_p, minimum=1e-3, maximum=1.0)
        check_int("no_repeat_ngram", self.no_repeat_ngram, minimum=0)
        check_int("word_list", self.word_list, minimum=0)
        check_float("match_diversity", self.match_diversity, minimum=0.0, maximum=2.0)
        for name in ("lowercase", "whole_words"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"`{name}` must be true or false; got {getattr(self, name)!r}.")


def kl_weight(step: int, config: SeqVAEConfig) -> float:
    """The KL weight β at ``step`` (0-based) under the configured annealing schedule."""
    if config.kl_schedule == "constant":
        return config.kl_max
    if config.kl_schedule == "cyclical":  # Fu et al. 2019: linear ramp over the first half of each cycle
        period = max(config.steps / config.kl_cycles, 1.0)
        tau = (step % period) / period
        return config.kl_max * min(1.0, tau / 0.5)
    warm = config.kl_warmup * config.steps
    if warm <= 0:
        return config.kl_max
    # Logistic (Bowman et al.): centred at half the warm-up, ~0.007 -> ~0.993 across it.
    return config.kl_max / (1.0 + math.exp(-10.0 * (step - warm / 2) / warm))


# ============================================================================ network
class _GRUEncoder(nn.Module):
    def __init__(self, cfg: SeqVAEConfig) -> None:
        super().__init__()
        # hidden_dim // 2 per direction: the encoder costs about what one decoder GRU costs
        self.rnn = nn.GRU(cfg.embed_dim, max(cfg.hidden_dim // 2, 1), num_layers=cfg.encoder_layers, batch_first=True,
                          bidirectional=True, dropout=cfg.dropout if cfg.encoder_layers > 1 else 0.0)
        self.out_dim = 2 * max(cfg.hidden_dim // 2, 1)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        # emb (B, L, E) -> (B, 2·H/2): last layer's final forward and backward states
        packed = nn.utils.rnn.pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # h (layers·2, B, H)
        return torch.cat([h[-2], h[-1]], dim=1)


class _TransformerEncoder(nn.Module):
    def __init__(self, cfg: SeqVAEConfig) -> None:
        super().__init__()
        self.pos = nn.Embedding(cfg.max_len, cfg.embed_dim)
        layer = nn.TransformerEncoderLayer(cfg.embed_dim, cfg.transformer_heads, 2 * cfg.embed_dim,
                                           dropout=cfg.dropout, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)
        self.out_dim = cfg.embed_dim

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        # emb (B, L, E) -> (B, E): mean over non-PAD positions
        pos = self.pos(torch.arange(emb.shape[1], device=emb.device))[None]
        h = self.enc(emb + pos, src_key_padding_mask=pad_mask)  # (B, L, E)
        keep = (~pad_mask).unsqueeze(-1).float()
        return (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)


class SeqVAENetwork(nn.Module):
    """Embedding shared by encoder and decoder; label embedding; encoder -> (mu, logvar); GRU decoder."""

    def __init__(self, cfg: SeqVAEConfig, vocab: int, n_classes: int, pad_id: int) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab, cfg.embed_dim, padding_idx=pad_id)
        self.label = nn.Embedding(n_classes, cfg.label_dim)
        self.encoder = _GRUEncoder(cfg) if cfg.encoder == "gru" else _TransformerEncoder(cfg)
        self.to_stats = nn.Linear(self.encoder.out_dim + cfg.label_dim, 2 * cfg.latent_dim)
        cond = cfg.latent_dim + cfg.label_dim
        self.init_h = nn.Linear(cond, cfg.hidden_dim)
        self.decoder = nn.GRU(cfg.embed_dim + cond, cfg.hidden_dim, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)
        # Output tied to the input embedding (Press & Wolf 2017): fewer weights for small corpora.
        self.out_proj = nn.Linear(cfg.hidden_dim, cfg.embed_dim)
        self.out_bias = nn.Parameter(torch.zeros(vocab))

    def out(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder states (..., H) -> logits (..., V) through the tied embedding."""
        return F.linear(self.out_proj(h), self.embed.weight, self.out_bias)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, L) long, lengths (B,), y (B,) -> mu, logvar (B, Z)."""
        pad_mask = ids == self.pad_id  # (B, L)
        h = self.encoder(self.drop(self.embed(ids)), lengths, pad_mask)  # (B, D)
        stats = self.to_stats(torch.cat([h, self.label(y)], dim=1))  # (B, 2Z)
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def condition(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, Z), y (B,) -> cond (B, Z+Y), h0 (1, B, H)."""
        cond = torch.cat([z, self.label(y)], dim=1)
        return cond, torch.tanh(self.init_h(cond)).unsqueeze(0)

    def decode_logits(self, inputs: torch.Tensor, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder: inputs (B, T) long -> logits (B, T, V)."""
        cond, h0 = self.condition(z, y)
        emb = self.drop(self.embed(inputs))  # (B, T, E)
        x = torch.cat([emb, cond.unsqueeze(1).expand(-1, emb.shape[1], -1)], dim=2)  # (B, T, E+Z+Y)
        out, _ = self.decoder(x, h0)  # (B, T, H)
        return self.out(self.drop(out))  # (B, T, V)

    def step(self, token: torch.Tensor, cond: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: token (B,), cond (B, Z+Y), h (1, B, H) -> logits (B, V), h."""
        x = torch.cat([self.embed(token), cond], dim=1).unsqueeze(1)  # (B, 1, E+Z+Y)
        out, h = self.decoder(x, h)  # (B, 1, H)
        return self.out(out[:, 0]), h


def sequence_terms(net: SeqVAENetwork, ids: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, *,
                   eps: torch.Tensor | None, word_mask: torch.Tensor | None, unk_id: int):
    """Reconstruction NLL per sentence (B,), KL per dimension (B, Z), target tokens per sentence (B,).

    ``eps`` (B, Z) samples z = mu + σ·eps (None: z = mu); ``word_mask`` (B, L-1) bool marks decoder
    inputs replaced by UNK (word dropout; BOS is never dropped).
    """
    L = int(lengths.max())
    ids = ids[:, :L]
    mu, logvar = net.encode(ids, lengths, y)
    z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
    inputs, targets = ids[:, :-1], ids[:, 1:]  # (B, L-1)
    if word_mask is not None:
        word_mask = word_mask[:, : L - 1].clone()
        word_mask[:, 0] = False
        inputs = inputs.masked_fill(word_mask & (inputs != net.pad_id), unk_id)
    logits = net.decode_logits(inputs, z, y)  # (B, L-1, V)
    nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=net.pad_id, reduction="none").sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, Z)
    return nll, kl.float(), (targets != net.pad_id).sum(1).float()


class _ClippedAdamW(torch.optim.AdamW):
    """AdamW whose step first clips the global gradient norm (recurrent nets need it)."""

    def __init__(self, params, *, max_norm: float, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.max_norm = max_norm

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        nn.utils.clip_grad_norm_(params, self.max_norm)
        return super().step(closure)


class _SeqVAETask(TrainingTask):
    """One ELBO step with annealed β, free bits and word dropout."""

    description = "training sequence VAE"

    def __init__(self, net: SeqVAENetwork, cfg: SeqVAEConfig, unk_id: int) -> None:
        self.net, self.cfg, self.unk_id = net, cfg, unk_id

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": _ClippedAdamW(self.net.parameters(), lr=self.cfg.lr, weight_decay=1e-5, max_norm=self.cfg.grad_clip)}

    def train_step(self, batch: tuple[torch.Tensor, ...], ctx: StepContext) -> dict[str, float]:
        ids, lengths, y = batch
        cfg = self.cfg
        eps = ctx.randn(len(ids), cfg.latent_dim)
        word_mask = ctx.rand(*ids[:, 1:].shape) < cfg.word_dropout
        with ctx.autocast():
            nll, kl, ntok = sequence_terms(self.net, ids, lengths, y, eps=eps, word_mask=word_mask, unk_id=self.unk_id)
        beta = kl_weight(ctx.step, cfg)
        kl_dims = kl.mean(0)  # (Z,) batch-averaged KL per dimension
        kl_penalised = kl_dims.clamp_min(cfg.free_bits).sum()  # free bits (Kingma et al. 2016)
        tokens = ntok.sum()
        loss = (nll.sum() + beta * kl_penalised * len(ids)) / tokens
        ctx.update("vae", loss)
        rec_tok = float(nll.detach().sum() / tokens)
        return {
            "loss": float(loss.detach()),
            "rec_per_token": rec_tok,
            "kl_per_token": float(kl.detach().sum() / tokens),
            "perplexity": math.exp(min(rec_tok, 50.0)),
            "beta": beta,
        }


# ============================================================================ generator
class ConditionalSeqVAE(Generator):
    """Class-conditional sentence VAE with prior, around-real and interpolation sampling.

    Parameters
    ----------
    config : SeqVAEConfig, optional
    device : {'auto', 'cpu', 'cuda'}
    seed : int, optional
        Replaces ``config.seed``, which seeds initialisation, training and ``sample(seed=None)``.

    Examples
    --------
    >>> texts = ["what is a cat ?", "what is a dog ?", "who wrote hamlet ?", "who built rome ?"] * 4
    >>> labels = ["DESC"] * 8 + ["HUM"] * 8
    >>> vae = ConditionalSeqVAE(SeqVAEConfig(steps=3), device="cpu").fit(texts, labels, progress=False)
    >>> X, y = vae.sample(4, "HUM", seed=0)
    >>> len(X), y.tolist()
    (4, ['HUM', 'HUM', 'HUM', 'HUM'])
    """

    registry_name = "ConditionalSeqVAE"
    config_class = SeqVAEConfig

    def __init__(self, config: SeqVAEConfig | None = None, *, device: str = "auto", seed: int | None = None) -> None:
        self.config = seeded_config(config, SeqVAEConfig, seed)
        self.device = device
        self.classes_ = None
        self.history_ = None
        self.tokenizer_: TextTokenizer | None = None
        self.network_: SeqVAENetwork | None = None
        self.train_texts_: list[str] | None = None
        self.train_labels_: np.ndarray | None = None  # class indices
        self.diagnostics_: dict | None = None
        self.collapsed_: bool | None = None
        self._mu_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._trie: WordTrie | None = None
        #: The decoding temperature ``sample`` uses by default: ``config.temperature``, or the one
        #: ``choose_temperature`` found when ``config.match_diversity`` > 0.
        self.temperature_: float | None = None

    # ----------------------------------------------------------------- training
    def fit(self, X: Sequence[str], y: Any, *, progress: bool = True,
            checkpoint_dir: str | os.PathLike | None = None) -> ConditionalSeqVAE:
        """Train on sentences ``X`` (list of n str) with labels ``y`` (n,). Returns ``self``."""
        texts = _check_texts(X)
        classes, target = encode_labels(y)
        if len(target) != len(texts):
            raise InvalidInputError(f"`y` must hold one label per sentence ({len(texts)}); got {len(target)}.")
        cfg = self.config
        if cfg.pretrained_tokenizer:
            tok = TextTokenizer.from_pretrained(cfg.pretrained_tokenizer)
        else:
            tok = TextTokenizer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                lowercase=cfg.lowercase).fit(texts)
        ids, lengths = tok.encode(texts, max_len=cfg.max_len)
        truncated = int((lengths == cfg.max_len).sum())
        if truncated:
            logger.info("%d of %d sentences reach max_len=%d tokens and are truncated", truncated, len(texts), cfg.max_len)
        with seeded(cfg.seed, "seqvae-init"):
            net = SeqVAENetwork(cfg, tok.size, len(classes), tok.pad_id)
        trainer = Trainer(TrainerConfig(steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed,
                                        device=self.device, checkpoint_every=cfg.checkpoint_every,
                                        log_every=cfg.log_every), progress=progress)
        history = trainer.fit(_SeqVAETask(net, cfg, tok.unk_id), (ids, lengths, torch.as_tensor(target)),
                              checkpoint_dir=checkpoint_dir)
        net.eval()
        self.tokenizer_, self.network_, self.classes_ = tok, net, classes
        self.train_texts_, self.train_labels_ = texts, target
        self._mu_cache = self._trie = None
        self.diagnostics_ = self._diagnose()
        self.collapsed_ = self.diagnostics_["collapsed"]
        self.history_ = history
        self.temperature_ = cfg.temperature
        if cfg.match_diversity > 0:
            self.temperature_ = self.choose_temperature(cfg.match_diversity)
        return self

    #: Temperatures :meth:`choose_temperature` searches between.
    TEMPERATURE_RANGE = (0.5, 2.0)

    def choose_temperature(self, target: float = 1.0, *, max_items: int = 1000, iterations: int = 6,
                           **sample_options: Any) -> float:
        """The decoding temperature at which sentences sampled around the training sentences have
        ``target`` times the distinct-2 of the training sentences (bisection in ``TEMPERATURE_RANGE``).

        A decoder restricted to whole words and truncated by top-p repeats the commonest phrases of a
        small corpus at a fixed temperature (distinct-2 of kept sentences at 0.69 of the real ones' on
        TREC and CR at 0.8), and how hot it must run differs by corpus; matching the real sentences'
        own diversity is one rule for any corpus, measured on the training sentences alone. The pilot
        set has one sentence per training sentence (at most ``max_items``, a seeded subset), with the
        same labels, decoded with ``sample_options`` (``sample``'s keyword arguments) and
        ``config.seed``; distinct-n falls as a set grows, so both sets have the same size.
        """
        self._check_fitted()
        check_float("target", target, minimum=1e-3, maximum=2.0)
        texts, index = self.train_texts_, self.train_labels_
        if len(texts) > max_items:
            pick = np.sort(np.random.default_rng(derive_seed(self.config.seed, "seqvae-temperature")).choice(
                len(texts), max_items, replace=False))
            texts, index = [texts[i] for i in pick], index[pick]
        goal = target * distinct_n(texts, 2)
        labels = self.classes_[index]

        def diversity(t: float) -> float:
            return distinct_n(self.sample(len(labels), labels, temperature=t, **sample_options)[0], 2)

        lo, hi = self.TEMPERATURE_RANGE
        if diversity(hi) <= goal:
            chosen = hi
        elif diversity(lo) >= goal:
            chosen = lo
        else:
            for _ in range(iterations):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if diversity(mid) < goal else (lo, mid)
            chosen = (lo + hi) / 2
        logger.info("decoding temperature %.2f: sampled sentences reach %.2f of the training sentences' distinct-2",
                    chosen, target)
        return round(chosen, 3)

    def diagnostics(self) -> dict[str, float]:
        """On the training sentences at the posterior means: reconstruction NLL, KL and perplexity per
        token, active latent units, and ``collapsed`` (1.0 when KL per token is under
        ``collapse_threshold``)."""
        return {k: float(v) for k, v in (self.diagnostics_ or {}).items()}

    @torch.no_grad()
    def _diagnose(self) -> dict:
        """Reconstruction NLL, KL and perplexity per token on the training data (posterior means)."""
        nll_sum = kl_sum = tok_sum = 0.0
        active = torch.zeros(self.config.latent_dim)
        for ids, lengths, y in self._batches(self.train_texts_, self.train_labels_):
            nll, kl, ntok = sequence_terms(self.network_, ids, lengths, y, eps=None, word_mask=None,
                                           unk_id=self.tokenizer_.unk_id)
            nll_sum += float(nll.sum())
            kl_sum += float(kl.sum())
            tok_sum += float(ntok.sum())
            active += kl.sum(0).cpu()
        kl_tok = kl_sum / tok_sum
        rec_tok = nll_sum / tok_sum
        diag = {
            "rec_per_token": rec_tok,
            "kl_per_token": kl_tok,
            "perplexity": math.exp(min(rec_tok, 50.0)),
            "active_units": int((active / len(self.train_texts_) > 0.01).sum()),
            "collapsed": bool(kl_tok < self.config.collapse_threshold),
        }
        if diag["collapsed"]:
            logger.warning(
                "posterior collapse: KL per token %.4f < %.4f; samples will ignore z. Try more word_dropout, "
                "free_bits or kl_schedule='cyclical'.", kl_tok, self.config.collapse_threshold)
        else:
            logger.info("SeqVAE trained: rec/token %.3f, KL/token %.3f, perplexity %.1f, %d active units",
                        rec_tok, kl_tok, diag["perplexity"], diag["active_units"])
        return diag

    def _batches(self, texts: Sequence[str], labels: np.ndarray, batch_size: int = 256):
        device = self._device()
        for s in range(0, len(texts), batch_size):
            ids, lengths = self.tokenizer_.encode(texts[s : s + batch_size], max_len=self.config.max_len)
            yield ids.to(device), lengths, torch.as_tensor(labels[s : s + batch_size], dtype=torch.long).to(device)

    def _device(self) -> torch.device:
        return next(self.network_.parameters()).device

    # ----------------------------------------------------------------- scoring
    @torch.no_grad()
    def log_likelihood(self, X: Sequence[str], labels: Any) -> np.ndarray:
        """Fluency: an ELBO estimate of log p(x | y) per token (z at the posterior mean).

        Parameters
        ----------
        X : list of n str
        labels : one class, or n classes

        Returns
        -------
        ndarray of shape (n,), float64; higher is more fluent (nats per token, <= 0 roughly).
        """
        self._check_fitted()
        texts = list(X)
        index = self.resolve_labels(len(texts), labels)
        out = []
        for ids, lengths, y in self._batches(texts, index):
            nll, kl, ntok = sequence_terms(self.network_, ids, lengths, y, eps=None, word_mask=None,
                                           unk_id=self.tokenizer_.unk_id)
            out.append((-(nll + kl.sum(1)) / ntok).cpu().double())
        return torch.cat(out).numpy() if out else np.zeros(0)

    @torch.no_grad()
    def encode(self, X: Sequence[str], labels: Any) -> np.ndarray:
        """Posterior means of sentences: ndarray of shape (n, latent_dim), float32."""
        self._check_fitted()
        index = self.resolve_labels(len(X), labels)
        mus = [self.network_.encode(ids, lengths, y)[0].cpu() for ids, lengths, y in self._batches(list(X), index)]
        return torch.cat(mus).numpy().astype(np.float32) if mus else np.zeros((0, self.config.latent_dim), np.float32)

    # ----------------------------------------------------------------- sampling
    def sample(
        self,
        n: int,
        labels: Any = None,
        *,
        seed: int | None = None,
        method: str | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        max_len: int | None = None,
        greedy: bool = False,
        noise_scale: float | None = None,
        real: tuple[Sequence[str], Any] | None = None,
        whole_words: bool | None = None,
        no_repeat_ngram: int | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """Generate ``n`` sentences.

        Parameters
        ----------
        n : int
        labels : None (classes in turn), one class, or n classes
        seed : int, optional
            Same seed, same sentences (on CPU); None: ``config.seed``.
        method : {'prior', 'around', 'interpolate', 'mix'}
            'prior': z ~ N(0, I); 'around': z = mu(real sentence of the class) + noise_scale·ε;
            'interpolate': z on the segment between two real sentences of the class (t ~ U(0.2, 0.8));
            'mix': a third each. Default: ``config.sample_method``.
        temperature, top_k, top_p, greedy, max_len : decoding controls (defaults from the config, the
            temperature from ``temperature_``; ``greedy`` takes the arg-max token).
        real : (texts, labels), optional
            Real sentences for 'around' / 'interpolate' instead of the training sentences kept in the model.
        whole_words : bool, optional
            Spell only words of the training sentences (default: ``config.whole_words``).
        no_repeat_ngram : int, optional
            No token n-gram of this length twice in one sentence, and no token twice in a row (0 = off;
            default: ``config.no_repeat_ngram``).

        Returns
        -------
        X : list of n str
        y : ndarray of shape (n,), the class labels
        """
        self._check_fitted()
        check_int("n", n, minimum=0)
        cfg = self.config
        method = check_choice("method", method or cfg.sample_method, SAMPLE_METHODS)
        default_t = cfg.temperature if self.temperature_ is None else self.temperature_
        temperature = check_float("temperature", default_t if temperature is None else temperature, minimum=1e-3)
        top_k = check_int("top_k", cfg.top_k if top_k is None else top_k, minimum=0)
        top_p = check_float("top_p", cfg.top_p if top_p is None else top_p, minimum=1e-3, maximum=1.0)
        max_len = check_int("max_len", cfg.max_len if max_len is None else max_len, minimum=2)
        noise = check_float("noise_scale", cfg.noise_scale if noise_scale is None else noise_scale, minimum=0.0)
        trie = self._word_trie() if (cfg.whole_words if whole_words is None else whole_words) else None
        block = check_int("no_repeat_ngram", cfg.no_repeat_ngram if no_repeat_ngram is None else no_repeat_ngram, minimum=0)
        seed = cfg.seed if seed is None else seed
        index = self.resolve_labels(n, labels)
        rng = torch.Generator().manual_seed(derive_seed(seed, "seqvae-sample"))
        z = self._latents(index, method, noise, rng, real)  # (n, Z) on CPU
        texts: list[str] = []
        for s in range(0, n, 512):
            rows = self._decode(z[s : s + 512], torch.as_tensor(index[s : s + 512]), rng, temperature=temperature,
                                top_k=top_k, top_p=top_p, max_len=max_len, greedy=greedy, trie=trie,
                                no_repeat_ngram=block)
            texts.extend(self.tokenizer_.decode_batch(rows))
        return texts, self.classes_[index]

    def _real_means(self, real: tuple[Sequence[str], Any] | None) -> tuple[torch.Tensor, np.ndarray]:
        if real is not None:
            texts, labels = list(real[0]), real[1]
            index = self.resolve_labels(len(texts), labels)
            return torch.as_tensor(self.encode(texts, self.classes_[index])), index
        if self._mu_cache is None:
            mu = torch.as_tensor(self.encode(self.train_texts_, self.classes_[self.train_labels_]))
            self._mu_cache = (mu, self.train_labels_)
        return self._mu_cache

    def _latents(self, index: np.ndarray, method: str, noise: float, rng: torch.Generator, real) -> torch.Tensor:
        n, Z = len(index), self.config.latent_dim
        if method == "mix":
            kinds = np.array(["prior", "around", "interpolate"])[np.arange(n) % 3]
        else:
            kinds = np.full(n, method)
        eps = torch.randn(n, Z, generator=rng)
        z = eps.clone()  # prior
        if (kinds != "prior").any():
            mu, mu_y = self._real_means(real)
            pick_a = torch.rand(n, generator=rng)
            pick_b = torch.rand(n, generator=rng)
            t = 0.2 + 0.6 * torch.rand(n, 1, generator=rng)
            for c in np.unique(index):
                pool = np.flatnonzero(mu_y == c)
                if len(pool) == 0:
                    raise InvalidInputError(f"no real sentence of class {self.classes_.tolist()[c]!r} to sample around.")
                rows = np.flatnonzero((index == c) & (kinds != "prior"))
                a = pool[(pick_a[rows] * len(pool)).long().clamp_max(len(pool) - 1).numpy()]
                b = pool[(pick_b[rows] * len(pool)).long().clamp_max(len(pool) - 1).numpy()]
                za, zb = mu[a], mu[b]
                around = kinds[rows] == "around"
                tt = t[rows]
                z_rows = torch.where(torch.as_tensor(around)[:, None], za + noise * eps[rows], (1 - tt) * za + tt * zb)
                z[rows] = z_rows
        return z

    def _word_trie(self) -> WordTrie:
        if self._trie is None:
            tok = self.tokenizer_
            words = tok.word_token_ids(self.train_texts_)
            if self.config.word_list:  # English words the data lacks, spelt from the data's subword pieces
                words += tok.word_token_ids(english_words(self.config.word_list))
            self._trie = WordTrie(words, eos_id=tok.eos_id,
                                  exclude=(tok.pad_id, tok.bos_id, tok.unk_id, tok.eos_id))
        return self._trie

    @torch.no_grad()
    def _decode(self, z: torch.Tensor, y: torch.Tensor, rng: torch.Generator, *, temperature: float, top_k: int,
                top_p: float, max_len: int, greedy: bool, trie: WordTrie | None = None,
                no_repeat_ngram: int = 0) -> list[list[int]]:
        """Autoregressive batched decoding; token choice on the CPU with ``rng`` (reproducible). With a
        ``trie`` every row spells only the trie's words (the others' logits are masked). With
        ``no_repeat_ngram`` = n a row never takes a token that would repeat one of its n-grams, nor its
        last token again (a small decoder otherwise stutters: "the rating system system", "is is")."""
        net, tok = self.network_, self.tokenizer_
        device = self._device()
        B = len(z)
        cond, h = net.condition(z.to(device), y.to(device))  # (B, C), (1, B, H)
        token = torch.full((B,), tok.bos_id, dtype=torch.long, device=device)
        done = torch.zeros(B, dtype=torch.bool)
        out = torch.full((B, max_len - 1), tok.pad_id, dtype=torch.long)
        banned = [tok.pad_id, tok.bos_id, tok.unk_id]
        nodes = [0] * B
        for t in range(max_len - 1):
            logits, h = net.step(token, cond, h)  # (B, V)
            logits = logits.float().cpu()
            logits[:, banned] = -float("inf")
            if t == 0:
                logits[:, tok.eos_id] = -float("inf")  # no empty sentences
            if trie is not None:  # finished rows keep every token open (their choice is replaced by PAD)
                allowed = trie.mask(nodes, logits.shape[1]) | done[:, None]
                logits = logits.masked_fill(~allowed, -float("inf"))
            if no_repeat_ngram and t + 1 >= no_repeat_ngram:
                _block_repeats(logits, out[:, :t], done, no_repeat_ngram)
            nxt = _choose(logits, rng, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)
            nxt = torch.where(done, torch.full_like(nxt, tok.pad_id), nxt)
            if trie is not None:
                nodes = [trie.advance(node, k) for node, k in zip(nodes, nxt.tolist(), strict=True)]
            out[:, t] = nxt
            done |= nxt == tok.eos_id
            if bool(done.all()):
                break
            token = nxt.to(device)
        return out.tolist()

    def interpolate(self, text_a: str, text_b: str, label: Any, *, n_steps: int = 5, greedy: bool = True,
                    seed: int = 0) -> list[str]:
        """Sentences decoded along the segment between two sentences of one class (endpoints included)."""
        self._check_fitted()
        check_int("n_steps", n_steps, minimum=2)
        mu = torch.as_tensor(self.encode([text_a, text_b], [label, label]))
        t = torch.linspace(0, 1, n_steps)[:, None]
        z = (1 - t) * mu[0] + t * mu[1]
        y = torch.as_tensor(self.resolve_labels(n_steps, label))
        rng = torch.Generator().manual_seed(derive_seed(seed, "seqvae-interpolate"))
        cfg = self.config
        rows = self._decode(z, y, rng, temperature=self.temperature_, top_k=cfg.top_k, top_p=cfg.top_p,
                            max_len=cfg.max_len, greedy=greedy, trie=self._word_trie() if cfg.whole_words else None,
                            no_repeat_ngram=cfg.no_repeat_ngram)
        return self.tokenizer_.decode_batch(rows)

    # ----------------------------------------------------------------- persistence
    def _weights(self) -> dict[str, torch.Tensor]:
        return dict(self.network_.state_dict())

    def _preprocessor_state(self) -> dict:
        return {
            "tokenizer": self.tokenizer_.get_state(),
            "vocab": self.tokenizer_.size,
            "train_texts": list(self.train_texts_),
            "train_labels": self.train_labels_.tolist(),
            "diagnostics": self.diagnostics_,
            "history": self.history_,
            "temperature": self.temperature_,
        }

    def _extra_files(self, directory: Path) -> None:
        self.tokenizer_.save(directory)

    def _restore(self, weights: dict[str, torch.Tensor], preprocessor: dict, directory: Path) -> None:
        self.tokenizer_ = TextTokenizer.load(directory, preprocessor["tokenizer"])
        net = SeqVAENetwork(self.config, int(preprocessor["vocab"]), len(self.classes_), self.tokenizer_.pad_id)
        net.load_state_dict(weights)
        self.network_ = net.to(resolve_device(self.device)).eval()
        self.train_texts_ = list(preprocessor["train_texts"])
        self.train_labels_ = np.asarray(preprocessor["train_labels"], dtype=np.int64)
        self._mu_cache = self._trie = None
        self.diagnostics_ = preprocessor.get("diagnostics")
        self.collapsed_ = None if self.diagnostics_ is None else bool(self.diagnostics_["collapsed"])
        self.history_ = preprocessor.get("history")
        self.temperature_ = preprocessor.get("temperature", self.config.temperature)


def _block_repeats(logits: torch.Tensor, prefix: torch.Tensor, done: torch.Tensor, n: int) -> None:
    """Mask in place, per unfinished row of logits (B, V), the tokens that would complete an n-gram
    already in the row's ``prefix`` (B, t) (BOS counts as the first token), and the row's last token; a
    row that would have no token left keeps its logits (a repeat beats a half-spelt word)."""
    rows = prefix.tolist()
    for i, seq in enumerate(rows):
        if done[i]:
            continue
        seq = [-1, *seq]  # BOS
        tail = tuple(seq[len(seq) - n + 1 :]) if n > 1 else ()
        banned = [seq[j + n - 1] for j in range(len(seq) - n + 1) if tuple(seq[j : j + n - 1]) == tail]
        if seq[-1] >= 0:  # nor the last token again: the first "system system" is no repeated bigram yet
            banned.append(seq[-1])
        if banned:
            row = logits[i].clone()
            logits[i, banned] = -float("inf")
            if not bool(torch.isfinite(logits[i]).any()):
                logits[i] = row


def _choose(logits: torch.Tensor, rng: torch.Generator, *, temperature: float, top_k: int, top_p: float,
            greedy: bool) -> torch.Tensor:
    """Next token per row of logits (B, V): arg-max, or sampled after temperature / top-k / top-p."""
    if greedy:
        return logits.argmax(1)
    logits = logits / temperature
    if top_k > 0 and top_k < logits.shape[1]:
        kth = torch.topk(logits, top_k, dim=1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=1, descending=True)
        probs = torch.softmax(sorted_logits, dim=1)
        # drop a token when the mass before it already reaches top_p (the first token always stays)
        drop = (probs.cumsum(1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, -float("inf"))
        logits = torch.full_like(logits, -float("inf")).scatter(1, order, sorted_logits)
    return torch.multinomial(torch.softmax(logits, dim=1), 1, generator=rng)[:, 0]


def _check_texts(X: Any) -> list[str]:
    if isinstance(X, str) or not isinstance(X, Sequence) and not isinstance(X, np.ndarray):
        raise InvalidInputError(f"`X` must be a list of sentences; got {type(X).__name__}.")
    texts = list(X)
    if len(texts) == 0:
        raise InvalidInputError("`X` must hold at least one sentence; got 0.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InvalidInputError(f"`X[{i}]` must be a str; got {type(t).__name__}.")
    if not any(t.strip() for t in texts):  # nothing to learn: sampling would fail inside torch
        raise InvalidInputError(f"`X` holds {len(texts)} sentence(s), all empty or blank.")
    return texts
