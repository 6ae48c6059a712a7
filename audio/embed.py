"""Audio embedders: the offline default (a small log-mel CNN trained on the user's clips) and a
pretrained speech model (Wav2Vec2, HuBERT, ...) loaded through transformers from a local path.

No speech model ships inside a package (the ``pretrained`` extra has none for audio), so a pretrained
audio embedder is always a local ``save_pretrained`` directory; :func:`audio_embedder` resolves a name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imagina.audio.augment import time_shift
from imagina.audio.evaluate import log_mel_cnn, prepare_waveforms
from imagina.core.embedding import Embedder, SupervisedEmbedder, resolve_embedder
from imagina.core.errors import InvalidInputError, MissingDependencyError, check_int

logger = logging.getLogger(__name__)

#: Training steps of the offline default embedder (why 1,000: :attr:`AudioModality.embedder_steps`).
DEFAULT_EMBEDDER_STEPS = 1000


def default_audio_embedder(*, sample_rate: int = 8000, seed: int = 0, device: str = "auto",
                           steps: int = DEFAULT_EMBEDDER_STEPS, progress: bool = False) -> SupervisedEmbedder:
    """The offline default: a log-mel CNN (the reference classifier's body) trained to classify the
    real clips, with ±5 % time shifts; embeddings are its L2-normalised pooled features (d = 64).
    ``progress`` shows a bar while it trains."""
    return SupervisedEmbedder(
        lambda: log_mel_cnn(sample_rate), prepare_waveforms,
        augment=time_shift(0.05), steps=steps, seed=seed, device=device, progress=progress,
    )


class TransformersAudioEmbedder(Embedder):
    """A pretrained speech encoder from a local directory (``save_pretrained`` layout: a model
    config and weights plus a feature extractor), mean-pooled over its last hidden states.

    Parameters
    ----------
    path : str or path
        A local directory; nothing is downloaded (``local_files_only=True``).
    sample_rate : int
        Rate of the clips given to :meth:`embed`; they are resampled to the feature extractor's rate.
    layer : int
        Which hidden state to pool (-1 = last).

    Examples
    --------
    >>> emb = TransformersAudioEmbedder("models/wav2vec2-base", sample_rate=8000)   # doctest: +SKIP
    >>> emb.embed(waves).shape          # (n, hidden_size)                           # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, sample_rate: int = 8000, layer: int = -1, device: str = "cpu") -> None:
        try:
            from transformers import AutoFeatureExtractor, AutoModel
        except ImportError as exc:  # pragma: no cover - transformers is a core dependency
            raise MissingDependencyError("the pretrained audio embedder needs `transformers`: pip install transformers") from exc
        path = Path(path)
        if not path.is_dir():
            raise InvalidInputError(f"`embedder` {path} is not a local model directory (save_pretrained layout); "
                                    "no speech model ships in a package, so audio takes 'own', 'auto' or such a directory.")
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval().to(device)
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
            raise InvalidInputError(f"`embedder` {path} cannot be loaded by transformers ({first}).") from None
        self.sample_rate = check_int("sample_rate", sample_rate, minimum=1000)
        self.layer = layer
        self.device = device
        self.target_rate = int(getattr(self.extractor, "sampling_rate", 16000))

    @torch.no_grad()
    def embed(self, X: Any, *, batch_size: int = 32) -> np.ndarray:
        """Waveforms (n, T) float32 -> mean-pooled hidden states, float32 (n, hidden_size)."""
        waves = prepare_waveforms(X).numpy()
        if self.sample_rate != self.target_rate:
            from imagina.audio.data import resample

            waves = resample(waves, self.sample_rate, self.target_rate)
        out = []
        for s in range(0, len(waves), batch_size):
            chunk = list(waves[s : s + batch_size])
            inputs = self.extractor(chunk, sampling_rate=self.target_rate, return_tensors="pt")
            hidden = self.model(inputs["input_values"].to(self.device), output_hidden_states=self.layer != -1)
            states = hidden.last_hidden_state if self.layer == -1 else hidden.hidden_states[self.layer]
            out.append(states.mean(dim=1).float().cpu())                 # (B, hidden)
        if not out:
            return np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32)


def audio_embedder(spec: str | None, *, own: Callable[[], Embedder], sample_rate: int = 8000,
                   device: str = "cpu") -> Embedder:
    """The audio embedder ``spec`` names (see :func:`~imagina.core.embedding.resolve_embedder`): None or
    ``"own"``, a local transformers speech-model directory, or ``"combined:<directory>"``."""
    return resolve_embedder(spec, own=own, pretrained=lambda path: TransformersAudioEmbedder(
        path, sample_rate=sample_rate, device=device))
