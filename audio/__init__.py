"""imagina.audio: class-conditional SpecGAN, Griffin-Lim inversion, audio screening and evaluation."""

from imagina.audio.augment import (
    SpecDiffAugment,
    add_noise,
    classical_candidates,
    spec_augment,
    speed,
    time_shift,
)
from imagina.audio.data import AudioLoadConfig, compile_pattern, load_audio, read_audio
from imagina.audio.embed import TransformersAudioEmbedder, audio_embedder, default_audio_embedder
from imagina.audio.evaluate import AudioEvalTask, ReferenceAudioCNN
from imagina.audio.export import spectrogram_grid, write_wavs
from imagina.audio.features import (
    SpectrogramConfig,
    SpectrogramTransform,
    griffin_lim,
    round_trip,
    spectral_convergence,
)
from imagina.audio.modality import MODALITY, AudioModality
from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig
from imagina.audio.sanity import AudioSanityConfig, audio_metrics, audio_sanity

__all__ = [
    "MODALITY",
    "AudioEvalTask",
    "AudioLoadConfig",
    "AudioModality",
    "AudioSanityConfig",
    "ConditionalSpecGAN",
    "ReferenceAudioCNN",
    "SpecDiffAugment",
    "SpecGANConfig",
    "SpectrogramConfig",
    "SpectrogramTransform",
    "TransformersAudioEmbedder",
    "add_noise",
    "audio_embedder",
    "audio_metrics",
    "audio_sanity",
    "classical_candidates",
    "compile_pattern",
    "default_audio_embedder",
    "griffin_lim",
    "load_audio",
    "read_audio",
    "round_trip",
    "spec_augment",
    "spectral_convergence",
    "spectrogram_grid",
    "speed",
    "time_shift",
    "write_wavs",
]
