"""A class-conditional SpecGAN: the shared conditional DCGAN over log-magnitude spectrograms.

The networks, losses (hinge, non-saturating, WGAN-GP), mode-seeking term and the training step
are :mod:`imagina.core.gan`'s, run by :class:`~imagina.core.training.Trainer`. What is audio here:

* the data are normalised spectrograms (:mod:`imagina.audio.features`), which need not be square
  (FSDD: 64 frequency bins x 128 frames); the two small subclasses below only change the size of
  the first (generator) and last (discriminator) 4x4 grid to ``(F, W) / 2**n_blocks``;
* the discriminator's DiffAugment is time shift and SpecAugment-style time / frequency masking;
* ``sample`` inverts the spectrograms to waveforms with Griffin-Lim.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagina.audio.augment import SpecDiffAugment
from imagina.audio.features import SpectrogramConfig, SpectrogramTransform
from imagina.core.errors import InvalidInputError, check_choice, check_int
from imagina.core.gan import ConditionalGANModel, GANConfig
from imagina.core.generator import SOURCE_FORMAT_NAME
from imagina.core.preprocessing import nonfinite_mask
from imagina.core.runtime import derive_seed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SpecGANConfig(GANConfig):
    """Settings of :class:`ConditionalSpecGAN`.

    The spectrogram: ``spectrogram`` ("linear" as SpecGAN, or "mel"), ``n_fft`` / ``hop_length``
    (None: SpecGAN's 16 ms / 8 ms scaled to ``sample_rate``), ``n_samples`` (None: the data's).
    Both sides of the spectrogram must be powers of two, the shorter one 16 to 128.
    ``image_size`` is set at fit time to the shorter side. ``diffaugment`` is a comma-separated
    policy of time_shift, time_mask, freq_mask ("" turns it off). ``ema_decay`` is 0.99 (a half-life
    of 70 steps) because CPU runs are short: at 0.999 a 600-step run still weighs its initial
    weights by 0.55. ``loss="wgan-gp"`` with
    ``d_steps=5, spectral_norm=False`` is SpecGAN's original recipe; the default (hinge, spectral
    norm, one D step) costs a fifth of it per step, which matters on a CPU.
    ``reconstruction`` > 0 (the default, 10) samples *around the real clips of each class* through
    learned per-clip codes (:mod:`imagina.core.gan`); 0 samples from the prior.

    ``steps`` and ``base_channels`` fit a default run in about 15 minutes on a 2-core CPU (FSDD, 20
    clips per class): half-width networks (16 base channels) and 1,200 steps, since shorter runs
    leave more of the wanted clips unrecognisable to the screen, the hardest digit ("2") first
    (docs/history.md, ``benchmarks/experiments/gan_settings.py``).
    """

    image_size: int | None = None
    channels: int | None = 1
    base_channels: int = 16
    sample_rate: int = 8000
    n_samples: int | None = None
    spectrogram: str = "linear"
    n_fft: int | None = None
    hop_length: int | None = None
    n_mels: int = 64
    griffin_lim_iters: int = 32
    steps: int = 1200
    batch_size: int = 32
    ema_decay: float = 0.99
    diffaugment: str = "time_shift,time_mask,freq_mask"
    reconstruction: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("sample_rate", self.sample_rate, minimum=1000)
        if self.n_samples is not None:
            check_int("n_samples", self.n_samples, minimum=256)
        check_choice("spectrogram", self.spectrogram, ("linear", "mel"))
        if self.n_fft is not None:
            check_int("n_fft", self.n_fft, minimum=16)
        if self.hop_length is not None:
            check_int("hop_length", self.hop_length, minimum=1)
        check_int("griffin_lim_iters", self.griffin_lim_iters, minimum=1)
        SpecDiffAugment(self.diffaugment)

    def spectrogram_config(self, n_samples: int) -> SpectrogramConfig:
        """The :class:`SpectrogramConfig` these settings give for clips of ``n_samples``."""
        base = SpectrogramConfig.scaled(self.sample_rate, n_samples)
        return SpectrogramConfig(
            kind=self.spectrogram, sample_rate=self.sample_rate, n_samples=n_samples,
            n_fft=self.n_fft or base.n_fft, hop_length=self.hop_length or (self.n_fft or base.n_fft) // 2,
            n_mels=self.n_mels, griffin_lim_iters=self.griffin_lim_iters,
        )


def grid_shape(shape: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """``(image_size, base)`` for a (F, W) spectrogram: the shorter side and the first grid
    ``(F, W) / 2**n_blocks``. Raises :class:`InvalidInputError` for sizes the networks cannot make."""
    short = min(shape)
    ok = all(s > 0 and s & (s - 1) == 0 for s in shape) and short in (16, 32, 64, 128) and max(shape) // short <= 8
    if not ok:
        raise InvalidInputError(
            f"the spectrogram is {shape[0]}x{shape[1]} (bins x frames); both sides must be powers of two, the shorter "
            "16-128 and at most 8 times shorter than the other: adjust `n_samples`, `n_fft` or `hop_length`."
        )
    n_blocks = int(math.log2(short)) - 2
    return short, (shape[0] >> n_blocks, shape[1] >> n_blocks)


def as_waveforms(X: Any, what: str = "X") -> np.ndarray:
    """Validate waveforms: a float array of shape (n, T), finite. Returns float32 (n, T)."""
    if isinstance(X, (list, tuple)) and len({np.shape(x) for x in X}) > 1:
        lengths = sorted({len(np.ravel(x)) for x in X})
        raise InvalidInputError(f"`{what}` holds clips of different lengths ({lengths[0]} to {lengths[-1]} samples); bring "
                                "them to one length first (imagina.audio.data.fix_length, or load them with MODALITY.load).")
    X = np.asarray(X)
    if X.ndim != 2 or len(X) == 0 or not np.issubdtype(X.dtype, np.number):
        raise InvalidInputError(f"`{what}` must be waveforms of shape (n, T); got shape {X.shape} and dtype {X.dtype}.")
    X = X.astype(np.float32, copy=False)
    bad = nonfinite_mask(X)
    if bad.any():
        raise InvalidInputError(f"`{what}` holds NaN or infinite samples in {int(bad.sum())} clips (first: {int(np.argmax(bad))}); clean them first.")
    return X


class ConditionalSpecGAN(ConditionalGANModel):
    """Class-conditional SpecGAN: generates float32 waveforms at ``config.sample_rate``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(2048) / 8000
    >>> X = np.stack([np.sin(2 * np.pi * f * t) for f in (300, 320, 900, 950)]).astype("float32")
    >>> gan = ConditionalSpecGAN(SpecGANConfig(steps=2, n_fft=64, base_channels=8), device="cpu")
    >>> waves, labels = gan.fit(X, ["low", "low", "high", "high"], progress=False).sample(4, seed=0)
    >>> waves.shape, labels.tolist()
    ((4, 2048), ['high', 'low', 'high', 'low'])
    """

    registry_name = "ConditionalSpecGAN"
    config_class = SpecGANConfig
    #: The loader's ``meta["source_format"]`` (the user's rate, level, silence and duration per
    #: class), set by the audio modality; saved as ``source_format.json`` so that clips generated
    #: from a saved model are written like the user's own. None writes the training view as is.
    source_format: dict | None = None

    def _fit_transform(self, X: Any) -> tuple[np.ndarray, SpectrogramTransform, dict]:
        X = as_waveforms(X)
        n_samples = self.config.n_samples or X.shape[1]
        if X.shape[1] != n_samples:
            raise InvalidInputError(f"`X` clips must hold n_samples={n_samples} samples; got {X.shape[1]}.")
        spec_cfg = self.config.spectrogram_config(n_samples)
        size, _ = grid_shape(spec_cfg.shape)
        transform = SpectrogramTransform(spec_cfg).fit(X)
        logger.info("SpecGAN on %d clips: %s spectrograms %dx%d (n_fft %d, hop %d)", len(X), spec_cfg.kind,
                    *spec_cfg.shape, spec_cfg.n_fft, spec_cfg.hop_length)
        fixed = {"image_size": size, "channels": 1, "n_samples": n_samples, "n_fft": spec_cfg.n_fft,
                 "hop_length": spec_cfg.hop_length}
        return transform.transform(X)[:, None], transform, fixed                 # (n, 1, F, W) in [-1, 1]

    def _base(self) -> tuple[int, int]:
        return grid_shape(self.transform_.config.shape)[1]

    def _augment(self) -> SpecDiffAugment:
        return SpecDiffAugment(self.config.diffaugment)

    def _transform_from_state(self, state: dict) -> SpectrogramTransform:
        return SpectrogramTransform.from_state(state)

    def _decode(self, Z: np.ndarray, seed: int) -> np.ndarray:
        """Normalised spectrograms (n, 1, F, W) → waveforms (n, n_samples) by Griffin-Lim, peak 0.9."""
        return self.transform_.inverse_transform(Z[:, 0], seed=derive_seed(seed, "griffin-lim"))

    def sample_spectrograms(self, n: int, labels: Any = None, *, seed: int | None = None,
                            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` normalised spectrograms, float32 (n, F, W) in [-1, 1], and their labels (n,)."""
        Z, y = self.generate_tensors(n, labels, seed=seed, batch_size=batch_size)
        if len(Z) == 0:
            return np.zeros((0, *self.transform_.config.shape), np.float32), y
        return Z[:, 0], y

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def data_meta(self) -> dict:
        meta = {"sample_rate": self.config.sample_rate}
        if getattr(self, "transform_", None) is not None:
            meta["n_samples"] = self.transform_.config.n_samples
        if self.source_format:
            meta["source_format"] = self.source_format
        return meta

    def _extra_files(self, directory: Path) -> None:
        if self.source_format:
            (directory / SOURCE_FORMAT_NAME).write_text(json.dumps(self.source_format, indent=2), encoding="utf-8")

    def _restore(self, weights: dict, preprocessor: dict, directory: Path) -> None:
        super()._restore(weights, preprocessor, directory)
        path = directory / SOURCE_FORMAT_NAME
        self.source_format = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
