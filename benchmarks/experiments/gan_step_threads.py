"""Wall ms per default image GAN step at 1 and 2 threads (alternated), and each op's self CPU time at
each thread count (torch.profiler, 10 steps): does the step use a second core? (issue 19, session 15)

    python benchmarks/experiments/gan_step_threads.py      # on a quiet machine
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dcgan_step as b  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

y = torch.arange(100) % 10
x = torch.rand(100, 1, 32, 32) * 2 - 1
res = {}
for th in (1, 2, 1, 2):
    torch.set_num_threads(th)
    task = b.make_task(y, 10.0)
    b.plain_loop(task, x, y, 5, 64, True)
    t = time.perf_counter()
    b.plain_loop(task, x, y, 30, 64, True)
    res.setdefault(th, []).append(round((time.perf_counter() - t) / 30 * 1000, 1))
print("wall ms/step", res)
tabs = {}
for th in (1, 2):
    torch.set_num_threads(th)
    task = b.make_task(y, 10.0)
    b.plain_loop(task, x, y, 5, 64, True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        b.plain_loop(task, x, y, 10, 64, True)
    tabs[th] = {(e.key, str(e.input_shapes)[:60]): e.self_cpu_time_total / 10 / 1000 for e in prof.key_averages(group_by_input_shape=True)}
keys = sorted(tabs[1], key=lambda k: -tabs[1][k])[:40]
print(f"{'op':30s} {'shape':60s} 1thr  2thr  ratio")
for k in keys:
    a, c = tabs[1][k], tabs[2].get(k, float('nan'))
    print(f"{k[0][:30]:30s} {k[1]:60s} {a:5.2f} {c:5.2f} {a / c if c else 0:5.2f}")
print("total", round(sum(tabs[1].values()), 1), round(sum(tabs[2].values()), 1))
