"""Trainer tests run torch on one thread: the machines have two cores, and a worker or a second
training process often runs beside the test (two threads each then run several times slower)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)
