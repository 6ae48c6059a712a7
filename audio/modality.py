"""The audio modality: how the shared pipeline loads, generates, embeds, checks and writes clips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imagina.audio.data import AudioLoadConfig, load_audio
from imagina.audio.embed import DEFAULT_EMBEDDER_STEPS, audio_embedder, default_audio_embedder
from imagina.audio.evaluate import AudioEvalTask
from imagina.audio.export import spectrogram_grid, write_wavs
from imagina.audio.model import ConditionalSpecGAN, SpecGANConfig
from imagina.audio.sanity import audio_sanity
from imagina.core.embedding import Embedder
from imagina.core.generator import make_config
from imagina.core.modality import LabeledData, Modality, SanityResult

#: Load options that belong to :class:`AudioLoadConfig`; the rest go to :func:`load_audio`.
_LOAD_FIELDS = set(AudioLoadConfig.__dataclass_fields__)


class AudioModality(Modality):
    """Audio: waveforms float32 (n, T) at one sample rate.

    The rate comes with the data: ``meta["sample_rate"]`` (set by :meth:`load`, or by a fitted
    SpecGAN's ``data_meta()``) is used by the generator, the embedder, the reference classifier and
    the WAV writer, so a dataset loaded at 16 kHz is generated, embedded and written at 16 kHz.
    Without ``meta`` the loader's default rate applies.
    """

    name = "audio"
    run_cost = "about 15 minutes on FSDD with 20 clips per class"
    #: The generator's defaults are :class:`SpecGANConfig`'s (one home for the API and the CLI).
    default_steps = SpecGANConfig().steps
    #: Training steps of the offline default embedder. On 600 FSDD training clips outside the 200 it
    #: learns from (validation, never the test split), its own head classifies 67 / 84 / 88 % at
    #: 300 / 600 / 1,000 steps and the 5-NN vote in its embedding 72 / 85 / 89 % (mean of 3 seeds):
    #: at 300 steps the screen's label-consistency test leaned on an under-trained network.
    embedder_steps = DEFAULT_EMBEDDER_STEPS
    #: Whether the default embedder shows a progress bar while it trains.
    embedder_progress = False
    #: What ``--split`` selects in these sources, for the CLI's help.
    split_help = "train/ and test/ folders, or FSDD's rule on a --pattern with {index}"
    #: Where test data may differ from the training data (named in a "don't use" message).
    shift_examples = "new speakers or microphones"
    #: What ``--data`` accepts, for the CLI's help.
    source_help = ("a folder of class sub-folders (optionally under train/ and test/), a folder of files named by "
                   "--pattern, or a CSV manifest path,label")
    #: Every candidate clip costs a Griffin-Lim inversion: top-up stops at 4 candidates per wanted clip.
    augment_defaults = {"max_oversample": 4.0}

    @staticmethod
    def sample_rate(meta: dict | None) -> int:
        """The sample rate in ``meta``, else the loader's default."""
        return int((meta or {}).get("sample_rate") or AudioLoadConfig().sample_rate)

    def load(self, source: str, *, split: str | None = None, per_class: int | None = None, seed: int = 0,
             clean: bool = True, **format_options: Any) -> LabeledData:
        """Load clips (see :func:`~imagina.audio.data.load_audio`); ``format_options`` are
        :class:`AudioLoadConfig` fields and ``label_from``, ``pattern``, ``test_indices``..."""
        cfg = AudioLoadConfig(**{k: v for k, v in format_options.items() if k in _LOAD_FIELDS})
        rest = {k: v for k, v in format_options.items() if k not in _LOAD_FIELDS}
        return load_audio(source, cfg, split=split, per_class=per_class, seed=seed, clean=clean, **rest)

    def add_cli_arguments(self, parser: Any) -> None:
        d = AudioLoadConfig()
        parser.add_argument("--pattern", default=None,
                            help="file-name pattern giving the label, e.g. '{label}_{speaker}_{index}' (default: class "
                                 "sub-folders, else the name up to its first underscore)")
        parser.add_argument("--label-from", default="auto", choices=("auto", "folder", "pattern", "manifest"),
                            help="where labels come from (default auto)")
        parser.add_argument("--sample-rate", type=int, default=d.sample_rate, help=f"target rate in Hz (default {d.sample_rate})")
        parser.add_argument("--n-samples", type=int, default=d.n_samples, help=f"clip length in samples (default {d.n_samples})")
        parser.add_argument("--max-seconds", type=float, default=d.max_seconds,
                            help=f"read at most this much of a file (default {d.max_seconds:g})")
        parser.add_argument("--long-files", default=d.long_files, choices=("trim", "reject"),
                            help=f"a file longer than --max-seconds: keep its beginning or drop it (default {d.long_files})")

    def load_options(self, args: Any) -> dict:
        return {"pattern": args.pattern, "label_from": args.label_from,
                "sample_rate": args.sample_rate, "n_samples": args.n_samples, "max_seconds": args.max_seconds,
                "long_files": args.long_files}

    def make_generator(self, *, steps: int | None, seed: int, device: str, meta: dict | None = None,
                       **options: Any) -> ConditionalSpecGAN:
        opts = {"sample_rate": self.sample_rate(meta), "seed": seed, **({"steps": steps} if steps else {}), **options}
        gen = ConditionalSpecGAN(make_config(SpecGANConfig, **opts), device=device)
        gen.source_format = (meta or {}).get("source_format")  # saved with the model, for `imagina generate`
        return gen

    def make_embedder(self, *, seed: int, device: str, pretrained: str | None = None, meta: dict | None = None,
                      steps: int | None = None, progress: bool | None = None) -> Embedder:
        rate = self.sample_rate(meta)
        return audio_embedder(pretrained, sample_rate=rate, device="cpu" if device == "auto" else device,
                              own=lambda: default_audio_embedder(
                                  sample_rate=rate, seed=seed, device=device, steps=steps or self.embedder_steps,
                                  progress=self.embedder_progress if progress is None else progress))

    def sanity(self, X: Any, y: np.ndarray, *, generator: Any = None, real: LabeledData | None = None) -> SanityResult:
        return audio_sanity(X)

    def write_items(self, directory: Path, X: Any, y: np.ndarray, stems: list[str], *, meta: dict | None = None) -> list[str]:
        # meta["source_format"] (the loader's, or a saved SpecGAN's) writes clips like the user's own
        return write_wavs(directory, X, y, stems, sample_rate=self.sample_rate(meta),
                          source_format=(meta or {}).get("source_format"))

    def preview(self, path: Path, X: Any, y: np.ndarray, *, title: str = "", meta: dict | None = None) -> None:
        spectrogram_grid(path, X, y, sample_rate=self.sample_rate(meta), title=title)

    def evaluation_task(self, meta: dict | None = None) -> AudioEvalTask:
        return AudioEvalTask(self.sample_rate(meta))

    def classical_views(self, X, n_views: int, *, seed: int = 0, meta: dict | None = None, strength: str = "default"):
        from imagina.audio.evaluate import classical_views

        return classical_views(X, n_views, seed, strength)

    def probe_features(self, meta: dict | None = None):
        from imagina.audio.evaluate import probe_features

        return probe_features(self.sample_rate(meta))


MODALITY = AudioModality()
