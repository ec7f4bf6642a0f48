"""Shared test fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from chordvae.datasets import register
from tests.helpers import Toy

REPO = Path(__file__).resolve().parents[1]
register(Toy)   # the toy dataset that train and CLI tests run by name
#: The real MNIST test split, shipped beside the repository (see README).
SHARED_MNIST = Path(os.environ.get("CHORDVAE_SHARED_MNIST", REPO.parent / "shared" / "datasets" / "mnist"))


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Module and session fixtures (set up before any test's own) never use the user's cache either."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHORDVAE_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty chordvae cache folder, never the user's."""
    monkeypatch.setenv("CHORDVAE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def shared_mnist() -> Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST test files not found in {SHARED_MNIST}")
    return SHARED_MNIST
