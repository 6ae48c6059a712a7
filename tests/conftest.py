"""Shared fixtures: tiny data factories and the location of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_factories import make_images

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{name} (absent: {path}); CI provides it")
    return path


@pytest.fixture
def images():
    return make_images()


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    """Keep tests light on a 2-core machine."""
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    yield
