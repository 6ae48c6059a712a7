"""Devices, seeds, mixed precision, thread limits and the torch.distributed context (torchrun)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from imagina.core.errors import InvalidInputError, check_int

logger = logging.getLogger(__name__)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present (the local rank's GPU under torchrun), else CPU."""
    if isinstance(device, torch.device):
        return device
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InvalidInputError(f"`device` must be one of 'auto', 'cpu', 'cuda'; got {device!r}.")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidInputError("`device` is 'cuda' but no CUDA device is available; use --device cpu.")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return torch.device(device)


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (``taskset``, a cgroup cpuset, a
    scheduler's allocation) where the platform has one, else every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy / scipy's OpenBLAS (or BLIS) on one thread inside the block, as it was outside after it.

    scikit-learn's fits on a few hundred items make small matrix products, for which a second BLAS
    thread costs more in handing work over than it gains: the dose's probe fits took 59 CPU s at two
    OpenBLAS threads and 7.7 s at one on the default MNIST run (BENCHMARKS.md, "The image run").
    torch's own pools (OpenMP, MKL) are left alone."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # scikit-learn brings it; without it nothing is capped
        yield
        return
    pools = {pool["prefix"]: 1 for pool in threadpool_info()
             if pool["internal_api"] in ("openblas", "blis") and pool["num_threads"] > 1}
    if not pools:
        yield
        return
    with threadpool_limits(limits=pools):
        yield


def limit_threads(max_threads: int | None = None) -> int:
    """Cap the threads of torch and of the BLAS / OpenMP pools at the cores this run may use.

    The cap is the smallest of :func:`usable_cores`, ``OMP_NUM_THREADS`` when it holds a positive
    int, and ``max_threads``. Pools already at or under it are left alone: this only lowers. torch
    otherwise sizes its pool by the machine's cores, so two jobs pinned to one core each would start
    a full pool each and fight over the same cores.

    Returns the cap, an int >= 1.
    """
    cap = usable_cores()
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        cap = min(cap, int(env))
    if max_threads is not None:
        cap = min(cap, check_int("max_threads", max_threads, minimum=1))
    if torch.get_num_threads() > cap:
        torch.set_num_threads(cap)
    if torch.get_num_interop_threads() > cap:
        with contextlib.suppress(RuntimeError):  # settable only before the first inter-op task
            torch.set_num_interop_threads(cap)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # scikit-learn brings it; without it only torch's pools are capped
        threadpool_info = None
    if threadpool_info is not None:
        over = {pool["prefix"]: cap for pool in threadpool_info() if pool["num_threads"] > cap}
        if over:
            threadpool_limits(limits=over)
    logger.info("threads capped at %d (%d usable cores)", cap, usable_cores())
    return cap


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (a run seed, a step, a rank, a name)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def torch_rng(*parts: object) -> torch.Generator:
    """A CPU :class:`torch.Generator` seeded from ``parts``: randomness never comes from global state."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def numpy_rng(*parts: object) -> np.random.Generator:
    """A :class:`numpy.random.Generator` seeded from ``parts``."""
    return np.random.default_rng(derive_seed(*parts))


@contextlib.contextmanager
def seeded(*parts: object):
    """Run a block (module construction, dropout) with the global torch RNG seeded, then restore it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(*parts))
        yield


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; a no-op context on CPU, where fp32 keeps runs bit-reproducible."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a ``torchrun`` launch (world_size 1 when launched plainly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that ``torchrun`` set up (gloo on CPU, nccl on CUDA), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        logger.info("joined process group: rank %d of %d (%s)", dist.get_rank(), world_size, backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
