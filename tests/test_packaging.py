import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_holds_only_the_imagina_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("imagina-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"imagina", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("imagina/__init__.py", "imagina/core/training.py", "imagina/core/screening.py",
                   "imagina/image/model.py", "imagina/text/__init__.py", "imagina/audio/__init__.py"):
        assert module in names, module
    assert not any(n.startswith("imagina/tests/") or n.startswith("imagina/benchmarks/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "imagina = imagina.core.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_import_is_cheap_and_side_effect_free():
    code = "import sys, imagina; print(sorted(m for m in ('torch', 'librosa', 'sentence_transformers', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_drawing_leaves_the_matplotlib_backend_alone(tmp_path):
    code = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np, sys
import imagina.core.report as report
before = matplotlib.get_backend()
report.score_histograms(__import__("pathlib").Path({str(tmp_path / "s.png")!r}), {{"quality": np.arange(5.0)}},
                        np.array([True, False, True, False, True]))
print(before, matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    assert _python(code) == "svg svg False"
    assert (tmp_path / "s.png").stat().st_size > 0


def test_help_and_version_do_not_import_torch():
    for argv in (["--help"], ["--version"], ["augment", "--help"]):
        code = f"""
import sys
from imagina.core.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("torch" in sys.modules, "imagina.image" in sys.modules, "matplotlib" in sys.modules)
"""
        assert _python(code).splitlines()[-1] == "False False False", argv
