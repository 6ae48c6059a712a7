"""Fixed-size log-magnitude spectrograms (SpecGAN) and their inversion to waveforms (Griffin-Lim).

SpecGAN (Donahue et al., 2019) turns 16,384 samples at 16 kHz into a 128x128 image: a 256-point
STFT (16 ms Hann window) with a 128-sample (8 ms) hop, the Nyquist bin dropped, the log magnitude
normalised per frequency bin, clipped at 3 standard deviations and scaled to [-1, 1]. We keep the
same *time-frequency tiling* at any rate: the window is the power of two nearest 16 ms and the hop
half of it, so at 8 kHz (FSDD) 8192 samples (1.024 s) give ``n_fft=128, hop=64`` and a 64x128
(frequency x time) spectrogram: the bins are 62.5 Hz wide as in SpecGAN, half as many because the
band is half as wide, and the clip is 1.024 s as in SpecGAN. ``kind="mel"`` gives a log-mel
spectrogram instead (inverted through the mel filterbank's least-squares pseudo-inverse).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, check_choice, check_float, check_int
from imagina.core.preprocessing import RangeScaler, ScalerChain, Standardizer
from imagina.core.runtime import seeded

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SpectrogramConfig:
    """Spectrogram layout. ``shape`` is ``(n_fft // 2, n_samples // hop_length)`` for linear spectrograms
    (Nyquist bin and the last, padded frame dropped) and ``(n_mels, n_samples // hop_length)`` for mel."""

    kind: str = "linear"
    sample_rate: int = 8000
    n_samples: int = 8192
    n_fft: int = 128
    hop_length: int = 64
    n_mels: int = 64
    eps: float = 1e-3
    clip_std: float = 3.0
    griffin_lim_iters: int = 64
    momentum: float = 0.99

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("linear", "mel"))
        check_int("sample_rate", self.sample_rate, minimum=1000)
        check_int("n_fft", self.n_fft, minimum=16)
        check_int("hop_length", self.hop_length, minimum=1, maximum=self.n_fft)
        check_int("n_samples", self.n_samples, minimum=self.n_fft)
        check_int("n_mels", self.n_mels, minimum=4, maximum=self.n_fft // 2 + 1 if self.kind == "mel" else None)
        check_float("eps", self.eps, minimum=1e-12)
        check_float("clip_std", self.clip_std, minimum=0.5)
        check_int("griffin_lim_iters", self.griffin_lim_iters, minimum=1)
        check_float("momentum", self.momentum, minimum=0.0, maximum=0.999)

    @classmethod
    def scaled(cls, sample_rate: int, n_samples: int, **overrides) -> SpectrogramConfig:
        """SpecGAN's 16 ms window / 8 ms hop at any rate (window = nearest power of two)."""
        n_fft = 2 ** round(math.log2(0.016 * sample_rate))
        return cls(**{"sample_rate": sample_rate, "n_samples": n_samples, "n_fft": n_fft, "hop_length": n_fft // 2, **overrides})

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """(frequency bins, frames) of one spectrogram."""
        return (self.n_fft // 2 if self.kind == "linear" else self.n_mels, self.n_frames)


def _as_tensor(waves: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(waves, dtype=np.float32) if not isinstance(waves, torch.Tensor) else waves)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise InvalidInputError(f"waveforms must have shape (n, T); got {tuple(t.shape)}.")
    return t.float()


def stft_magnitude(waves: np.ndarray | torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """|STFT| with a Hann window, centred frames. (n, T) -> (n, n_fft//2 + 1, T//hop + 1) float32."""
    x = _as_tensor(waves)
    window = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, hop_length, window=window, center=True, pad_mode="reflect", return_complex=True).abs()


def spectral_convergence(reference: np.ndarray | torch.Tensor, estimate: np.ndarray | torch.Tensor) -> np.ndarray:
    """``‖|S| − |Ŝ|‖_F / ‖|S|‖_F`` per item over magnitude spectrograms of shape (n, F, W). Returns (n,)."""
    ref = torch.as_tensor(reference, dtype=torch.float32)
    est = torch.as_tensor(estimate, dtype=torch.float32)
    num = torch.linalg.vector_norm((ref - est).flatten(1), dim=1)
    den = torch.linalg.vector_norm(ref.flatten(1), dim=1).clamp_min(1e-12)
    return (num / den).numpy()


def peak_normalize(waves: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale each clip (row) to the given peak; silent rows stay zero. Nothing is clipped."""
    waves = np.asarray(waves, dtype=np.float32)
    top = np.max(np.abs(waves), axis=-1, keepdims=True)
    return np.where(top > 0, waves * (peak / np.maximum(top, 1e-12)), 0.0).astype(np.float32)


def griffin_lim(
    magnitude: torch.Tensor, *, n_fft: int, hop_length: int, length: int, n_iter: int = 64, momentum: float = 0.99, seed: int = 0
) -> torch.Tensor:
    """Fast Griffin-Lim (torchaudio, with momentum) from full magnitudes (n, n_fft//2+1, frames) -> (n, length).

    The random initial phase is drawn under a forked, seeded global RNG: the result depends on
    ``seed`` only, and the caller's random state is left alone.
    """
    import torchaudio.functional as AF

    window = torch.hann_window(n_fft, device=magnitude.device)
    with seeded(seed, "griffin-lim"):
        return AF.griffinlim(magnitude, window, n_fft, hop_length, n_fft, 1.0, n_iter, momentum, length, True)


class SpectrogramTransform:
    """Waveforms <-> normalised log spectrograms in [-1, 1] of a fixed shape, fitted on real clips.

    Examples
    --------
    >>> t = SpectrogramTransform(SpectrogramConfig()).fit(waves)       # doctest: +SKIP
    >>> S = t.transform(waves)            # (n, 64, 128) float32 in [-1, 1]  # doctest: +SKIP
    >>> back = t.inverse_transform(S)     # (n, 8192) float32 waveforms       # doctest: +SKIP
    """

    def __init__(self, config: SpectrogramConfig | None = None) -> None:
        self.config = config or SpectrogramConfig()
        self.scaler_: ScalerChain | None = None

    # ------------------------------------------------------------ magnitudes
    def _mel_fb(self) -> torch.Tensor:
        import torchaudio.functional as AF

        c = self.config
        return AF.melscale_fbanks(c.n_fft // 2 + 1, 0.0, c.sample_rate / 2, c.n_mels, c.sample_rate, norm="slaney", mel_scale="slaney")

    def magnitude(self, waves: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Linear or mel magnitudes cut to :attr:`SpectrogramConfig.shape`: (n, T) -> (n, F, W)."""
        c = self.config
        x = _as_tensor(waves)
        if x.shape[1] != c.n_samples:
            raise InvalidInputError(f"waveforms must hold {c.n_samples} samples; got {x.shape[1]}.")
        full = stft_magnitude(x, c.n_fft, c.hop_length)[:, :, : c.n_frames]  # (n, n_fft/2+1, W)
        if c.kind == "linear":
            return full[:, : c.n_fft // 2]  # drop the Nyquist bin (SpecGAN)
        return torch.einsum("nfw,fm->nmw", full, self._mel_fb())  # (n, n_mels, W)

    def full_magnitude(self, mag: torch.Tensor) -> torch.Tensor:
        """Back to a full STFT magnitude (n, n_fft//2+1, T//hop+1) for Griffin-Lim: mel pseudo-inverse,
        a zero Nyquist bin, the dropped last frame repeated."""
        c = self.config
        mag = torch.as_tensor(mag, dtype=torch.float32)
        if c.kind == "mel":
            pinv = torch.linalg.pinv(self._mel_fb())  # (n_mels, F)
            lin = torch.einsum("nmw,mf->nfw", mag, pinv).clamp_min(0.0)
        else:
            lin = torch.cat([mag, torch.zeros_like(mag[:, :1])], dim=1)
        frames = c.n_samples // c.hop_length + 1
        if lin.shape[2] < frames:
            lin = torch.cat([lin, lin[:, :, -1:].expand(-1, -1, frames - lin.shape[2])], dim=2)
        return lin

    # ------------------------------------------------------------ fitted normalisation
    def log_magnitude(self, waves: np.ndarray | torch.Tensor) -> np.ndarray:
        return torch.log(self.magnitude(waves) + self.config.eps).numpy()

    def fit(self, waves: np.ndarray) -> SpectrogramTransform:
        """Fit the per-frequency-bin mean and std of the log magnitude (SpecGAN's normalisation)."""
        k = self.config.clip_std
        self.scaler_ = ScalerChain([Standardizer(axes=(0, 2)), RangeScaler((-1.0, 1.0), data_range=(-k, k), clip=True)])
        self.scaler_.fit(self.log_magnitude(waves))
        return self

    def _check(self) -> ScalerChain:
        if self.scaler_ is None:
            from imagina.core.errors import NotFittedError

            raise NotFittedError("This SpectrogramTransform is not fitted yet; call `fit` before using it.")
        return self.scaler_

    def transform(self, waves: np.ndarray) -> np.ndarray:
        """Waveforms (n, T) -> normalised spectrograms (n, F, W), float32 in [-1, 1]."""
        return self._check().transform(self.log_magnitude(waves))

    def to_magnitude(self, spec: np.ndarray) -> torch.Tensor:
        """Normalised spectrograms (n, F, W) in [-1, 1] -> magnitudes (n, F, W)."""
        log = self._check().inverse_transform(np.clip(np.asarray(spec, dtype=np.float32), -1.0, 1.0))
        return (torch.from_numpy(log).exp() - self.config.eps).clamp_min(0.0)

    def inverse_transform(self, spec: np.ndarray, *, seed: int = 0, n_iter: int | None = None, batch_size: int = 256) -> np.ndarray:
        """Normalised spectrograms (n, F, W) -> peak-normalised float32 waveforms (n, T) by Griffin-Lim."""
        return self.magnitude_to_waveform(self.to_magnitude(spec), seed=seed, n_iter=n_iter, batch_size=batch_size)

    def magnitude_to_waveform(self, mag: torch.Tensor, *, seed: int = 0, n_iter: int | None = None, batch_size: int = 256) -> np.ndarray:
        """Magnitudes (n, F, W) as :meth:`magnitude` gives them -> float32 waveforms (n, T), peak 0.9."""
        c = self.config
        out = []
        for start in range(0, len(mag), batch_size):
            full = self.full_magnitude(mag[start : start + batch_size])
            wave = griffin_lim(full, n_fft=c.n_fft, hop_length=c.hop_length, length=c.n_samples,
                               n_iter=n_iter or c.griffin_lim_iters, momentum=c.momentum, seed=(seed, start))
            out.append(wave.numpy())
        if not out:
            return np.zeros((0, c.n_samples), dtype=np.float32)
        return peak_normalize(np.concatenate(out))

    # ------------------------------------------------------------ state
    def get_state(self) -> dict:
        return {"config": asdict(self.config), "scaler": self._check().get_state()}

    @classmethod
    def from_state(cls, state: dict) -> SpectrogramTransform:
        obj = cls(SpectrogramConfig(**state["config"]))
        obj.scaler_ = ScalerChain.from_state(state["scaler"])
        return obj


def round_trip(transform: SpectrogramTransform, waves: np.ndarray, *, normalised: bool = True, seed: int = 0,
               n_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spectrogram -> Griffin-Lim waveform -> spectrogram of real clips.

    With ``normalised`` the spectrogram first goes through the fitted log / per-bin normalisation /
    3-std clip (what the GAN models), otherwise Griffin-Lim gets the exact magnitude.
    Returns ``(inverted waveforms (n, T), spectral convergence (n,))`` measured against the
    magnitude of the original clips.
    """
    ref = transform.magnitude(waves)
    mag = transform.to_magnitude(transform.transform(waves)) if normalised else ref
    inverted = transform.magnitude_to_waveform(mag, seed=seed, n_iter=n_iter)
    est = transform.magnitude(inverted)
    # Griffin-Lim output is peak-normalised: compare shapes of spectra, not levels.
    scale = (ref * est).flatten(1).sum(1) / (est * est).flatten(1).sum(1).clamp_min(1e-12)
    return inverted, spectral_convergence(ref, est * scale[:, None, None])
