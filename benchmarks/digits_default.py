"""Wall time of the README's main job: ``imagina augment image --data digits`` with defaults.

    python benchmarks/digits_default.py [--out /tmp/imagina-digits]

Prints the wall time, kept items per class and the stage timings from run.json (target: <= 5 min
on the 2-core CPU machine, >= 100 kept per class). ``--smoke`` passes the CLI's own ``--smoke`` (2
training steps, 4 items per class): it checks that the job runs, not its time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="/tmp/imagina-digits")
    p.add_argument("--smoke", action="store_true", help="the CLI's --smoke: checks that the job runs, in seconds")
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imagina", "augment", "image", "--data", "digits", "--out", str(out), "--quiet",
                    *(["--smoke"] if args.smoke else [])], check=True)
    wall = time.perf_counter() - start
    record = json.loads((out / "run.json").read_text())
    print(json.dumps({"wall_s": round(wall, 1), "kept_per_class": record["screen"]["kept_per_class"],
                      "rejected_by_reason": record["screen"]["rejected_by_reason"], "timings": record["timings"],
                      "metrics": record["metrics"]}, indent=2))


if __name__ == "__main__":
    main()
