"""One training loop for every generator.

A generator describes *what* one step does (:class:`TrainingTask`); the :class:`Trainer` owns the
rest: seeding, device placement, bf16 autocast on CUDA (and, if asked, on a CPU with native bf16),
data-parallel gradient averaging under ``torchrun``, the EMA copy of the generator, tqdm progress, loss history and atomic checkpoints
from which a killed run resumes to bit-identical weights on CPU.

Determinism: every step draws its randomness from generators seeded by ``(seed, step, rank)``
(not from a stream carried across steps), so a run resumed from the checkpoint of step ``k``
replays steps ``k+1 ...`` exactly as the uninterrupted run did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from imagina.core.errors import InvalidInputError, check_float, check_int
from imagina.core.export import temporary_file
from imagina.core.runtime import DistContext, autocast, derive_seed, init_distributed, resolve_device

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.jsonl"


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    """Settings of the training loop shared by all generators.

    ``batch_size`` is per process: under ``torchrun`` with W processes one step sees W·batch_size items.
    ``cpu_bf16`` lets :meth:`StepContext.autocast` run bf16 on a CPU with native bf16 instructions
    (:func:`cpu_has_native_bf16`), where convolutions then take about a third less time; elsewhere
    the CPU computes in fp32, since emulated bf16 is slower than fp32.
    ``lr_decay`` is the share of the final steps over which every optimiser's learning rate falls
    linearly towards zero (0, the default, keeps it constant); the rate is set from the step index
    before each step, so a resumed run follows the same schedule.
    """

    steps: int = 2000
    batch_size: int = 64
    checkpoint_every: int = 500
    log_every: int = 10
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    cpu_bf16: bool = False
    lr_decay: float = 0.0

    def __post_init__(self) -> None:
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_int("log_every", self.log_every, minimum=1)
        check_float("ema_decay", self.ema_decay, minimum=0.0, maximum=1.0)
        check_int("seed", self.seed, minimum=0)
        check_float("lr_decay", self.lr_decay, minimum=0.0, maximum=1.0)

    def lr_factor(self, step: int) -> float:
        """The learning rate's multiplier at 0-based ``step``: 1 until the last ``lr_decay`` share of
        the steps, then falling linearly to 1 / (number of decaying steps) at the last step."""
        decaying = round(self.lr_decay * self.steps)
        if decaying <= 0 or step < self.steps - decaying:
            return 1.0
        return (self.steps - step) / decaying


class StepContext:
    """What a :meth:`TrainingTask.train_step` may use: randomness, device, autocast, optimiser updates."""

    def __init__(self, trainer: Trainer, step: int) -> None:
        self.step = step
        self.device = trainer.device
        self.dist = trainer.dist
        self.rng = torch.Generator().manual_seed(derive_seed(trainer.config.seed, "step", step, trainer.dist.rank))
        self._trainer = trainer

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal noise drawn on the CPU from this step's generator, moved to the device."""
        return torch.randn(*shape, generator=self.rng).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.rng).to(self.device)

    def randint(self, high: int, shape: Sequence[int]) -> torch.Tensor:
        return torch.randint(high, tuple(shape), generator=self.rng).to(self.device)

    def autocast(self):
        """bf16 autocast on CUDA, and on a CPU with native bf16 when the trainer's ``cpu_bf16`` asks
        for it; nothing otherwise."""
        if self.device.type == "cpu" and self._trainer.config.cpu_bf16 and cpu_has_native_bf16():
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return autocast(self.device)

    def update(self, optimizer: str, loss: torch.Tensor) -> None:
        """Backward ``loss``, average gradients across processes, step the named optimiser."""
        self._trainer._update(optimizer, loss)


class TrainingTask(ABC):
    """A generator's side of training: its modules, their optimisers and one step."""

    #: Name (in :meth:`modules`) of the module whose exponential moving average is kept, or None.
    ema_module: str | None = None
    #: What the progress bar says while this task trains.
    description: str = "training"

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Trained modules by name; the names are checkpoint keys."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name, built over the parameters of :meth:`modules` (already on the device)."""

    @abstractmethod
    def train_step(self, batch: tuple[torch.Tensor, ...], ctx: StepContext) -> dict[str, float]:
        """One optimisation step on ``batch`` (tensors on the device); returns losses to log."""


class Trainer:
    """Run a :class:`TrainingTask` for ``config.steps`` steps.

    Examples
    --------
    >>> trainer = Trainer(TrainerConfig(steps=3, device="cpu"))   # doctest: +SKIP
    >>> history = trainer.fit(task, (x, y), checkpoint_dir="ckpt")  # doctest: +SKIP
    """

    def __init__(self, config: TrainerConfig | None = None, *, progress: bool = True) -> None:
        self.config = config or TrainerConfig()
        self.progress = progress
        self.device = resolve_device(self.config.device)
        self.dist: DistContext = DistContext()
        self.ema: AveragedModel | None = None
        self.history: list[dict[str, float]] = []
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._task: TrainingTask | None = None
        self._fingerprint: str | None = None  # of the data being trained on, saved with checkpoints

    # ------------------------------------------------------------------ public
    def fit(
        self,
        task: TrainingTask,
        data: tuple[torch.Tensor, ...],
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> list[dict[str, float]]:
        """Train ``task`` on ``data`` (tensors sharing their first dimension, kept on the CPU).

        Each step samples ``batch_size`` items with replacement. With ``checkpoint_dir`` the state is
        saved atomically every ``checkpoint_every`` steps and at the end, and an existing checkpoint
        there is resumed from. ``callback(step, losses)`` runs after every step.
        Returns the loss history (one dict per ``log_every`` steps).
        """
        n = int(data[0].shape[0])
        if n == 0 or any(int(t.shape[0]) != n for t in data):
            raise InvalidInputError("training data must be non-empty tensors of equal length.")
        self.dist = init_distributed(self.device)
        self._task = task
        modules = task.modules()
        for module in modules.values():
            module.to(self.device)
        if self.dist.enabled:
            self._broadcast_parameters(modules)
        self._optimizers = task.optimizers()
        for opt in self._optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        if task.ema_module is not None:
            self.ema = AveragedModel(modules[task.ema_module], multi_avg_fn=ema_with_warmup(self.config.ema_decay), use_buffers=True)
        start = 0
        self.history = []
        ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self._fingerprint = data_fingerprint(data) if ckpt_dir is not None else None
        if ckpt_dir is not None and (ckpt_dir / CHECKPOINT_NAME).exists():
            start = self._load_checkpoint(ckpt_dir / CHECKPOINT_NAME, modules)
            logger.info("resumed from %s at step %d", ckpt_dir / CHECKPOINT_NAME, start)

        cfg = self.config
        bar = tqdm(
            range(start, cfg.steps),
            initial=start,
            total=cfg.steps,
            desc=task.description,
            disable=not self.progress or not self.dist.is_main,
            dynamic_ncols=True,
        )
        for module in modules.values():
            module.train()
        # Dropout and friends draw from the global RNG: seed it per step inside a fork so the
        # caller's global state is left untouched.
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for step in bar:
                torch.manual_seed(derive_seed(cfg.seed, "global", step, self.dist.rank))
                ctx = StepContext(self, step)
                idx = torch.randint(n, (cfg.batch_size,), generator=ctx.rng)
                batch = tuple(t[idx].to(self.device, non_blocking=True) for t in data)
                if cfg.lr_decay > 0:
                    factor = cfg.lr_factor(step)
                    for opt in self._optimizers.values():
                        for group in opt.param_groups:
                            group["lr"] = group["initial_lr"] * factor
                losses = task.train_step(batch, ctx)
                if self.ema is not None:
                    self.ema.update_parameters(modules[task.ema_module])  # type: ignore[index]
                done = step + 1
                if done % cfg.log_every == 0 or done == cfg.steps:
                    self.history.append({"step": done, **{k: float(v) for k, v in losses.items()}})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
                if ckpt_dir is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
                    self._save_checkpoint(ckpt_dir, done, modules)
                if callback is not None:
                    callback(done, losses)
        bar.close()
        for module in modules.values():
            module.eval()
        if self.ema is not None:
            self.ema.eval()
        return self.history

    def ema_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The EMA module's weights (the module's own keys), or None without EMA."""
        if self.ema is None:
            return None
        return {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()}

    # ----------------------------------------------------------------- internals
    def _update(self, name: str, loss: torch.Tensor) -> None:
        opt = self._optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.dist.enabled:
            import torch.distributed as dist

            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            if grads:
                flat = torch.cat([g.reshape(-1) for g in grads])
                dist.all_reduce(flat)
                flat /= self.dist.world_size
                offset = 0
                for g in grads:
                    g.copy_(flat[offset : offset + g.numel()].view_as(g))
                    offset += g.numel()
        opt.step()

    def _broadcast_parameters(self, modules: dict[str, nn.Module]) -> None:
        import torch.distributed as dist

        for module in modules.values():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def _save_checkpoint(self, ckpt_dir: Path, step: int, modules: dict[str, nn.Module]) -> None:
        if not self.dist.is_main:
            return
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step,
            "config": asdict(self.config),
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self._optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "history": self.history,
            "data": self._fingerprint,
        }
        atomic_torch_save(state, ckpt_dir / CHECKPOINT_NAME)
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        atomic_write_text(ckpt_dir / HISTORY_NAME, lines)

    def _load_checkpoint(self, path: Path, modules: dict[str, nn.Module]) -> int:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # a truncated or foreign file
            raise InvalidInputError(f"checkpoint {path} cannot be read ({exc.__class__.__name__}); delete it to start afresh.") from None
        if set(state["modules"]) != set(modules):
            raise InvalidInputError(f"checkpoint {path} belongs to another model; delete it to start afresh.")
        # resuming another run's state would end in neither run's result, silently: refuse it
        saved = state.get("config") or {}
        fields = RESUME_FIELDS + (("steps",) if self.config.lr_decay or int(state["step"]) > self.config.steps else ())
        differs = [k for k in fields if k in saved and saved[k] != getattr(self.config, k)]
        if differs:
            was = ", ".join(f"{k} {saved[k]!r}" for k in differs)
            now = ", ".join(f"{k} {getattr(self.config, k)!r}" for k in differs)
            raise InvalidInputError(f"checkpoint {path} was written by another run ({was}; this run: {now}); "
                                    "delete it or choose another --checkpoint-dir.")
        if state.get("data") is not None and state["data"] != self._fingerprint:
            raise InvalidInputError(f"checkpoint {path} was written while training on other data; delete it or "
                                    "choose another --checkpoint-dir.")
        try:
            for k, m in modules.items():
                m.load_state_dict(state["modules"][k])
            for k, o in self._optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
        except (RuntimeError, ValueError, KeyError) as exc:  # shapes of another configuration
            raise InvalidInputError(f"checkpoint {path} belongs to another model configuration "
                                    f"({str(exc).splitlines()[0][:120]}); delete it to start afresh.") from None
        self.history = list(state["history"])
        return int(state["step"])


#: Trainer settings a resumed run must share with the run that wrote the checkpoint. More steps than
#: the checkpoint's run may continue it (fewer than it already trained may not, nor any change of
#: steps under ``lr_decay``, whose schedule depends on them).
RESUME_FIELDS = ("batch_size", "seed", "ema_decay", "lr_decay", "cpu_bf16")


def data_fingerprint(data: tuple[torch.Tensor, ...]) -> str:
    """A digest of the training tensors' shapes, dtypes and bytes: a checkpoint resumes only on them."""
    digest = hashlib.sha256()
    for t in data:
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX-512 BF16 or AMX), so bf16 autocast saves
    time there instead of costing it."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN's bf16 query
        return False


def ema_with_warmup(decay: float) -> Callable:
    """An EMA update for :class:`~torch.optim.swa_utils.AveragedModel` whose decay warms up as
    ``min(decay, (1 + t) / (10 + t))`` after t updates (TensorFlow's ``num_updates`` rule).

    Without the warm-up a 0.999 average still holds 37 % of the random initial weights after
    1,000 steps, and such a blend of far-apart networks generates near-constant images.
    """

    @torch.no_grad()
    def update(ema_params, current_params, num_averaged) -> None:
        t = int(num_averaged)
        d = min(decay, (1 + t) / (10 + t))
        if torch.is_floating_point(ema_params[0]):
            torch._foreach_lerp_(ema_params, current_params, 1.0 - d)
        else:  # integer buffers (batch-norm counters) take the current value
            for e, c in zip(ema_params, current_params):
                e.copy_(c)

    return update


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = temporary_file(path.parent, path.name)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = temporary_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
