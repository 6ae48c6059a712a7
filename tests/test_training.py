import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imagina.core.errors import InvalidInputError
from imagina.core.training import CHECKPOINT_NAME, HISTORY_NAME, Trainer, TrainerConfig

SCRIPT = Path(__file__).with_name("train_script.py")


def run(*args, env=None, check=True):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, check=check)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_config_validation():
    with pytest.raises(InvalidInputError, match="`steps` must be an int >= 1; got 0"):
        TrainerConfig(steps=0)
    with pytest.raises(InvalidInputError, match="ema_decay"):
        TrainerConfig(ema_decay=1.5)


def test_lr_decay_schedule():
    """Constant, then linear towards zero over the last share of the steps; 0 keeps it constant."""
    cfg = TrainerConfig(steps=10, lr_decay=0.4)
    assert [cfg.lr_factor(s) for s in range(10)] == [1, 1, 1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25]
    assert {TrainerConfig(steps=10).lr_factor(s) for s in range(10)} == {1.0}
    with pytest.raises(InvalidInputError, match="lr_decay"):
        TrainerConfig(lr_decay=1.5)


def test_lr_decay_reaches_every_optimiser():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    task = script.tiny_task()
    trainer = Trainer(TrainerConfig(steps=6, batch_size=8, device="cpu", lr_decay=0.5), progress=False)
    seen = []
    trainer.fit(task, script.tiny_data(),
                callback=lambda step, losses: seen.append({k: o.param_groups[0]["lr"] for k, o in trainer._optimizers.items()}))
    base = {k: o.param_groups[0]["initial_lr"] for k, o in trainer._optimizers.items()}
    assert len(base) >= 2
    for step, rates in enumerate(seen):
        assert rates == pytest.approx({k: v * trainer.config.lr_factor(step) for k, v in base.items()})
    assert seen[-1]["G"] == pytest.approx(base["G"] / 3)


def test_same_seed_same_weights(tmp_path):
    run(tmp_path / "a.safetensors", 4)
    run(tmp_path / "b.safetensors", 4)
    assert same(load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors"))


@pytest.mark.parametrize("precision", [(), ("--cpu-bf16",), ("--lr-decay", 0.5)], ids=["fp32", "cpu-bf16", "lr-decay"])
def test_killed_run_resumes_to_identical_weights(tmp_path, precision):
    run(tmp_path / "full.safetensors", 8, "--ckpt", tmp_path / "ck_full", *precision)
    killed = run(tmp_path / "never.safetensors", 8, "--ckpt", tmp_path / "ck", "--kill-at", 5, *precision, check=False)
    assert killed.returncode != 0 and not (tmp_path / "never.safetensors").exists()
    state = torch.load(tmp_path / "ck" / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 3  # the checkpoint before the kill
    assert not [p for p in (tmp_path / "ck").iterdir() if p.name.endswith(".tmp")]
    run(tmp_path / "resumed.safetensors", 8, "--ckpt", tmp_path / "ck", *precision)
    assert same(load_file(tmp_path / "full.safetensors"), load_file(tmp_path / "resumed.safetensors"))
    history = [json.loads(line) for line in (tmp_path / "ck" / HISTORY_NAME).read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, 9))
    assert {"loss_d", "loss_g"} <= set(history[-1])


@pytest.mark.parametrize("other, message", [(("--seed", 1), "was written by another run (seed 0; this run: seed 1)"),
                                            (("--data-seed", 1), "was written while training on other data")])
def test_a_checkpoint_of_another_run_is_refused(tmp_path, other, message):
    """Resuming from another run's checkpoint ended, silently, in neither run's result."""
    run(tmp_path / "a.safetensors", 4, "--ckpt", tmp_path / "ck")
    out = run(tmp_path / "b.safetensors", 4, "--ckpt", tmp_path / "ck", *other, check=False)
    assert out.returncode != 0 and message in out.stderr and "delete it" in out.stderr
    assert not (tmp_path / "b.safetensors").exists()
    again = run(tmp_path / "c.safetensors", 4, "--ckpt", tmp_path / "ck", check=False)  # the same run resumes
    assert again.returncode == 0, again.stderr
    shorter = run(tmp_path / "d.safetensors", 2, "--ckpt", tmp_path / "ck", check=False)
    assert "(steps 4; this run: steps 2)" in shorter.stderr  # it cannot un-train
    assert run(tmp_path / "e.safetensors", 6, "--ckpt", tmp_path / "ck", check=False).returncode == 0  # it may go on


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    out = run(tmp_path / "x.safetensors", 2, "--ckpt", ck, check=False)
    assert out.returncode != 0 and "cannot be read" in out.stderr


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(SCRIPT), str(tmp_path / "w.safetensors"), "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    r0, r1 = load_file(tmp_path / "w.safetensors.rank0"), load_file(tmp_path / "w.safetensors.rank1")
    # gradients are averaged across ranks, so the parameters stay identical
    assert all(torch.equal(r0[k], r1[k]) for k in r0 if k.startswith(("G.", "D.")) and "running" not in k and "num_batches" not in k)
    single = {}
    run(tmp_path / "single.safetensors", 4)
    single = load_file(tmp_path / "single.safetensors")
    assert not same(single, r0)  # each rank saw its own shard of data


def test_ema_warm_up_follows_early_training():
    from imagina.core.training import ema_with_warmup

    ema, current = [torch.zeros(3)], [torch.ones(3)]
    update = ema_with_warmup(0.999)
    for t in range(100):
        update(ema, current, torch.tensor(t))
    # a fixed 0.999 decay would still be at 1 - 0.999**100 = 0.095
    assert float(ema[0][0]) > 0.9
    counters = [torch.zeros(1, dtype=torch.long)]
    update(counters, [torch.full((1,), 7, dtype=torch.long)], torch.tensor(3))
    assert int(counters[0]) == 7
