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


@pytest.fixture(autouse=True)
def _own_embedder_by_default(request, monkeypatch):
    """Pin the default embedder to the own one, so that a test's run is the same with or without the
    ``pretrained`` extra (which makes ``auto`` the default) and does not embed every candidate with a
    pretrained network; tests marked ``default_embedder`` see the real default."""
    if request.node.get_closest_marker("default_embedder") is None:
        from imagina.core.modality import Modality

        monkeypatch.setattr(Modality, "default_embedder", lambda self: "own")
    yield
